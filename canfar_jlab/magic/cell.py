"""What a magic needs from the kernel: which notebook it runs, and a `%%canfar` cell turned
into a notebook the runs module can launch.

`%%canfar` decision (documented in `%canfar?` and docs/magic.md): a replica runs the cell's
code alone, in the kernel's working directory (so relative paths and local modules resolve
as in the kernel). With `--setup`, it first runs the *definitions* executed so far in the
kernel: imports, `def`/`class` statements and assignments of literal values (numbers,
strings, lists and dicts of them), taken from the kernel's input history in order. Other
statements (loading data, computing, printing, plotting) and every magic, including earlier
`%canfar` launches, are left out: a replica must not repeat the notebook's work or launch runs
itself. Variables computed in the kernel do not travel; compute them in the cell, or pass
values with `-e NAME=VALUE`.
"""

from __future__ import annotations

import ast
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from ..export import ExportProblem
from ..paths import data_home
from .options import UsageError

CELLS_DIR = "magic-cells"
# Where a kernel learns its notebook: VS Code sets the first, ipykernel the second (from the
# third, which jupyter_server sets when it starts the kernel for a notebook).
NOTEBOOK_VARIABLES = ("__vsc_ipynb_file__", "__session__")
NOTEBOOK_ENV = "JPY_SESSION_NAME"


def current_notebook(user_ns: Mapping[str, object], environ: Mapping[str, str], cwd: Path) -> Path:
    """The notebook this kernel runs, as saved on disk; UsageError when it cannot be told."""
    candidates = [user_ns.get(name) for name in NOTEBOOK_VARIABLES]
    candidates.append(environ.get(NOTEBOOK_ENV))
    named = [str(c) for c in candidates if isinstance(c, str) and c.strip().endswith(".ipynb")]
    for candidate in named:
        path = Path(candidate.strip()).expanduser()
        # jupyter_server gives an absolute path, or one relative to its root; the kernel's
        # working directory is the notebook's folder.
        for option in (path, cwd / path, cwd / path.name):
            if option.is_absolute() and option.is_file():
                return option
    if named:
        raise UsageError(
            f"this kernel's notebook ({named[0]}) is not on disk from {cwd}; "
            "save it, or pass its path: %canfar batch PATH.ipynb"
        )
    raise UsageError(
        "cannot tell which notebook this kernel runs; pass its path: %canfar batch PATH.ipynb"
    )


def definitions(cells: Iterable[str]) -> str:
    """The imports, def/class statements and literal assignments of `cells`, in order."""
    manager = TransformerManager()
    kept: list[str] = []
    for raw in cells:
        if not raw or not raw.strip():
            continue
        try:
            python = manager.transform_cell(raw)
            tree = ast.parse(python)
        except (SyntaxError, ValueError):
            continue  # a cell that failed in the kernel too
        lines = python.splitlines()
        for node in tree.body:
            if _is_definition(node):
                decorators = getattr(node, "decorator_list", [])
                start = min([node.lineno, *(d.lineno for d in decorators)])
                end = node.end_lineno or node.lineno
                kept.append("\n".join(lines[start - 1 : end]))
    return "\n".join(kept)


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if isinstance(node, ast.ClassDef):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        try:
            ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False
        return True
    return False


@dataclass
class CellNotebook:
    """A notebook written for one `%%canfar` cell; `cell_number` is the cell's code-cell number
    in it, `setup_number` that of the `--setup` definitions (if any)."""

    path: Path
    cell_number: int
    setup_number: int | None

    def remove(self) -> None:
        """Delete the notebook's folder (after a launch that created nothing)."""
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def explain(self, problem: ExportProblem) -> str:
        """A launch problem in the user's terms (this cell, or the --setup code)."""
        if problem.cell == self.cell_number:
            return f"this cell, line {problem.line}: {problem.message}"
        if problem.cell == self.setup_number:
            return f"the --setup code from earlier cells, line {problem.line}: {problem.message}"
        return str(problem)


def write_cell_notebook(
    source: str, *, cwd: Path, setup: str = "", stem: str = "cell", home: Path | None = None
) -> CellNotebook:
    """Write `<data home>/magic-cells/<stamp>/<stem>.ipynb` holding the cell (and setup).

    The notebook's file name gives the run its name (`cell`, `cell-2`, ...), so `stem` is the
    kernel's notebook name plus `-cell` when known.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    folder = (home or data_home()) / CELLS_DIR / f"{stamp}-{secrets.token_hex(3)}"
    cells = [nbformat.v4.new_code_cell(_working_directory(cwd))]
    setup_number = None
    if setup.strip():
        cells.append(nbformat.v4.new_code_cell(setup))
        setup_number = len(cells)
    cells.append(nbformat.v4.new_code_cell(source))
    notebook = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "canfar_jlab": {"origin": "%%canfar", "cwd": str(cwd)},
        },
    )
    path = folder / f"{stem}.ipynb"
    try:
        folder.mkdir(parents=True, exist_ok=False)
        nbformat.write(notebook, str(path))
    except OSError as error:
        raise UsageError(
            f"cannot write the cell's notebook in {folder}: {error.strerror}"
        ) from None
    return CellNotebook(path=path, cell_number=len(cells), setup_number=setup_number)


def cell_stem(notebook: Path | None) -> str:
    return f"{notebook.stem}-cell" if notebook is not None else "cell"


def _working_directory(cwd: Path) -> str:
    # Runs first in every replica: the kernel's folder, when the replica can see it (CANFAR
    # mounts home and projects in every session), as working directory and import path.
    folder = repr(os.fspath(cwd))
    return (
        "# canfar-jlab: %%canfar runs the cell in the kernel's working directory\n"
        "import os as _canfar_os, sys as _canfar_sys\n"
        f"if _canfar_os.path.isdir({folder}):\n"
        f"    _canfar_os.chdir({folder})\n"
        f"    _canfar_sys.path.insert(0, {folder})\n"
        "del _canfar_os, _canfar_sys"
    )
