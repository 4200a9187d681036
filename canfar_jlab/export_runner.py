"""Run a script made by `canfar_jlab.export` the way a Jupyter kernel runs the notebook.

Usage::

    python canfar_runner.py SCRIPT.py      # the copy that export puts next to the script
    python -m canfar_jlab.export_runner SCRIPT.py

The script holds the notebook's code cells, already turned into plain Python by nbconvert
(magics became ``get_ipython().run_line_magic(...)`` and friends), separated by
``# %% [canfar-jlab cell N]`` markers. This runner creates one IPython ``InteractiveShell``
and runs the cells one by one through ``run_cell``, so that, as in a kernel:

- magics, ``!shell`` lines, ``x = !cmd`` and top-level ``await`` work;
- the value of a cell's last expression is printed (its ``text/plain``, without ``Out[n]:``),
  ``display(obj)`` prints ``obj``'s ``text/plain``, and a trailing ``;`` silences it;
- the working directory is the notebook's folder and that folder comes first on ``sys.path``;
- matplotlib uses the kernel's default backend (inline, which draws with Agg and needs no
  display); ``%matplotlib qt`` and other backend choices are mapped to a headless one.

It then exits the way a batch job should: at the first cell that raises, the traceback goes
to stderr, nothing after that cell runs and the exit code is 1. ``sys.exit(n)`` in a cell
stops the run with exit code ``n``. A script whose export found problems (``input()``, GUI
calls...) is refused with exit code 2 before its first cell runs.

Why not ``ipython script.py``: it runs the file as one block, so no cell shows its last value,
and its traceback goes to stdout, mixed with the results. (IPython 9 does exit 1 on an error,
we checked; our tests pin the behaviour of this runner instead of any IPython release's.)

This file imports only the standard library at import time and IPython when it runs, because
`export` copies it next to the script: a replica's image then needs IPython (every Jupyter
image has it), not canfar_jlab.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

try:  # inside the package; in a run folder the copies sit beside this file (see export)
    from . import kernel_runner, replica_folder, replica_report
except ImportError:
    import canfar_kernel_runner as kernel_runner  # type: ignore[no-redef]
    import canfar_replica_folder as replica_folder  # type: ignore[no-redef]
    import canfar_replica_report as replica_report  # type: ignore[no-redef]

SCRIPT_FORMAT = 1
HEADER_PREFIX = "# canfar-jlab-script: "
# One line starts each cell; export refuses notebooks whose code contains such a line.
MARKER_RE = re.compile(r"^# %% (?:\[canfar-jlab (cell \d+|parameters)\]|\[markdown\] canfar-jlab)$")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# %matplotlib choices that draw in the browser: the kernel's inline backend stands in for them.
BROWSER_BACKENDS = {"inline", "widget", "ipympl", "notebook", "nbagg"}
# The runner's first log line, at process start (tests and tools may leave it out).
START_PREFIX = "canfar-jlab: replica "
EXIT_CELL_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Cell:
    """One code cell of the script: `number` is its 1-based code-cell number in the notebook."""

    label: str
    number: int | None
    source: str


@dataclass(frozen=True)
class Script:
    header: dict
    cells: list[Cell]


class ScriptFormatError(Exception):
    """The file is not a script written by canfar_jlab.export."""


def parse_script(text: str) -> Script:
    header: dict | None = None
    cells: list[Cell] = []
    label: str | None = None
    lines: list[str] = []

    def close() -> None:
        if label is None or label == "markdown":
            return
        number = int(label.split()[1]) if label.startswith("cell ") else None
        source = "".join(lines).lstrip("\n").rstrip()
        cells.append(Cell(label=label, number=number, source=source + "\n" if source else ""))

    for line in text.splitlines(keepends=True):
        marker = MARKER_RE.match(line.rstrip("\r\n"))
        if marker:
            close()
            label, lines = marker.group(1) or "markdown", []
        elif label is None:
            if line.startswith(HEADER_PREFIX):
                header = json.loads(line[len(HEADER_PREFIX) :])
        else:
            lines.append(line)
    close()
    if header is None:
        raise ScriptFormatError("no canfar-jlab header line: was this script made by export?")
    if header.get("format") != SCRIPT_FORMAT:
        raise ScriptFormatError(f"script format {header.get('format')!r} is not {SCRIPT_FORMAT}")
    return Script(header=header, cells=cells)


def _matplotlib_backend() -> str:
    # find_spec, not import: importing the backend would import matplotlib in every replica.
    return INLINE_BACKEND if importlib.util.find_spec("matplotlib_inline") else "agg"


def _make_shell():
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import Type
    from traitlets.config import Config

    class BatchDisplayHook(DisplayHook):
        """Prints a cell's result as the kernel's text/plain, with no `Out[n]:` prompt."""

        def write_output_prompt(self) -> None:
            pass

        def write_format_data(self, format_dict, md_dict=None) -> None:
            if "text/plain" in format_dict:
                print(format_dict["text/plain"])

    class BatchDisplayPublisher(DisplayPublisher):
        def clear_output(self, wait: bool = False) -> None:
            # A kernel clears the browser's view; a log keeps its lines (and no escape codes).
            sys.stdout.flush()

    class BatchShell(InteractiveShell):
        displayhook_class = Type(BatchDisplayHook)
        display_pub_class = Type(BatchDisplayPublisher)

        def enable_gui(self, gui=None) -> None:
            pass  # no GUI event loop in batch: matplotlib's inline and agg backends need none

        def _showtraceback(self, etype, evalue, stb) -> None:
            if etype is SystemExit:
                return  # the runner turns it into the exit code
            sys.stdout.flush()
            print(self.InteractiveTB.stb2text(stb), file=sys.stderr, flush=True)

    import IPython

    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # replicas must not share one sqlite file
    config.InteractiveShell.colors = "nocolor" if IPython.version_info >= (9,) else "NoColor"
    shell = BatchShell.instance(config=config)
    # Only text/plain is printed, so skip rendering PNG/HTML for every display.
    shell.display_formatter.active_types = ["text/plain"]
    shell.set_hook("show_in_pager", _print_pager)
    _wrap_matplotlib_magic(shell)
    return shell


def _print_pager(shell, data, start=0, screen_lines=0) -> None:
    text = data.get("text/plain", "") if isinstance(data, dict) else str(data)
    print("\n".join(text.splitlines()[start:]))


def _wrap_matplotlib_magic(shell) -> None:
    """`%matplotlib X` selects inline for browser backends and Agg for desktop GUIs."""
    original = shell.find_line_magic("matplotlib")
    if original is None:
        return

    def matplotlib_magic(line: str = "") -> object:
        words = line.split()
        if any(word in ("-l", "--list") for word in words):
            return original(line)
        options = [word for word in words if word.startswith("-")]
        chosen = next((word for word in words if not word.startswith("-")), None)
        headless = "inline" if chosen is None or chosen.lower() in BROWSER_BACKENDS else "agg"
        if headless == "agg":
            print(
                f"canfar-jlab: %matplotlib {chosen} needs a display; using agg in batch",
                file=sys.stderr,
            )
        if headless == "inline" and _matplotlib_backend() != INLINE_BACKEND:
            headless = "agg"
        return original(" ".join([*options, headless]))

    shell.register_magic_function(matplotlib_magic, "line", "matplotlib")


def _enter_working_folder(folder: Path) -> None:
    """The replica's own folder (see `replica_folder`): cwd, and first on sys.path, as a
    kernel started there has it, so a module beside the notebook imports."""
    os.chdir(folder)
    sys.path[0] = str(folder)


def _exit_code(error: BaseException) -> int:
    if isinstance(error, SystemExit):
        code = error.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return EXIT_CELL_FAILED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_CELL_FAILED


class Outcome:
    """How the run ended, for the status report: set by `run_script` as it goes."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.failed_cell: tuple[int, str] | None = None
        self.stall: str | None = None
        self.timed_out = False


