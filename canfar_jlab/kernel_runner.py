"""Run a replica's notebook in a real Jupyter kernel with nbclient, as ``nbconvert --execute``.

The runner (`canfar_jlab.export_runner`, copied into the run folder as ``canfar_runner.py``)
hands over here when the replica's image has nbclient and the notebook's kernel. Then:

- the run folder's ``notebook.ipynb`` snapshot runs in the kernel its kernelspec names
  (ipykernel's ``python3`` for a Python notebook whose named kernel is not installed), from
  the replica's working folder (`replica_folder`);
- parameters are injected the papermill way: a new cell, tagged ``injected-parameters``, right
  after the first cell tagged ``parameters``; a sweep row from ``sweep.json`` (row i-1 for
  REPLICA_ID i) overrides the run's fixed parameters;
- every stream output and text result is written to stdout/stderr as it arrives (the live
  log stays live), with a marker line ``## canfar-jlab cell N/T: <first line>`` before each
  code cell; carriage-return progress bars are collapsed to at most one line per second per
  stream (the final state always);
- cells tagged ``skip-batch`` are not run; ``raises-exception`` cells may fail, as in
  nbconvert; any other error stops the replica (exit 1) naming the cell;
- the executed notebook, outputs and images included, is saved as
  ``replicas/<i>/executed.ipynb``, also when a cell failed;
- watchdogs (settings below, all bounded): a kernel that does not answer within the start
  timeout is started once more; a cell whose kernel went idle (every output of the cell in)
  but whose reply has not come `REPLY_STALL` seconds later is taken as done from its outputs
  (an error output fails it), as ipywidgets' interact() sometimes loses the reply; a cell is
  *stalled* when for `CELL_IDLE` seconds the kernel sent nothing and its process tree used no
  CPU; a stalled cell ends the replica with a message naming the cell, and the status report
  says ``"stall": "cell"``. A cell running longer than `CELL_TIMEOUT` ends the replica the same
  way (``"stall": "timeout"``).

Settings are environment variables of the replica (``-e NAME=SECONDS`` at launch):
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT_NAME = "notebook.ipynb"
SWEEP_NAME = "sweep.json"
EXECUTED_NAME = "executed.ipynb"
KERNEL_LOG_NAME = "kernel.log"  # the kernel process's own messages, as a server's console
SKIP_TAG = "skip-batch"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
MARKER_PREFIX = "## canfar-jlab cell "
PYTHON_LANGUAGES = {"python", "python3", "ipython", "ipython3"}
PROGRESS_INTERVAL = 1.0  # seconds between two archived lines of one progress bar
# Starts a progress bar's state that replaces the bar's previous line: a terminal's "cursor up,
# erase line, column 0", so `cat` and `tail -f` show the bar updating in place too; the log
# view (src/logbuffer.ts) replaces the previous line; the CLI and magic show the text after
# the last carriage return (`canfar_jlab.runs.follow.shown_line`).
PROGRESS_REWRITE = "\x1b[1A\x1b[2K\r"
EXIT_FAILED = 1
EXIT_REFUSED = 2

# name: (default, minimum, maximum) in seconds; none is unbounded.
SETTINGS = {
    "CANFAR_JLAB_KERNEL_START_TIMEOUT": (60, 5, 900),
    "CANFAR_JLAB_REPLY_STALL": (2, 1, 900),
    "CANFAR_JLAB_CELL_IDLE": (1800, 2, 7 * 86400),
    "CANFAR_JLAB_CELL_TIMEOUT": (2 * 86400, 5, 30 * 86400),
}
__doc__ += "".join(
    f"``{name}`` (default {default} s, {low}-{high})\n"
    for name, (default, low, high) in SETTINGS.items()
)

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# Keeps `%matplotlib qt` and the like working headless, as the script runner does; runs
# silently in the kernel before the first cell and leaves no names behind.
_PYTHON_SETUP = r"""
def _canfar_jlab_setup():
    import sys
    ip = get_ipython()
    original = ip.find_line_magic("matplotlib")
    if original is None:
        return
    browser = {"inline", "widget", "ipympl", "notebook", "nbagg"}
    def matplotlib(line=""):
        words = line.split()
        if any(word in ("-l", "--list") for word in words):
            return original(line)
        options = [word for word in words if word.startswith("-")]
        chosen = next((word for word in words if not word.startswith("-")), None)
        if chosen is not None and chosen.lower() not in browser:
            print(f"canfar-jlab: %matplotlib {chosen} needs a display; using inline in batch",
                  file=sys.stderr)
        return original(" ".join([*options, "inline"]))
    ip.register_magic_function(matplotlib, "line", "matplotlib")
    ip.enable_gui = lambda gui=None: None
