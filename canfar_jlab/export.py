"""Notebook -> batch script: what a replica runs, and the checks made before anything launches.

How a notebook runs in batch, and why this way:

- Each code cell is turned into plain Python by IPython's ``TransformerManager``, the
  transformation a kernel applies before running a cell (and the one behind nbconvert's
  ``ipython2python`` filter): ``%magic`` becomes ``get_ipython().run_line_magic(...)``,
  ``%%magic`` becomes ``run_cell_magic(...)``, ``!cmd`` becomes ``system(...)`` and
  ``x = !cmd`` becomes ``getoutput(...)``. nbconvert's PythonExporter, with a small template of
  ours, writes the script: a JSON header line, then each cell after a ``# %%`` marker (so
  editors show the cells too), markdown as comments, raw cells left out.
- The script is run by `canfar_jlab.export_runner` (copied next to the script as
  ``canfar_runner.py``), which creates an IPython shell and runs the cells one by one. A shell
  is needed because the magics call ``get_ipython()``; running cell by cell gives what plain
  ``python`` or ``ipython script.py`` cannot: each cell's last value printed as the kernel
  shows it, a traceback on stderr and exit code 1 at the first failing cell (the cells after it
  do not run), and the notebook's folder as working directory. See that module for details.
- Skaha runs a replica as ``cmd`` + ``args`` split on single spaces, and mangles ``$``, ``"``
  and ``\\``. So `ExportedScript.argv` is ``[python, runner, script]`` with absolute paths, and an
  output folder or interpreter path containing a space or one of those characters is refused
  with `ExportError` rather than launched broken. The notebook's own folder may contain spaces:
  it travels inside the script, not on the command line.

Checks before launch: each cell's transformed source is parsed (``ast``) and searched for what
cannot work without a person at a screen: ``input()``, ``getpass``, reading ``sys.stdin``,
debuggers, desktop GUI toolkits (tkinter, Qt, wx, turtle, ``%gui``, ``matplotlib.use`` of a GUI
backend) and ipywidgets' ``interact``. Each finding is an `ExportProblem` whose ``cell`` is the
1-based number of the **code cell**, counting every code cell of the notebook (markdown and raw
cells are not counted, skipped cells are), which is the ``[n]`` JupyterLab shows after "Run
All". ``%matplotlib qt`` and the like are not problems: the runner maps them to a headless
backend, and figures still render and save.

Cells tagged ``skip-batch`` are left out. ``parameters`` override the assignments of the first
cell tagged ``parameters`` (papermill's convention): an assignment cell is added right after it.
Cells tagged ``reduce`` stay in the script, listed in its header: replicas skip them and the
run's reduce step runs them (with the ``parameters`` cells) once every replica succeeded.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import keyword
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import jinja2
import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbconvert import PythonExporter
from pydantic import BaseModel, ConfigDict

from . import export_runner, kernel_runner, replica_folder, replica_report
from .atomic import write_atomically
from .errors import CanfarError
from .models import unsafe_char

SKIP_TAG = "skip-batch"
PARAMETERS_TAG = "parameters"
REDUCE_TAG = kernel_runner.REDUCE_TAG  # run once after every replica succeeded (issue 17)
RUNNER_NAME = "canfar_runner.py"
# Modules the runner imports, copied beside it under these names (the image needs no canfar_jlab).
RUNNER_MODULES = {
    "canfar_kernel_runner.py": kernel_runner,
    "canfar_replica_folder.py": replica_folder,
    "canfar_replica_report.py": replica_report,
}
SNAPSHOT_NAME = kernel_runner.SNAPSHOT_NAME
SWEEP_NAME = kernel_runner.SWEEP_NAME
RUNNERS = ("nbclient", "script")
PYTHON_LANGUAGES = {"python", "python3", "ipython", "ipython3"}

# Skaha pastes cmd and args into YAML and splits args on single spaces (skaha-api.md §2.1).
_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.py$")

_TEMPLATE = r"""{%- extends 'null.j2' -%}
{%- block header -%}
#!/usr/bin/env python
# coding: utf-8
# Batch script exported by canfar-jlab from {{ resources.canfar_jlab.notebook_name }}.
# It contains IPython magics: run it with `python canfar_runner.py THIS_FILE`.
{{ resources.canfar_jlab.header_line }}
{% endblock header %}
{% block in_prompt %}
# %% [canfar-jlab {{ cell.metadata.canfar_jlab.label }}]
{% endblock in_prompt %}
{% block input %}
{{ cell.source }}
{% endblock input %}
{% block markdowncell scoped %}
# %% [markdown] canfar-jlab
{{ cell.source | comment_lines }}
{% endblock markdowncell %}
{% block rawcell %}{% endblock rawcell %}
"""


class ExportError(CanfarError):
    """A notebook that cannot be exported at all; the message is one line for the user."""


class ExportProblem(BaseModel):
    """Something in a cell that cannot work in an unattended replica."""

    model_config = ConfigDict(frozen=True)

    cell: int  # 1-based code-cell number (markdown and raw cells are not counted)
    line: int  # 1-based line within that cell
    message: str
    cell_id: str | None = None  # nbformat >= 4.5 cell id, for a UI to select the cell
    severity: Literal["error", "warning"] = "error"  # warnings are shown, not refused

    def __str__(self) -> str:
        warning = "warning: " if self.severity == "warning" else ""
        return f"code cell {self.cell}, line {self.line}: {warning}{self.message}"


def errors(problems: list[ExportProblem]) -> list[ExportProblem]:
    """The problems that refuse a launch (warnings left out)."""
    return [problem for problem in problems if problem.severity == "error"]


class ExportedScript(BaseModel):
    """What `export_notebook` wrote, and the command line a replica runs."""

    notebook_path: Path
    script_path: Path
    runner_path: Path
    argv: list[str]  # [python, runner_path, script_path]: no spaces, `$`, `"` or `\`
    checksum: str  # sha256 of the notebook file's bytes
    cell_count: int  # code cells in the script (skipped cells and injected parameters excluded)
    skipped_cells: list[int]  # code-cell numbers left out by the skip-batch tag
    reduce_cells: list[int] = []  # code-cell numbers tagged reduce: the run's reduce step
    parameters: dict[str, object]
    problems: list[ExportProblem]  # errors: do not launch; show them all to the user
    sweep: list[dict[str, object]] | None = None  # row i-1 for replica i (sweep.json)
    snapshot_path: Path | None = None  # the notebook as launched (notebook.ipynb)

    @property
    def ok(self) -> bool:
        return not errors(self.problems)

    @property
    def skaha_cmd(self) -> str:
        """Skaha's `cmd` parameter."""
        return self.argv[0]

    @property
    def skaha_args(self) -> str:
        """Skaha's `args` parameter: the rest of argv joined by single spaces."""
        return " ".join(self.argv[1:])


