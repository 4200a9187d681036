"""The `%canfar` / `%%canfar` IPython magics: `%load_ext canfar_jlab` in a notebook.

A front door like the sidebar and the CLI: it uses the same core (`canfar_jlab.runs`,
`canfar_jlab.skaha`), the same credentials and the same runs folder, so what it launches is
listed everywhere. See `%canfar?` or docs/magic.md.

- `magics.py`: the Magics class, dispatch, one-line errors
- `verbs.py`: each verb's work, as coroutines on a connected client
- `options.py`: the verbs' argparse parsers (the CLI's launch options)
- `cell.py`: the kernel's notebook, and a `%%canfar` cell written as a notebook
- `views.py`: HTML tables with a plain-text fallback
- `loop.py`: a private event loop in a thread; interrupts stop cleanly
"""

from __future__ import annotations

from typing import Any

from .magics import CanfarMagics


def load_ipython_extension(ipython: Any) -> None:
    """Register `%canfar` and `%%canfar` (and `%config CanfarMagics.*`) with the shell."""
    magics = CanfarMagics(shell=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond what IPython does; the private loop thread is a daemon."""


__all__ = ["CanfarMagics", "load_ipython_extension"]