_canfar_jlab_setup()
del _canfar_jlab_setup
"""


class RunnerError(Exception):
    """Cannot run: the message is one line for the log, `code` the exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


class CellStalled(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Settings:
    start_timeout: int
    reply_stall: int
    cell_idle: int
    cell_timeout: int

    @classmethod
    def from_environment(cls) -> Settings:
        values = []
        for name, (default, low, high) in SETTINGS.items():
            text = os.environ.get(name, "").strip()
            try:
                value = int(float(text)) if text else default
            except ValueError:
                print(
                    f"canfar-jlab: {name}={text!r} is not a number; using {default}",
                    file=sys.stderr,
                )
                value = default
            values.append(min(max(value, low), high))
        return cls(*values)


# ---- what can run here ----------------------------------------------------------------------


def missing_requirement() -> str | None:
    """Why this interpreter cannot run notebooks in a kernel (None: it can)."""
    # nbformat imports jsonschema, which imports rfc3987_syntax when installed: that builds
    # a grammar at import, 3.5 s before the first cell on our machines, for an IRI format
    # check nbformat never makes. jsonschema skips the check when the import fails.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    for module in ("nbclient", "nbformat", "jupyter_client"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed in this image"
    return None


def notebook_kernel(notebook: dict) -> tuple[str, str]:
    """The kernelspec name and language a notebook asks for (python3/python when unsaid)."""
    metadata = notebook.get("metadata") or {}
    spec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    language = (spec.get("language") or info.get("name") or "python").lower()
    name = spec.get("name") or ("python3" if language in PYTHON_LANGUAGES else language)
    return name, language


def resolve_kernel(notebook: dict) -> tuple[str | None, str]:
    """(kernel name to start, note for the log); name None with the reason when none can run.

    A Python notebook whose named kernel (a conda env's, say) is missing runs in ipykernel's
    python3 kernel, as JupyterLab offers to; another language needs its own kernel.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name, language = notebook_kernel(notebook)
    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
        return name, ""
    except NoSuchKernel:
        pass
    if language in PYTHON_LANGUAGES:
        try:
            manager.get_kernel_spec("python3")
            return "python3", f"kernel {name!r} is not installed here; running it with python3"
        except NoSuchKernel:
            return None, "ipykernel is not installed in this image"
    installed = ", ".join(sorted(manager.find_kernel_specs())) or "none"
    return None, (
        f"the notebook's kernel {name!r} ({language}) is not installed in this image "
        f"(installed: {installed})"
    )


# ---- parameters ------------------------------------------------------------------------------


def sweep_row(run_folder: Path, replica: int) -> dict | None:
    """Replica i's row of the run's sweep.json, or None when the run has no sweep."""
    path = Path(run_folder) / SWEEP_NAME
    if not path.is_file():
        return None
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise RunnerError(f"{SWEEP_NAME} is not a list of parameter objects")
    if not 1 <= replica <= len(rows):
        raise RunnerError(f"{SWEEP_NAME} has {len(rows)} rows, none for replica {replica}")
    return rows[replica - 1]


def parameter_lines(parameters: dict) -> list[str]:
    """Python assignments; values come from JSON, so repr() is a literal meaning the same."""
    return [f"{name} = {value!r}" for name, value in parameters.items()]


def inject_parameters(notebook, parameters: dict, language: str) -> None:
    """Papermill's way: a cell tagged injected-parameters right after the parameters cell."""
    if not parameters:
        return
    if language not in PYTHON_LANGUAGES:
        raise RunnerError(f"parameters can only be set in Python notebooks, not {language}")
    import nbformat

    cells = notebook.cells
    at = next(
        (
            index + 1
            for index, cell in enumerate(cells)
            if cell.cell_type == "code" and PARAMETERS_TAG in (cell.metadata.get("tags") or [])
        ),
        0,
    )
    source = "\n".join(["# Parameters", *parameter_lines(parameters)])
    injected = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    cells.insert(at, injected)


# ---- the log ----------------------------------------------------------------------------------


class LineStreamer:
    """Writes a kernel stream to a file object line by line, collapsing carriage returns.

    A line rewritten with ``\\r`` (a progress bar) is written at most once per
    `PROGRESS_INTERVAL`, and its final state when the line ends, so a bar that updates 900
    times in a minute leaves about 60 lines, not 900. A state that rewrites the bar's previous
    line, with nothing written in between, starts with `PROGRESS_REWRITE`: the log view
    replaces the previous line with it, so the bar is one updating line there, while the
    archived file keeps one line per state. `lines` counts the lines written to `out`,
    shared by the streams writing to the same log.
    """

    def __init__(self, out, interval: float = PROGRESS_INTERVAL, lines: list[int] | None = None):
        self.out = out
        self.interval = interval
        self.pending = ""  # the current line, not written yet (it holds a \r)
        self.open = False  # part of the current line was written already (no \r seen)
        self.last_emit = 0.0
        self.last_state: str | None = None
        self.lines = [0] if lines is None else lines
        self.bar_line: int | None = None  # `lines` right after this bar's last written state

    def write(self, text: str) -> None:
        text = text.replace("\r\n", "\n")
        parts = text.split("\n")
        for index, part in enumerate(parts):
            ended = index < len(parts) - 1
            self._feed(part, ended)
        self.out.flush()

    def _state(self) -> str:
        """What a terminal shows of the pending line: the text after its last \\r."""
        line = self.pending.rstrip("\r")
        return line[line.rfind("\r") + 1 :]

    def _write_state(self, state: str) -> None:
        rewrite = bool(state) and self.bar_line == self.lines[0]
        self.out.write((PROGRESS_REWRITE if rewrite else "") + state + "\n")
        self.lines[0] += 1
        self.bar_line = self.lines[0]

    def _end_bar(self) -> None:
        self.pending, self.last_state, self.bar_line = "", None, None

    def _feed(self, part: str, ended: bool) -> None:
        if "\r" in part or self.pending:
            if self.open:  # text then a \r on the same line: end the written part first
                self.out.write("\n")
                self.lines[0] += 1
                self.open = False
            if not self.pending:  # a bar starts: its first line waits one interval too
                self.last_emit = time.monotonic()
            self.pending += part
            state = self._state()
            if ended:
                if state != self.last_state or not self.last_state:
                    self._write_state(state)
                self._end_bar()
            elif time.monotonic() - self.last_emit >= self.interval and state:
                if state != self.last_state:
                    self._write_state(state)
                    self.last_state = state
                self.last_emit = time.monotonic()
                self.pending = state
            return
        self.out.write(part + ("\n" if ended else ""))
        self.lines[0] += ended
        self.open = not ended and (self.open or bool(part))

    def finish_line(self) -> None:
        """Before a marker or the next result: end what is open, write a pending bar's state."""
        if self.pending:
            state = self._state()
            if state and state != self.last_state:
                self._write_state(state)
            self._end_bar()
        elif self.open:
            self.out.write("\n")
            self.lines[0] += 1
        self.open = False
        self.out.flush()


# ---- running -----------------------------------------------------------------------------------


def _client_class():
    from nbclient import NotebookClient

    class BatchClient(NotebookClient):
        """NotebookClient that echoes outputs as they arrive and watches each cell."""

        def __init__(self, nb, *, settings: Settings, report, **kwargs) -> None:
            super().__init__(nb, **kwargs)
            self.settings = settings
            self.report = report
            lines = [0]  # both streams write to the replica's one log
            self.streams = {
                "stdout": LineStreamer(sys.stdout, lines=lines),
                "stderr": LineStreamer(sys.stderr, lines=lines),
            }
            self.last_activity = time.monotonic()

        # -- echoing

        def end_lines(self) -> None:
            for stream in self.streams.values():
                stream.finish_line()

        def echo_data(self, data: dict) -> None:
            if "text/plain" in (data or {}):
                self.end_lines()
                text = data["text/plain"]
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
                sys.stdout.flush()

        def process_message(self, msg, cell, cell_index):
            self.last_activity = time.monotonic()
            kind, content = msg["msg_type"], msg["content"]
            if kind == "update_display_data":
                self.echo_data(content.get("data") or {})
            return super().process_message(msg, cell, cell_index)

        def output(self, outs, msg, display_id, cell_index):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                stream = self.streams.get(content.get("name"), self.streams["stdout"])
                stream.write(content.get("text", ""))
            elif kind in ("execute_result", "display_data"):
                self.echo_data(content.get("data") or {})
            elif kind == "error":
                self.end_lines()
                traceback = "\n".join(content.get("traceback") or [])
                print(_ANSI.sub("", traceback), file=sys.stderr, flush=True)
            return super().output(outs, msg, display_id, cell_index)

        # -- watching

        async def async_execute_cell(
            self, cell, cell_index, execution_count=None, store_history=True
        ):
            self.last_activity = time.monotonic()
            last_cpu = self._cpu()
            task = asyncio.ensure_future(
                super().async_execute_cell(cell, cell_index, execution_count, store_history)
            )
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.25)
                if done:
                    return task.result()
                now = time.monotonic()
                cpu = self._cpu()
                if cpu != last_cpu:
                    last_cpu, self.last_activity = cpu, now
                stall = None
                if now - self.last_activity > self.settings.cell_idle:
                    stall = (
                        f"no output and no CPU use for {self.settings.cell_idle} s "
                        "(CANFAR_JLAB_CELL_IDLE)"
                    )
                if stall:
                    task.cancel()
                    try:
                        await task
                    except BaseException:  # noqa: S110 - cancelled on purpose
                        pass
                    raise CellStalled(stall, "cell")

        def _cpu(self):
            return None if self.report is None else self.report.meter.descendants_cpu

        async def _async_poll_for_reply(
            self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive
        ):
            """nbclient's wait for the cell's reply, raced against the kernel going idle for
            the cell: once idle has come (every output of the cell is in), the reply has
            `reply_stall` seconds, then the cell is done without it. ipywidgets' interact()
            under nbclient loses a reply now and then (1 replica in 6 here), and waiting for
            it ended the replica though its cell was over."""
            reply = asyncio.ensure_future(
                super()._async_poll_for_reply(
                    msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive
                )
            )
            try:
                first = asyncio.FIRST_COMPLETED
                await asyncio.wait({reply, task_poll_output_msg}, return_when=first)
                idle = task_poll_output_msg.done() and not task_poll_output_msg.cancelled()
                if not reply.done() and idle and task_poll_output_msg.exception() is None:
                    await asyncio.wait({reply}, timeout=self.settings.reply_stall)
                if reply.done() or not idle or task_poll_output_msg.exception() is not None:
                    return await reply
            finally:
                if not reply.done():
                    reply.cancel()
            task_poll_kernel_alive.cancel()
            late = await self._late_reply(msg_id)
            if late is not None:
                return late
            self.end_lines()
            print(
                "canfar-jlab: the kernel finished this cell but its reply did not come within "
                f"{self.settings.reply_stall} s (CANFAR_JLAB_REPLY_STALL); going on",
                file=sys.stderr,
                flush=True,
            )
            return _reply_from_outputs(msg_id, cell)

        async def _late_reply(self, msg_id):
            """The reply, if it is waiting on the shell channel after all."""
            from queue import Empty

            try:
                while True:
                    msg = await _maybe(self.kc.shell_channel.get_msg(timeout=0.05))
                    if msg["parent_header"].get("msg_id") == msg_id:
                        return msg
            except Empty:
                return None

    return BatchClient