def check_notebook(
    path: Path,
    *,
    parameters: dict[str, object] | None = None,
    sweep: list[dict[str, object]] | None = None,
) -> list[ExportProblem]:
    """The problems (errors and warnings) `export_notebook` would report, writing nothing."""
    _, notebook = _read_notebook(Path(path))
    return _Plan(notebook, parameters, sweep).problems


def reduce_cells(path: Path) -> list[int]:
    """The code-cell numbers tagged `reduce` (not skip-batch): the run's reduce step."""
    _, notebook = _read_notebook(Path(path))
    return _Plan(notebook, None).reduce_cells


def missing_kernel(path: Path) -> str | None:
    """Why the notebook's kernel cannot start on this machine, or None when it can.

    Used before launching on the local engine, whose replicas run here. A Python notebook
    whose named kernel is missing runs in ipykernel's python3 (see kernel_runner).
    """
    _, notebook = _read_notebook(Path(path))
    name, reason = kernel_runner.resolve_kernel(notebook)
    return None if name is not None else f"{Path(path).name}: {reason}"


def export_notebook(
    path: Path,
    out_dir: Path,
    *,
    parameters: dict[str, object] | None = None,
    python: str = sys.executable,
    script_name: str | None = None,
    sweep: list[dict[str, object]] | None = None,
    runner: str = "nbclient",
) -> ExportedScript:
    """Write `<out_dir>/<notebook stem>.py` and `<out_dir>/canfar_runner.py`; return the argv.

    `python` is the interpreter a replica starts (its image must have IPython); by default the
    one running this code, which is right for the local engine and for CANFAR when the replica
    uses the notebook session's image. `script_name` lets a caller write several scripts from
    one notebook into one folder (say one per parameter set). Raises `ExportError` for an
    unreadable notebook, bad parameters, or paths Skaha cannot carry; returns problems (and
    still writes the script) for cells that need a person at a screen.

    Also written: ``notebook.ipynb``, the notebook's bytes as launched (the kernel runner
    executes it; parameters are injected at run time, not here), and with `sweep`,
    ``sweep.json`` (row i-1 holds replica i's parameters, over `parameters`). `runner`
    "script" makes replicas run the script with IPython instead of a kernel.
    """
    if runner not in RUNNERS:
        raise ExportError(f"runner {runner!r} is not one of {', '.join(RUNNERS)}")
    notebook_path = Path(os.path.abspath(path))
    content, notebook = _read_notebook(notebook_path)
    plan = _Plan(notebook, parameters, sweep)

    out_dir = Path(os.path.abspath(out_dir))
    script_name = script_name or script_name_for(notebook_path)
    if not _SCRIPT_NAME.match(script_name) or script_name in (RUNNER_NAME, *RUNNER_MODULES):
        raise ExportError(
            f"script name {script_name!r} must match {_SCRIPT_NAME.pattern} "
            f"and not be {RUNNER_NAME}"
        )
    script_path = out_dir / script_name
    runner_path = out_dir / RUNNER_NAME
    _check_skaha_safe("interpreter", python)
    _check_skaha_safe("output folder", str(out_dir))

    checksum = hashlib.sha256(content).hexdigest()
    header = {
        "format": export_runner.SCRIPT_FORMAT,
        "notebook": str(notebook_path),
        "sha256": checksum,
        "cwd": str(notebook_path.parent),
        # The runner refuses a script with problems, should anyone launch it all the same.
        "problems": [str(problem) for problem in errors(plan.problems)],
        "runner": runner,
        "snapshot": SNAPSHOT_NAME,
        "language": plan.language,
        "kernel": kernel_runner.notebook_kernel(notebook)[0],
        "parameters": dict(parameters or {}),
        # Replicas skip the reduce cells; the reduce step runs them after the parameters cells.
        "reduce_cells": plan.reduce_cells,
        "parameters_cells": plan.parameters_cells,
    }
    text = _render(plan.notebook, notebook_path.name, header)
    runner_source = Path(export_runner.__file__).read_text(encoding="utf-8")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(script_path, text)
        write_atomically(runner_path, runner_source)
        write_atomically(out_dir / SNAPSHOT_NAME, content.decode("utf-8"))
        if sweep:
            write_atomically(out_dir / SWEEP_NAME, json.dumps(sweep, indent=1) + "\n")
        for name, module in RUNNER_MODULES.items():
            write_atomically(out_dir / name, Path(module.__file__).read_text(encoding="utf-8"))
    except OSError as error:
        raise ExportError(f"cannot write to {out_dir}: {error.strerror or error}") from None

    return ExportedScript(
        notebook_path=notebook_path,
        script_path=script_path,
        runner_path=runner_path,
        argv=[python, str(runner_path), str(script_path)],
        checksum=checksum,
        cell_count=plan.cell_count,
        skipped_cells=plan.skipped_cells,
        reduce_cells=plan.reduce_cells,
        parameters=dict(parameters or {}),
        problems=plan.problems,
        sweep=[dict(row) for row in sweep] if sweep else None,
        snapshot_path=out_dir / SNAPSHOT_NAME,
    )


