"""The local engine: a Skaha-compatible session service that runs headless replicas as local
processes (docs/engine.md).

`canfar_jlab.engine.control` is the client-side API (find, start, stop); the daemon and the
supervisor are started as processes and never imported by clients.
This package never imports Jupyter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

__all__ = ["EngineError", "EngineInfo", "engine_status", "ensure_engine", "stop_engine"]


def __getattr__(name: str) -> Any:  # lazy: the supervisor imports this package and must start fast
    if name in __all__:
        from . import control

        return getattr(control, name)
    raise AttributeError(name)