def _reply_from_outputs(msg_id: str, cell) -> dict:
    """An execute_reply for a cell whose kernel went idle without sending one: an error
    output (the cell raised) makes it an error reply, as the kernel's would have been."""
    errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    content: dict = {"status": "ok", "execution_count": None}
    if errors:
        error = errors[-1]
        content = {
            "status": "error",
            "ename": error.get("ename", ""),
            "evalue": error.get("evalue", ""),
            "traceback": list(error.get("traceback") or []),
        }
    return {
        "header": {"msg_type": "execute_reply"},
        "parent_header": {"msg_id": msg_id},
        "metadata": {},
        "content": content,
    }


@dataclass
class Result:
    code: int
    error: str | None = None
    failed_cell: tuple[int, str] | None = None
    stall: str | None = None
    timed_out: bool = False


def run(
    run_folder: Path,
    workdir: Path,
    header: dict,
    report,
    replica: int,
    deadline: float | None = None,
) -> Result:
    """Execute the snapshot for replica `replica` in `workdir`; save executed.ipynb there.
    `deadline` (time.monotonic()) ends the run as timed out (`CANFAR_JLAB_TIMEOUT`)."""
    import nbformat

    header = step_header(header)
    snapshot = Path(run_folder) / (header.get("snapshot") or SNAPSHOT_NAME)
    notebook = nbformat.read(snapshot, as_version=4)
    select_cells(notebook, header)
    kernel, note = resolve_kernel(notebook)
    if kernel is None:
        raise RunnerError(note)
    if note:
        print(f"canfar-jlab: {note}", file=sys.stderr, flush=True)
    _, language = notebook_kernel(notebook)
    parameters = dict(header.get("parameters") or {})
    if not reduce_mode():  # the reduce step has no sweep row of its own
        parameters.update(sweep_row(run_folder, replica) or {})
    if report is not None:
        report.set(parameters=parameters or None)
    inject_parameters(notebook, parameters, language)
    if language in PYTHON_LANGUAGES:
        # Figures as PNG in the executed notebook, whatever backend the image's env names.
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    settings = Settings.from_environment()
    return asyncio.run(
        _execute_until(deadline, notebook, kernel, language, workdir, settings, report)
    )