# ---- reading -----------------------------------------------------------------------------------


def _read_notebook(path: Path) -> tuple[bytes, nbformat.NotebookNode]:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        notebook = nbformat.reads(
            content.decode("utf-8"), as_version=4, capture_validation_error={}
        )
    except Exception as error:  # nbformat raises many types for a broken file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"{path.name} is not a readable notebook: {reason}") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(cell, dict) and isinstance(cell.get("source", ""), str) for cell in cells
    ):
        raise ExportError(f"{path.name} is not a readable notebook: malformed cells")
    return content, notebook


def _language(notebook: nbformat.NotebookNode) -> str | None:
    """The notebook's language, or None when its metadata does not say (then: Python)."""
    metadata = notebook.get("metadata") or {}
    info = metadata.get("language_info") or {}
    kernelspec = metadata.get("kernelspec") or {}
    return info.get("name") or kernelspec.get("language") or None


# ---- planning: which cells, which parameters, which problems ----------------------------------


class _Plan:
    """The notebook as the script will hold it: kept cells, injected parameters, problems.

    A notebook in another language than Python keeps no code cell in the script (only a kernel
    can run it) and is not checked; it takes no parameters.
    """

    def __init__(
        self,
        source: nbformat.NotebookNode,
        parameters: dict[str, object] | None,
        sweep: list[dict[str, object]] | None = None,
    ):
        self.problems: list[ExportProblem] = []
        self.skipped_cells: list[int] = []
        self.reduce_cells: list[int] = []
        self.parameters_cells: list[int] = []
        self.cell_count = 0
        self.language = (_language(source) or "python").lower()
        python_notebook = self.language in PYTHON_LANGUAGES
        if (parameters or sweep) and not python_notebook:
            raise ExportError(
                f"parameters can only be set in Python notebooks, not {self.language}"
            )
        if sweep is not None and (
            not isinstance(sweep, list) or not sweep or not all(isinstance(r, dict) for r in sweep)
        ):
            raise ExportError("a sweep is a non-empty list of parameter objects, one per replica")
        to_python = TransformerManager().transform_cell
        checker = _Checker(to_python)
        kept: list[nbformat.NotebookNode] = []
        parameters_at: int | None = None  # index in `kept` after which parameters go
        parameters_source: str | None = None
        number = 0
        for cell in source.cells:
            kind = cell.get("cell_type")
            if kind == "markdown":
                kept.append(_cell("markdown", cell.get("source", "")))
                continue
            if kind != "code":
                continue
            number += 1
            if not python_notebook:
                continue
            tags = (cell.get("metadata") or {}).get("tags") or []
            if PARAMETERS_TAG in tags and parameters_source is None:
                parameters_source = cell.get("source", "")
                parameters_at = len(kept) + (0 if SKIP_TAG in tags else 1)
            if SKIP_TAG in tags:
                self.skipped_cells.append(number)
                continue
            if REDUCE_TAG in tags:
                self.reduce_cells.append(number)
            if PARAMETERS_TAG in tags:
                self.parameters_cells.append(number)
            python = to_python(cell.get("source", ""))
            python = _automagic(python, checker.names) or python
            self.cell_count += 1
            kept.append(_cell("code", python, f"cell {number}"))
            self.problems.extend(checker.check(python, number, cell.get("id")))

        if parameters or sweep:
            if parameters_source is None or parameters_at is None:
                raise ExportError(
                    f"parameters given but no code cell is tagged {PARAMETERS_TAG!r}; "
                    "tag the cell that assigns their defaults"
                )
            defaults = to_python(parameters_source)
            for index, row in enumerate(sweep or []):
                try:
                    _parameters_cell(row, defaults)
                except ExportError as error:
                    raise ExportError(f"sweep row {index + 1}: {error}") from None
            # The script runner adds a sweep row's assignments to this cell at run time.
            kept.insert(parameters_at, _parameters_cell(parameters or {}, defaults))
        for index, kept_cell in enumerate(kept):
            kept_cell["id"] = f"cell-{index}"  # nbformat 4.5 wants ids; these stay internal
        self.notebook = nbformat.v4.new_notebook(cells=kept)