def error_line(error: BaseException) -> str:
    """The exception's last line, as a traceback ends: `ValueError: bad pixel`."""
    return traceback.format_exception_only(type(error), error)[-1].strip()


def run_script(
    script: Script,
    workdir: Path,
    report: replica_report.ReplicaReport | None = None,
    outcome: Outcome | None = None,
    sweep: dict | None = None,
) -> int:
    outcome = outcome or Outcome()
    os.environ["MPLBACKEND"] = _matplotlib_backend()
    _enter_working_folder(workdir)
    warnings.filterwarnings("ignore", message="To exit: use 'exit', 'quit', or Ctrl-D.")
    shell = _make_shell()
    total = sum(1 for cell in script.cells if cell.number is not None)
    for cell in script.cells:
        if not cell.source or not runs_in_step(cell, script.header):
            continue
        if report is not None and cell.number is not None:
            report.cell(cell.number, total, cell.source)
        if cell.number is not None:
            shell.execution_count = cell.number  # tracebacks then say "Cell In[N]"
        source = cell.source
        if cell.label == "parameters" and sweep:
            source += "".join(f"{line}\n" for line in kernel_runner.parameter_lines(sweep))
        # The injected parameters cell takes no number: history numbers must only grow.
        result = shell.run_cell(source, store_history=cell.number is not None)
        sys.stdout.flush()
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, kernel_runner.RunTimedOut):
            raise error
        if error is not None:
            code = _exit_code(error)
            if code != 0:
                outcome.error = error_line(error)
                outcome.failed_cell = (cell.number or 0, cell.source)
            if code != 0 and not isinstance(error, SystemExit):
                where = f"code cell {cell.number}" if cell.number else f"the {cell.label} cell"
                reason = (str(error).strip().splitlines() or [""])[0][:200]
                print(
                    f"canfar-jlab: stopped at {where} ({type(error).__name__}: {reason}); "
                    "the cells after it did not run",
                    file=sys.stderr,
                    flush=True,
                )
            return code
        if shell.exit_now:  # exit() or quit() in a cell
            return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m canfar_jlab.export_runner SCRIPT.py", file=sys.stderr)
        return EXIT_REFUSED
    # Line by line, so a live log tail sees output as it happens.
    sys.stdout.reconfigure(line_buffering=True)
    path = Path(os.path.abspath(args[0]))
    try:
        script = parse_script(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, ScriptFormatError) as error:
        print(f"canfar-jlab: cannot run {args[0]}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(start_line(script.header), file=sys.stderr, flush=True)
    return run_replica(path.parent, script)


def start_line(header: dict) -> str:
    """The log's first line, written before the kernel starts (which takes seconds), so a
    live log shows at once that the replica runs and what: ``canfar-jlab: replica 3 of 4
    starting (notebook reduce_fits.ipynb, kernel python3)``."""
    replica, count = replica_report.replica_numbers()
    notebook = Path(str(header.get("notebook") or "notebook.ipynb")).name
    how = f"kernel {header.get('kernel') or 'python3'}"
    if header.get("runner") != "nbclient":
        how = "IPython script runner"
    if kernel_runner.reduce_mode():
        return f"canfar-jlab: reduce step of {count} replicas starting (notebook {notebook}, {how})"
    return f"{START_PREFIX}{replica} of {count} starting (notebook {notebook}, {how})"


def refuse_problems(header: dict) -> str | None:
    """A script whose export found problems is refused before its first cell: the reason."""
    problems = header.get("problems") or []
    for problem in problems:
        print(f"canfar-jlab: {problem}", file=sys.stderr)
    if not problems:
        return None
    print(
        "canfar-jlab: refusing to run a notebook that needs a person at a screen; "
        "fix those cells or tag them skip-batch",
        file=sys.stderr,
    )
    return f"refused: {problems[0]}"


def choose_runner(run_folder: Path, header: dict) -> str:
    """ "nbclient" when the export asked for it and this image can; else "script", saying why
    on the log's first line (a notebook in another language cannot fall back: refused)."""
    language = header.get("language") or "python"
    if header.get("runner") != "nbclient":
        if language not in kernel_runner.PYTHON_LANGUAGES:
            raise kernel_runner.RunnerError(
                f"cannot run this {language} notebook with the script runner; it needs nbclient"
            )
        return "script"
    if not (run_folder / (header.get("snapshot") or kernel_runner.SNAPSHOT_NAME)).is_file():
        reason = "the run folder has no notebook snapshot"
    else:
        reason = kernel_runner.missing_requirement()
    if reason is None:
        return "nbclient"
    if header.get("reduce_notebook"):
        raise kernel_runner.RunnerError(f"cannot run the reduce notebook: {reason}")
    if language not in kernel_runner.PYTHON_LANGUAGES:
        raise kernel_runner.RunnerError(f"cannot run this {language} notebook: {reason}")
    print(
        f"canfar-jlab: {reason}; running the notebook's exported script with IPython instead "
        "(no executed notebook is saved)",
        file=sys.stderr,
        flush=True,
    )
    return "script"


def run_replica(run_folder: Path, script: Script) -> int:
    """Run replica $REPLICA_ID in its own folder with the best runner; report all the way."""
    deadline = kernel_runner.run_deadline()  # CANFAR_JLAB_TIMEOUT counts from here
    replica, workdir = step_of(run_folder)
    try:
        runner = choose_runner(run_folder, kernel_runner.step_header(script.header))
    except kernel_runner.RunnerError as error:
        print(f"canfar-jlab: {error}", file=sys.stderr, flush=True)
        runner, refusal = "nbclient", error
    else:
        refusal = None
    report = start_report(run_folder, runner)
    outcome = Outcome()
    code = EXIT_CELL_FAILED
    folder = None
    try:
        if refusal is not None:
            outcome.error, code = str(refusal), refusal.code
            return code
        refused = refuse_problems(script.header)
        if refused is not None:
            outcome.error, code = refused, EXIT_REFUSED
            return code
        cwd = script.header.get("cwd")
        folder = replica_folder.prepare(
            workdir, Path(cwd) if cwd else None, run_folder.parent, link_parent=replica > 0
        )
        for problem in folder.problems:
            print(f"canfar-jlab: working folder: {problem}", file=sys.stderr)
        sweep = None if replica == 0 else kernel_runner.sweep_row(run_folder, replica)
        if runner == "nbclient":
            result = kernel_runner.run(
                run_folder, workdir, script.header, report, replica, deadline=deadline
            )
            code, outcome.error = result.code, result.error
            outcome.failed_cell, outcome.stall = result.failed_cell, result.stall
            outcome.timed_out = result.timed_out
        else:
            if importlib.util.find_spec("IPython") is None:
                raise kernel_runner.RunnerError("this script needs IPython: pip install ipython")
            if report is not None and (script.header.get("parameters") or sweep):
                report.set(parameters={**(script.header.get("parameters") or {}), **(sweep or {})})
            with _alarm(deadline):
                code = run_script(script, workdir, report, outcome, sweep)
    except kernel_runner.RunTimedOut:
        code = _timed_out(report, outcome)
    except kernel_runner.RunnerError as error:
        print(f"canfar-jlab: {error}", file=sys.stderr, flush=True)
        outcome.error, code = str(error), error.code
    except (OSError, ValueError) as error:
        print(f"canfar-jlab: cannot run replica {replica}: {error}", file=sys.stderr)
        outcome.error, code = f"cannot run replica {replica}: {error}", EXIT_REFUSED
    except BaseException as error:  # SIGTERM, an internal bug: the report still ends
        outcome.error = error_line(error)
        code = EXIT_INTERRUPTED if isinstance(error, KeyboardInterrupt) else EXIT_CELL_FAILED
        raise
    finally:
        if report is not None:
            files = folder.new_files() if folder is not None else []
            _finish_report(report, code, outcome, files)
    return code


def start_report(run_folder: Path, runner: str) -> replica_report.ReplicaReport | None:
    """This replica's status report, started; None (with a warning) when it cannot be written."""
    try:
        if kernel_runner.reduce_mode():  # the reduce step reports in reduce/status.json
            index, folder = step_of(run_folder)
            folder.mkdir(parents=True, exist_ok=True)
            count = replica_report.replica_numbers()[1]
            report = replica_report.ReplicaReport(folder, replica=index, count=count, runner=runner)
        else:
            report = replica_report.ReplicaReport.from_environment(run_folder, runner)
        report.start()
    except OSError as error:
        print(f"canfar-jlab: no status report ({error}); running anyway", file=sys.stderr)
        return None
    return report


def _finish_report(
    report: replica_report.ReplicaReport, code: int, outcome: Outcome, files: list[str]
) -> None:
    try:
        report.finish(
            code,
            error=outcome.error,
            failed_cell=outcome.failed_cell,
            stall=outcome.stall,
            files=files,
            timed_out=outcome.timed_out,
        )
    except OSError as error:
        print(f"canfar-jlab: cannot write the status report: {error}", file=sys.stderr)


# ---- the reduce step and the run's timeout (issue 17; see kernel_runner) ----------------------


def step_of(run_folder: Path) -> tuple[int, Path]:
    """(index, working folder) of what this process runs: (0, <run>/reduce) for the reduce
    step, (i, <run>/replicas/<i>) for replica i."""
    if kernel_runner.reduce_mode():
        return 0, run_folder / kernel_runner.REDUCE_DIR
    replica, _ = replica_report.replica_numbers()
    return replica, run_folder / "replicas" / str(replica)


def runs_in_step(cell: Cell, header: dict) -> bool:
    """Whether the script's `cell` runs in this step (replicas skip `reduce` cells; the reduce
    step runs them and the parameters cells only)."""
    tags = []
    if cell.number in (header.get("reduce_cells") or []):
        tags.append(kernel_runner.REDUCE_TAG)
    if cell.label == "parameters" or cell.number in (header.get("parameters_cells") or []):
        tags.append(kernel_runner.PARAMETERS_TAG)
    return kernel_runner.runs_in_step(tags, kernel_runner.reduce_mode())


class _alarm:
    """SIGALRM at `deadline` (time.monotonic()) raises RunTimedOut in the running cell."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.previous = None

    def __enter__(self) -> None:
        if self.deadline is None:
            return
        self.previous = signal.signal(signal.SIGALRM, self._ring)
        signal.setitimer(signal.ITIMER_REAL, max(0.001, self.deadline - time.monotonic()))

    def __exit__(self, *exc) -> None:
        if self.deadline is None:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous or signal.SIG_DFL)

    @staticmethod
    def _ring(signum, frame) -> None:
        raise kernel_runner.RunTimedOut()


def _timed_out(report, outcome: Outcome) -> int:
    """The script runner passed the run's deadline: one line, the outcome, exit code 124."""
    cell = (report.data.get("cell") if report is not None else None) or {}
    number = cell.get("index") or 0
    outcome.error = kernel_runner.timed_out_message(kernel_runner.run_timeout() or 0)
    outcome.failed_cell = (number, cell.get("first_line") or "")
    outcome.timed_out = True
    kernel_runner.print_timed_out(number, outcome.error)
    return kernel_runner.EXIT_TIMED_OUT


if __name__ == "__main__":
    sys.exit(main())