async def _execute(
    notebook, kernel, language, workdir: Path, settings: Settings, report, clients=None
) -> Result:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    client = _client_class()(
        notebook,
        settings=settings,
        report=report,
        kernel_name=kernel,
        timeout=settings.cell_timeout,
        startup_timeout=settings.start_timeout,
        skip_cells_with_tag=SKIP_TAG,
        resources={"metadata": {"path": str(workdir)}},
        ipython_hist_file=":memory:",
    )
    if clients is not None:  # the deadline's watcher interrupts this client's kernel
        clients.append(client)
    executed = Path(workdir) / EXECUTED_NAME
    numbers = {}  # cell position -> 1-based code-cell number (injected cell: None)
    count = 0
    for position, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and INJECTED_TAG not in (cell.metadata.get("tags") or []):
            count += 1
            numbers[position] = count
    total = count
    result = Result(code=0)
    current: tuple[int, str] | None = None
    try:
        await _start_kernel(client, settings, Path(workdir) / KERNEL_LOG_NAME)
        async with client.async_setup_kernel():
            info = await client.async_wait_for_reply(await _maybe(client.kc.kernel_info()))
            if info and "language_info" in info.get("content", {}):
                notebook.metadata["language_info"] = info["content"]["language_info"]
            if language in PYTHON_LANGUAGES:
                await client.async_wait_for_reply(
                    await _maybe(client.kc.execute(_PYTHON_SETUP, silent=True))
                )
            for position, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                number = numbers.get(position)
                if SKIP_TAG in (cell.metadata.get("tags") or []):
                    continue
                current = (number or 0, cell.source)
                client.end_lines()
                label = f"{number}/{total}" if number else "parameters"
                first = next(
                    (line.strip() for line in cell.source.splitlines() if line.strip()), ""
                )
                print(f"{MARKER_PREFIX}{label}: {first[:120]}", flush=True)
                if report is not None and number:
                    report.cell(number, total, cell.source)
                await client.async_execute_cell(
                    cell, position, execution_count=client.code_cells_executed + 1
                )
            client.end_lines()
            client.set_widgets_metadata()
    except CellExecutionError as error:
        client.end_lines()
        result = _failed(current, _error_line(error))
    except CellStalled as error:
        client.end_lines()
        result = _failed(current, f"stalled: {error}", stall=error.kind)
    except CellTimeoutError:
        client.end_lines()
        result = _failed(
            current,
            f"timed out after {settings.cell_timeout} s (CANFAR_JLAB_CELL_TIMEOUT)",
            stall="timeout",
        )
    except DeadKernelError:
        client.end_lines()
        result = _failed(current, "the kernel died (out of memory?)")
        _print_tail(Path(workdir) / KERNEL_LOG_NAME)
    except KernelStartStalled as error:
        print(f"canfar-jlab: {error}", file=sys.stderr, flush=True)
        result = Result(code=EXIT_FAILED, error=str(error), stall="kernel-start")
    finally:
        _save(notebook, executed)
    return result