_AUTOMAGIC_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:[ \t]+(.*))?$")
# An assignment makes the line Python (`cd = 3`), as IPython's prefilter decides.
_NOT_AUTOMAGIC = re.compile(r"^(=(?!=)|,)")


@functools.cache
def _automagic_names() -> frozenset[str]:
    """Line magics and shell aliases a kernel runs when typed without `%` (automagic)."""
    from IPython.core import magics
    from IPython.core.alias import default_aliases

    names = {alias[0] for alias in default_aliases()}
    for name in dir(magics):
        kind = getattr(magics, name)
        if name.endswith("Magics") and isinstance(getattr(kind, "magics", None), dict):
            names.update(kind.magics.get("line", {}))
    # ipykernel's own (KernelMagics), not importable without a kernel
    names.update({"clear", "less", "more", "man", "edit", "connect_info", "autosave"})
    return frozenset(names)


def _automagic(python: str, defined: dict[str, str]) -> str | None:
    """A one-line cell such as `cd data` or `pip install x` as the kernel runs it: a magic.

    IPython applies automagic to one-line cells only, when the first word names a line magic
    the notebook has not defined as a variable and what follows is not Python syntax.
    """
    line = python.strip()
    if "\n" in line:
        return None
    match = _AUTOMAGIC_LINE.match(line)
    if not match or match.group(1) not in _automagic_names() or match.group(1) in defined:
        return None
    rest = match.group(2) or ""
    if _NOT_AUTOMAGIC.match(rest) or keyword.iskeyword(match.group(1)):
        return None
    return f"get_ipython().run_line_magic({match.group(1)!r}, {rest!r})\n"


def _cell(kind: str, source: str, label: str = "") -> nbformat.NotebookNode:
    """A cell for the template; built directly, since validating each one costs ~1 ms."""
    cell = nbformat.NotebookNode(cell_type=kind, source=source, metadata={})
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
        cell.metadata["canfar_jlab"] = {"label": label}
    return cell


def _parameters_cell(parameters: dict[str, object], defaults: str) -> nbformat.NotebookNode:
    known = _assigned_names(defaults)
    lines = ["# Parameters of this run, set by canfar-jlab"]
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ExportError(f"parameter name {name!r} is not a Python identifier")
        if known is not None and name not in known:
            choices = ", ".join(sorted(known)) or "nothing"
            raise ExportError(f"unknown parameter {name!r}: the parameters cell assigns {choices}")
        _check_literal(name, value)
        lines.append(f"{name} = {value!r}")
    return _cell("code", "\n".join(lines), "parameters")


def _assigned_names(python: str) -> set[str] | None:
    """Names the parameters cell assigns at top level, or None when it does not parse."""
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


def _check_literal(name: str, value: object) -> None:
    """JSON-like values only, so that repr() is a Python literal that means the same thing."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"parameter {name!r}: {value} is not a finite number")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(name, item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ExportError(f"parameter {name!r}: dict keys must be strings")
            _check_literal(name, item)
        return
    raise ExportError(
        f"parameter {name!r}: a {type(value).__name__} is not allowed; "
        "use None, bool, int, float, str, list or dict"
    )


# ---- static checks ------------------------------------------------------------------------------

_KEYBOARD = "waits for someone to type, and a batch replica has no keyboard"
_NO_KEYBOARD = "a batch replica has no keyboard"
_DEBUGGER = f"opens an interactive debugger, and {_NO_KEYBOARD}"
_CALLS = {
    "input": f"input() {_KEYBOARD}",
    "raw_input": f"raw_input() {_KEYBOARD}",
    "getpass.getpass": f"getpass() {_KEYBOARD}; pass secrets in an environment variable",
    "sys.stdin.read": f"reading sys.stdin {_KEYBOARD}",
    "sys.stdin.readline": f"reading sys.stdin {_KEYBOARD}",
    "sys.stdin.readlines": f"reading sys.stdin {_KEYBOARD}",
    "breakpoint": f"breakpoint() {_DEBUGGER}",
    "pdb.set_trace": f"pdb.set_trace() {_DEBUGGER}",
    "ipdb.set_trace": f"ipdb.set_trace() {_DEBUGGER}",
    "IPython.core.debugger.set_trace": f"IPython's set_trace() {_DEBUGGER}",
    "IPython.terminal.debugger.set_trace": f"IPython's set_trace() {_DEBUGGER}",
    "IPython.core.debugger.Tracer": f"IPython's Tracer() {_DEBUGGER}",
    "IPython.embed": f"IPython.embed() {_KEYBOARD}",
    "code.interact": f"code.interact() {_KEYBOARD}",
}
_WIDGET_FUNCTIONS = {"interact", "interact_manual", "interactive"}
_BACKEND_SETTERS = {
    "matplotlib.use": "matplotlib.use",
    "matplotlib.pyplot.switch_backend": "pyplot.switch_backend",
}


def _widget_warning(function: str) -> str:
    return (
        f"ipywidgets {function}() runs once with its default values in batch (nobody moves "
        "the widgets); set the values in code or as run parameters to vary them"
    )


# Shown, not refused: the kernel runs these unattended.
_WARNINGS = {_widget_warning(function) for function in _WIDGET_FUNCTIONS}


def _unbuiltin(name: str | None) -> str | None:
    """`builtins.input` and `__builtins__.input` are `input`."""
    if name is None:
        return None
    for prefix in ("builtins.", "__builtins__."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


_GUI_MODULES = {
    "tkinter",
    "Tkinter",
    "turtle",
    "PyQt4",
    "PyQt5",
    "PyQt6",
    "PySide",
    "PySide2",
    "PySide6",
    "qtpy",
    "wx",
}
_GUI_BACKEND = re.compile(r"^(tk|qt|gtk|wx|macosx)", re.IGNORECASE)
_LINE_MAGICS = {
    "gui": "%gui starts a desktop GUI event loop, and a batch replica has no display",
    "qtconsole": "%qtconsole opens a desktop window, and a batch replica has no display",
    "debug": f"%debug {_DEBUGGER}",
}
# Magics whose argument or body is IPython code, checked like a cell of its own.
_CODE_MAGICS = {"time", "timeit", "prun", "capture"}


class _Checker:
    """Finds interactive calls; remembers imports from cell to cell, as a kernel would."""

    def __init__(self, to_python: Callable[[str], str]) -> None:
        self.to_python = to_python  # IPython source -> Python, as a kernel transforms a cell
        self.names: dict[str, str] = {}  # local name -> dotted name it stands for
        self.star_modules: set[str] = set()

    def check(self, python: str, cell: int, cell_id: str | None) -> list[ExportProblem]:
        """Problems in one cell, given as Python (already transformed)."""
        found: list[tuple[int, str]] = []
        self._check_code(python, 0, found)
        for number, line in enumerate(python.splitlines(), start=1):
            if export_runner.MARKER_RE.match(line):
                found.append((number, f"the line {line!r} is reserved by canfar-jlab; reword it"))
        return [
            ExportProblem(
                cell=cell,
                line=n,
                message=m,
                cell_id=cell_id,
                severity="warning" if m in _WARNINGS else "error",
            )
            for n, m in sorted(found, key=lambda problem: problem[0])  # in line order
        ]

    def _check_code(self, python: str, offset: int, found: list[tuple[int, str]]) -> None:
        try:
            tree = compile(
                python,
                "<cell>",
                "exec",
                flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                dont_inherit=True,
            )
        except SyntaxError as error:
            found.append((offset + (error.lineno or 1), f"syntax error: {error.msg}"))
            return
        except ValueError as error:  # e.g. null bytes in the source
            found.append((offset + 1, f"cannot parse: {error}"))
            return
        for node in ast.walk(tree):
            line = offset + getattr(node, "lineno", 1)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._note_import(node, line, found)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.names[node.name] = f"__main__.{node.name}"
                for decorator in node.decorator_list:
                    if not isinstance(decorator, ast.Call):  # calls are visited as calls
                        self._check_callable(decorator, decorator.lineno + offset, found)
            elif isinstance(node, ast.Assign):
                # `raw_input = input`: the alias stands for what it names, when that matters.
                value = self._resolve(node.value) if not isinstance(node.value, ast.Call) else None
                value = _unbuiltin(value)
                alias = value in _CALLS or (value or "").startswith("ipywidgets.")
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.names[target.id] = value if alias else f"__main__.{target.id}"
            elif isinstance(node, ast.Call):
                if not self._check_magic(node, line, found):
                    self._check_call(node, line, found)

    def _note_import(self, node: ast.Import | ast.ImportFrom, line: int, found: list) -> None:
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            for alias in node.names:
                if alias.asname:
                    self.names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.names[top] = top
        else:
            module = node.module or ""
            modules = [module] if node.level == 0 else []
            for alias in node.names:
                if alias.name == "*":
                    self.star_modules.add(module)
                else:
                    self.names[alias.asname or alias.name] = f"{module}.{alias.name}"
        for module in modules:
            if module.split(".")[0] in _GUI_MODULES:
                found.append(
                    (line, f"{module} opens desktop windows, and a batch replica has no display")
                )

    def _resolve(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in _WIDGET_FUNCTIONS and any(
                module.startswith("ipywidgets") for module in self.star_modules
            ):
                return f"ipywidgets.{node.id}"
            return node.id
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _check_callable(self, func: ast.expr, line: int, found: list) -> None:
        name = _unbuiltin(self._resolve(func))
        if name is None:
            return
        if name in _CALLS:
            found.append((line, _CALLS[name]))
        elif name.startswith("ipywidgets.") and name.rsplit(".", 1)[1] in _WIDGET_FUNCTIONS:
            found.append((line, _widget_warning(name.rsplit(".", 1)[1])))

    def _check_call(self, node: ast.Call, line: int, found: list) -> None:
        self._check_callable(node.func, line, found)
        setter = _BACKEND_SETTERS.get(self._resolve(node.func) or "")
        if setter and node.args:
            backend = node.args[0]
            if isinstance(backend, ast.Constant) and isinstance(backend.value, str):
                if _GUI_BACKEND.match(backend.value):
                    found.append(
                        (
                            line,
                            f"{setter}({backend.value!r}) needs a display, and a batch "
                            "replica has none; use 'Agg' or %matplotlib inline",
                        )
                    )

    def _check_magic(self, node: ast.Call, line: int, found: list) -> bool:
        """Checks `get_ipython().run_line_magic(...)`/`run_cell_magic(...)`; True if it was one."""
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and func.attr in ("run_line_magic", "run_cell_magic")
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            return False
        values = [arg.value if isinstance(arg, ast.Constant) else None for arg in node.args]
        if not values or not isinstance(values[0], str):
            return True
        magic = values[0]
        if func.attr == "run_line_magic":
            argument = values[1] if len(values) > 1 and isinstance(values[1], str) else ""
            if magic in _LINE_MAGICS:
                found.append((line, _LINE_MAGICS[magic]))
            elif magic == "pdb" and argument.strip().lower() in ("on", "1"):
                found.append((line, "%pdb on opens a debugger when a cell fails; " + _NO_KEYBOARD))
            elif magic in _CODE_MAGICS and argument.strip():
                nested: list[tuple[int, str]] = []
                self._check_code(self.to_python(argument), line - 1, nested)
                found.extend(item for item in nested if not item[1].startswith("syntax"))
        else:
            body = values[2] if len(values) > 2 and isinstance(values[2], str) else ""
            if magic == "debug":
                found.append((line, f"%%debug {_DEBUGGER}"))
            elif magic in _CODE_MAGICS:
                # The body starts on the cell's line 2.
                self._check_code(self.to_python(body), line, found)
        return True


# ---- writing ---------------------------------------------------------------------------------


def _render(notebook: nbformat.NotebookNode, notebook_name: str, header: dict) -> str:
    exporter = PythonExporter(
        extra_loaders=[jinja2.DictLoader({"canfar_batch.py.j2": _TEMPLATE})],
        template_file="canfar_batch.py.j2",
    )
    resources = {
        "canfar_jlab": {
            "notebook_name": notebook_name.replace("\n", " "),
            "header_line": export_runner.HEADER_PREFIX + json.dumps(header),
        }
    }
    text, _ = exporter.from_notebook_node(notebook, resources=resources)
    return text


def script_name_for(notebook_path: Path) -> str:
    """The script's file name in the run folder: the notebook's stem made safe, never the name
    of the runner or a module copied beside it."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", notebook_path.stem).strip("._-") or "notebook"
    taken = (RUNNER_NAME, *RUNNER_MODULES)
    return f"{stem}_notebook.py" if f"{stem}.py" in taken else f"{stem}.py"


def _check_skaha_safe(what: str, value: str) -> None:
    if not value:
        raise ExportError(f"the {what} is empty")
    shown = unsafe_char(value, whitespace=True)
    if shown:
        raise ExportError(
            f"the {what} {value!r} contains {shown}; Skaha splits a replica's command on "
            'spaces and mangles $, " and \\, so choose a path without them'
        )