class KernelStartStalled(Exception):
    pass


async def _start_kernel(client, settings: Settings, log: Path) -> None:
    """Start the kernel and wait for it to answer; once more if it does not in time, or if it
    died because another process took one of its ports between their choice and its bind (the
    client picks free ports, the kernel binds them later: replicas starting kernels at once
    on one node race for them).

    The kernel process's own stdout/stderr (its start-up warnings; what JupyterLab shows in
    the server's console, not in the notebook) go to `log`; the notebook's outputs come
    through the kernel's messages.
    """
    for attempt in (1, 2):
        client.km = client.create_kernel_manager()
        written = log.stat().st_size if log.exists() else 0
        try:
            with open(log, "ab") as console:
                await client.async_start_new_kernel(stdout=console, stderr=console)
            await client.async_start_new_kernel_client()
            return
        except (RuntimeError, TimeoutError, asyncio.TimeoutError) as error:
            if client.km is not None:
                await client._async_cleanup_kernel()
            client.km, client.kc = None, None
            if "died" in str(error) and attempt == 1 and _port_taken(log, written):
                print(
                    "canfar-jlab: another process took the kernel's port while it started; "
                    "starting it once more on new ports",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            if "died" in str(error):  # not a stall: starting it again would fail the same way
                _print_tail(log)
                raise RunnerError(
                    f"the kernel {client.kernel_name!r} exited while starting (its messages "
                    f"are above and in {log.name})",
                    EXIT_FAILED,
                ) from None
            if attempt == 2:
                raise KernelStartStalled(
                    f"the kernel did not start within {settings.start_timeout} s, twice "
                    f"(CANFAR_JLAB_KERNEL_START_TIMEOUT): {error}"
                ) from None
            print(
                f"canfar-jlab: the kernel did not start within {settings.start_timeout} s; "
                "starting it once more",
                file=sys.stderr,
                flush=True,
            )


def _port_taken(log: Path, start: int) -> bool:
    """Whether the kernel's console, from byte `start`, says a port was already in use."""
    try:
        with open(log, "rb") as console:
            console.seek(start)
            return b"Address already in use" in console.read(1 << 20)
    except OSError:
        return False


def _failed(current, error: str, stall: str | None = None) -> Result:
    number, source = current if current else (0, "")
    where = f"code cell {number}" if number else "the injected parameters cell"
    print(
        f"canfar-jlab: stopped at {where} ({error}); the cells after it did not run",
        file=sys.stderr,
        flush=True,
    )
    return Result(code=EXIT_FAILED, error=error, failed_cell=(number, source), stall=stall)


def _error_line(error) -> str:
    """`ValueError: bad pixel` from nbclient's CellExecutionError."""
    name = getattr(error, "ename", None)
    value = getattr(error, "evalue", None)
    if name:
        return f"{name}: {value}" if value else name
    lines = [line for line in str(error).splitlines() if line.strip()]
    return _ANSI.sub("", lines[-1]) if lines else type(error).__name__


def _save(notebook, path: Path) -> None:
    import nbformat

    try:
        temporary = path.with_name(f".{path.name}.tmp")
        nbformat.write(notebook, temporary)
        os.replace(temporary, path)
    except Exception as error:  # a notebook that cannot be saved must not hide the run's outcome
        print(f"canfar-jlab: cannot save {path}: {error}", file=sys.stderr, flush=True)


def _print_tail(log: Path, lines: int = 20) -> None:
    """The end of the kernel's console, when it died: often the reason."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return
    for line in tail:
        print(f"canfar-jlab: kernel: {line}", file=sys.stderr)
    sys.stderr.flush()


async def _maybe(value):
    return await value if asyncio.iscoroutine(value) else value


# ---- the whole run's timeout and the reduce step (issue 17) ------------------------------------
#
# ``CANFAR_JLAB_TIMEOUT`` (seconds) bounds the whole run from the runner's start: at the deadline
# the runner interrupts the kernel, ends it, reports ``"state": "timed_out"`` and exits 124 (as
# coreutils' ``timeout``). ``CANFAR_JLAB_MODE=reduce`` makes this the run's reduce step: it runs
# in ``reduce/`` of the run folder, and only the cells tagged ``reduce`` run, with the cells
# tagged ``parameters`` before them (the run's parameters apply; nothing else of the notebook
# runs, so a reduce cell does its own imports). Replicas skip the ``reduce`` cells. With
# ``CANFAR_JLAB_REDUCE_NOTEBOOK=NAME.ipynb`` (a file in the run folder) the reduce step runs that
# notebook whole instead.

TIMEOUT_ENV = "CANFAR_JLAB_TIMEOUT"
MODE_ENV = "CANFAR_JLAB_MODE"
REDUCE_MODE = "reduce"
REDUCE_NOTEBOOK_ENV = "CANFAR_JLAB_REDUCE_NOTEBOOK"
REDUCE_TAG = "reduce"
REDUCE_DIR = "reduce"
EXIT_TIMED_OUT = 124
CLEANUP_SECONDS = 10.0  # a timed-out kernel's shutdown is waited for this long, then killed


class RunTimedOut(BaseException):
    """The run's deadline passed (raised in the script runner by SIGALRM). BaseException, so a
    cell's ``except Exception`` does not swallow it."""


def run_timeout() -> float | None:
    """Seconds the whole run may take, from `CANFAR_JLAB_TIMEOUT` (None: no limit)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        print(f"canfar-jlab: {TIMEOUT_ENV}={text!r} is not a number; no timeout", file=sys.stderr)
        return None
    return value if value > 0 else None


def human_seconds(seconds: float) -> str:
    """`3s`, `1m30s`, `2h`, `1d4h`: a duration as a person writes it (two units at most)."""
    left = max(0, round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts[:2]) or "0s"


def timed_out_message(seconds: float) -> str:
    return f"timed out after {human_seconds(seconds)}"


def reduce_mode() -> bool:
    return os.environ.get(MODE_ENV, "").strip().lower() == REDUCE_MODE


def step_header(header: dict) -> dict:
    """The script header as this step runs it: the reduce step's own notebook, when the run
    has one (run whole, without the run's parameters)."""
    name = os.environ.get(REDUCE_NOTEBOOK_ENV, "").strip()
    if not reduce_mode() or not name:
        return header
    if Path(name).name != name or not name.endswith(".ipynb"):
        raise RunnerError(f"{REDUCE_NOTEBOOK_ENV}={name!r} must name a notebook in the run folder")
    return {**header, "snapshot": name, "parameters": {}, "reduce_notebook": True}


def runs_in_step(tags, reduce: bool) -> bool:
    """Whether a code cell with `tags` runs: replicas skip `reduce` cells; the reduce step runs
    only them and the `parameters` cells."""
    if reduce:
        return REDUCE_TAG in tags or PARAMETERS_TAG in tags
    return REDUCE_TAG not in tags


def select_cells(notebook, header: dict) -> None:
    """Tag the cells this step does not run `skip-batch` (the runner then skips them)."""
    if header.get("reduce_notebook"):
        return
    reduce = reduce_mode()
    for cell in notebook.cells:
        tags = list(cell.metadata.get("tags") or [])
        if cell.cell_type == "code" and not runs_in_step(tags, reduce) and SKIP_TAG not in tags:
            cell.metadata["tags"] = [*tags, SKIP_TAG]


def run_deadline() -> float | None:
    """time.monotonic() at which this run times out (the timeout counts from now)."""
    timeout = run_timeout()
    return None if timeout is None else time.monotonic() + timeout


async def _execute_until(deadline: float | None, *args) -> Result:
    """`_execute`, ended at `deadline`: the kernel interrupted, then shut down."""
    if deadline is None:
        return await _execute(*args)
    clients: list = []
    task = asyncio.ensure_future(_execute(*args, clients=clients))
    done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
    if done:
        return task.result()
    report = args[-1]
    cell = (report.data.get("cell") if report is not None else None) or {}
    current = (cell.get("index") or 0, cell.get("first_line") or "")
    message = timed_out_message(run_timeout() or 0)
    client = clients[0] if clients else None
    if client is not None and getattr(client, "km", None) is not None:
        try:
            await _maybe(client.km.interrupt_kernel())
        except Exception:  # noqa: S110 - a kernel still starting has nothing to interrupt
            pass
    task.cancel()  # nbclient's setup then shuts the kernel down; the notebook is saved
    done, _ = await asyncio.wait({task}, timeout=CLEANUP_SECONDS)
    km = getattr(client, "km", None)
    if km is not None:
        try:
            await _maybe(km.shutdown_kernel(now=True))
        except Exception:  # noqa: S110 - gone already
            pass
    # What nbclient left waiting on the kernel ends with it, quietly ("Kernel died").
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    others = [each for each in asyncio.all_tasks() if each is not asyncio.current_task()]
    for each in others:
        each.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    if client is not None:
        client.end_lines()
    print_timed_out(current[0], message)
    return Result(code=EXIT_TIMED_OUT, error=message, failed_cell=current, timed_out=True)


def print_timed_out(number: int, message: str) -> None:
    """The one log line a timed-out run ends with."""
    where = f"code cell {number}" if number else "its start"
    print(
        f"canfar-jlab: stopped at {where} ({message}, {TIMEOUT_ENV}); the cells after it did "
        "not run",
        file=sys.stderr,
        flush=True,
    )
