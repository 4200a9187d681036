"""The kernel runner's edges: fallback, a missing kernel, watchdogs, progress bars, folders."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canfar_jlab.export import export_notebook
from canfar_jlab.kernel_runner import MARKER_PREFIX, PROGRESS_REWRITE, LineStreamer
from canfar_jlab.replica_folder import prepare


def status_of(run_folder: Path, replica: int = 1) -> dict:
    return json.loads((run_folder / "replicas" / str(replica) / "status.json").read_text())


def kernelspec(folder: Path, name: str, argv: list[str], language: str = "python") -> Path:
    """A kernelspec in a Jupyter data folder of our own (`JUPYTER_PATH=folder`)."""
    spec = folder / "kernels" / name
    spec.mkdir(parents=True)
    kernel = {"argv": argv, "display_name": name, "language": language}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return folder


# ---- fallback and missing kernels ------------------------------------------------------------


def test_without_nbclient_the_script_runner_runs_and_the_first_line_says_why(
    make_notebook, helpers, tmp_path
):
    # An interpreter where `import nbclient` fails, as in an image without it.
    shadow = tmp_path / "shadow" / "nbclient"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no nbclient in this image')\n")
    exported = export_notebook(make_notebook(["print('ran')", "6 * 7"]), tmp_path / "run")
    run = helpers.run_batch(exported.argv, env={"PYTHONPATH": str(tmp_path / "shadow")})
    assert run.returncode == 0, run.stderr
    # first the start line (at process start, before any import), then why
    assert run.stderr.splitlines()[0] == (
        "canfar-jlab: replica 1 of 1 starting (notebook notebook.ipynb, kernel python3)"
    )
    assert run.stderr.splitlines()[1] == (
        "canfar-jlab: nbclient is not installed in this image; running the notebook's exported "
        "script with IPython instead (no executed notebook is saved)"
    )
    assert run.stdout == "ran\n42\n"
    assert status_of(tmp_path / "run")["runner"] == "script"
    assert not (tmp_path / "run" / "replicas" / "1" / "executed.ipynb").exists()


def test_a_missing_kernel_is_the_first_log_line_of_the_replica(make_notebook, helpers, tmp_path):
    notebook = make_notebook(
        ["x <- 1"],
        metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}},
    )
    exported = export_notebook(notebook, tmp_path / "run")
    assert exported.ok
    run = helpers.run_batch(exported.argv, env={"JUPYTER_PATH": str(tmp_path / "none")})
    assert run.returncode == 2
    start, first = run.stderr.splitlines()[:2]
    assert start == "canfar-jlab: replica 1 of 1 starting (notebook notebook.ipynb, kernel ir)"
    assert first.startswith(
        "canfar-jlab: the notebook's kernel 'ir' (r) is not installed in this image (installed: "
    )
    report = status_of(tmp_path / "run")
    assert report["state"] == "failed" and "'ir' (r) is not installed" in report["error"]


async def test_the_local_engine_refuses_a_missing_kernel_before_launch(
    engine, make_notebook, tmp_path
):
    from canfar_jlab.credentials import engine_credentials
    from canfar_jlab.runs import LaunchRefused, LaunchRequest, RunStore, launch
    from canfar_jlab.skaha import SkahaClient

    notebook = make_notebook(
        ["echo hi"],
        metadata={"kernelspec": {"name": "nosuchkernel", "display_name": "X", "language": "x"}},
    )
    store = RunStore(tmp_path / "runs")
    async with SkahaClient(engine_credentials(engine.home, start=False)) as client:
        with pytest.raises(LaunchRefused) as refused:
            await launch(LaunchRequest(notebook=str(notebook)), client, store)
    assert "kernel 'nosuchkernel' (x) is not installed" in str(refused.value)
    assert not store.root.exists() or list(store.root.iterdir()) == []


# ---- watchdogs ----------------------------------------------------------------------------------

SLOW_FIRST_START = """
import os, sys, time
from pathlib import Path
marker = Path(sys.argv[1])
if not marker.exists():
    marker.write_text("stalled once")
    time.sleep(600)  # a kernel that never answers; the runner must give up on it
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *sys.argv[2:]])
"""


def run_in_wrapped_kernel(wrapper, name, make_notebook, helpers, tmp_path, env=None):
    """Run a one-cell notebook in kernel `name`, started through the `wrapper` script (given a
    marker file, then ipykernel's arguments) instead of ipykernel itself: (run, marker)."""
    script = tmp_path / f"{name}.py"
    script.write_text(wrapper)
    marker = tmp_path / f"{name}-marker"
    jupyter = kernelspec(
        tmp_path / "jupyter",
        name,
        [sys.executable, str(script), str(marker), "-f", "{connection_file}"],
    )
    notebook = make_notebook(
        ["print('kernel answered')"],
        metadata={"kernelspec": {"name": name, "display_name": name, "language": "python"}},
    )
    exported = export_notebook(notebook, tmp_path / "run")
    run = helpers.run_batch(exported.argv, env={"JUPYTER_PATH": str(jupyter), **(env or {})})
    return run, marker


def test_a_stalled_kernel_start_is_retried_once(make_notebook, helpers, tmp_path):
    run, marker = run_in_wrapped_kernel(
        SLOW_FIRST_START,
        "slowstart",
        make_notebook,
        helpers,
        tmp_path,
        env={"CANFAR_JLAB_KERNEL_START_TIMEOUT": "5"},
    )
    assert run.returncode == 0, run.stderr
    assert marker.read_text() == "stalled once"
    assert "canfar-jlab: the kernel did not start within 5 s; starting it once more" in run.stderr
    assert run.stdout.endswith("kernel answered\n")
    assert status_of(tmp_path / "run")["state"] == "completed"


PORT_TAKEN_FIRST = """
import json, os, socket, sys
from pathlib import Path
marker = Path(sys.argv[1])
args = sys.argv[2:]
if not marker.exists():
    marker.write_text("port taken once")
    # Another replica's kernel got to one of our ports first: held open across exec, so the
    # kernel's own bind fails for real.
    port = json.loads(Path(args[args.index("-f") + 1]).read_text())["stdin_port"]
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen()
    os.set_inheritable(taken.fileno(), True)
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *args])
"""


def test_a_kernel_whose_port_was_taken_is_started_once_more(make_notebook, helpers, tmp_path):
    run, marker = run_in_wrapped_kernel(
        PORT_TAKEN_FIRST, "porttaken", make_notebook, helpers, tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert marker.read_text() == "port taken once"
    assert (
        "Address already in use" in (tmp_path / "run" / "replicas" / "1" / "kernel.log").read_text()
    )
    assert "canfar-jlab: another process took the kernel's port while it started" in run.stderr
    assert run.stdout.endswith("kernel answered\n")
    assert status_of(tmp_path / "run")["state"] == "completed"


def test_a_cell_that_stalls_ends_the_replica_naming_the_cell(make_notebook, helpers, tmp_path):
    notebook = make_notebook(
        [
            "print('first')",
            "import threading\nthreading.Event().wait()  # waits for nothing, forever",
            "print('never')",
        ]
    )
    exported = export_notebook(notebook, tmp_path / "run")
    started = time.monotonic()
    run = helpers.run_batch(exported.argv, env={"CANFAR_JLAB_CELL_IDLE": "3"})
    assert time.monotonic() - started < 60
    assert run.returncode == 1
    assert (
        "canfar-jlab: stopped at code cell 2 (stalled: no output and no CPU use for 3 s "
        "(CANFAR_JLAB_CELL_IDLE)); the cells after it did not run"
    ) in run.stderr
    assert "never" not in run.stdout
    report = status_of(tmp_path / "run")
    assert report["stall"] == "cell" and report["failed_cell"]["index"] == 2
    assert report["error"].startswith("stalled: no output and no CPU use for 3 s")


@pytest.mark.parametrize(
    ("value", "expected"), [("", 1800), ("0", 2), ("99999999", 7 * 86400), ("x", 1800)]
)
def test_watchdog_settings_are_bounded(monkeypatch, value, expected):
    from canfar_jlab.kernel_runner import Settings

    monkeypatch.setenv("CANFAR_JLAB_CELL_IDLE", value)
    assert Settings.from_environment().cell_idle == expected


# ---- the log -------------------------------------------------------------------------------------


def test_a_fast_progress_bar_leaves_one_line():
    out = io.StringIO()
    stream = LineStreamer(out)
    for percent in range(901):
        stream.write(f"\r{percent / 9:5.1f}%|{'#' * (percent // 90)}")
    stream.write("\n")
    stream.write("done\n")
    assert out.getvalue() == "100.0%|##########\ndone\n"


def test_a_slow_progress_bar_leaves_at_most_one_line_per_interval():
    out = io.StringIO()
    stream = LineStreamer(out, interval=0.05)
    started = time.monotonic()
    updates = 0
    while time.monotonic() - started < 0.5:
        updates += 1
        stream.write(f"\rstep {updates}")
    stream.write("\n")
    elapsed = time.monotonic() - started
    lines = out.getvalue().split("\n")[:-1]
    assert updates > 100 and 2 <= len(lines) <= elapsed / 0.05 + 2
    # the first state opens the bar's line; each later one rewrites it
    assert not lines[0].startswith(PROGRESS_REWRITE)
    assert all(line.startswith(PROGRESS_REWRITE) for line in lines[1:])
    assert lines[-1] == f"{PROGRESS_REWRITE}step {updates}"


def test_a_bar_after_other_output_opens_a_new_line():
    lines = [0]
    out = io.StringIO()
    err = LineStreamer(out, interval=0.0, lines=lines)
    std = LineStreamer(out, interval=0.0, lines=lines)
    err.write("\r 10%")
    err.write("\r 20%")
    std.write("hello\n")  # another stream's line in between: the next state cannot rewrite
    err.write("\r 30%\n")
    err.write("\r  0%")  # a second bar
    err.write("\r 50%")
    err.finish_line()
    up = PROGRESS_REWRITE
    assert out.getvalue() == f" 10%\n{up} 20%\nhello\n 30%\n  0%\n{up} 50%\n"


def test_text_then_a_carriage_return_keeps_both():
    out = io.StringIO()
    stream = LineStreamer(out)
    stream.write("Downloading: ")
    stream.write("\r 50%")
    stream.write("\r100%\n")
    assert out.getvalue() == "Downloading: \n100%\n"


def test_a_fast_bar_in_a_replica_archives_at_most_one_line_per_second(make_notebook, tmp_path):
    """A bar updated every 10 ms for 2.5 s: its log holds about one state per second, each
    after the first marked as a rewrite, and ends with the final state."""
    source = (
        "import sys, time\n"
        "for step in range(250):\n"
        "    sys.stdout.write(f'\\rstep {step + 1}/250')\n"
        "    sys.stdout.flush()\n"
        "    time.sleep(0.01)\n"
        "print()\n"
        "print('after')"
    )
    notebook = make_notebook([source])
    argv = export_notebook(notebook, tmp_path / "run").argv
    log = tmp_path / "replica.log"  # as the engine archives it: the process's raw bytes
    started = time.monotonic()
    with log.open("wb") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=True)
    elapsed = time.monotonic() - started
    lines = log.read_bytes().decode().split("\n")
    bar = [line for line in lines if "step " in line]
    assert 2 <= len(bar) <= elapsed + 1, bar
    assert not bar[0].startswith(PROGRESS_REWRITE)
    assert all(line.startswith(PROGRESS_REWRITE) for line in bar[1:])
    assert bar[-1].endswith("step 250/250")
    assert lines[lines.index(bar[-1]) + 1] == "after"


def test_markers_name_each_code_cell(make_notebook, helpers, tmp_path):
    notebook = make_notebook(["\n\nx = 1  # first", "print(x)"])
    run = helpers.run_batch(export_notebook(notebook, tmp_path / "run").argv)
    assert run.stdout == (f"{MARKER_PREFIX}1/2: x = 1  # first\n{MARKER_PREFIX}2/2: print(x)\n1\n")


# ---- the working folder ---------------------------------------------------------------------


def test_the_working_folder_mirrors_the_notebook_folder_and_lists_new_files(tmp_path):
    project = tmp_path / "project"
    notebooks = project / "notebooks"
    (notebooks / "data").mkdir(parents=True)
    (notebooks / "data" / "x.fits").write_bytes(b"fits")
    (notebooks / "helper.py").write_text("A = 1\n")
    (notebooks / "big.bin").write_bytes(b"0" * (2 << 20))
    (project / "images").mkdir()
    work = tmp_path / "run" / "replicas" / "1"
    folder = prepare(work, notebooks)
    assert (work / "data").is_symlink() and (work / "big.bin").is_symlink()
    assert (work / "helper.py").is_file() and not (work / "helper.py").is_symlink()
    assert (work / ".." / "images").resolve() == (project / "images").resolve()
    assert folder.new_files() == []
    (work / "helper.py").write_text("A = 2\n")  # a rewritten copy counts; the original stays
    (work / "result.txt").write_text("r")
    (work / "plots").mkdir()
    (work / "plots" / "a.png").write_bytes(b"png")
    (work / "status.json").write_text("{}")
    assert folder.new_files() == ["helper.py", "plots/a.png", "result.txt"]
    assert (notebooks / "helper.py").read_text() == "A = 1\n"


def test_the_magic_names_each_replicas_executed_notebook(tmp_path):
    from datetime import datetime, timezone

    from canfar_jlab.magic.views import run_report
    from canfar_jlab.models import Replica, Run, RunSpec

    for index in (1, 2):
        (tmp_path / "replicas" / str(index)).mkdir(parents=True)
        (tmp_path / "replicas" / str(index) / "executed.ipynb").write_text("{}")
    run = Run(
        name="r",
        notebook="/n.ipynb",
        notebook_sha256="0",
        created=datetime.now(timezone.utc),
        folder=str(tmp_path),
        script="n.py",
        service="local-engine",
        spec=RunSpec(image="i", replicas=2),
        replicas=[Replica(index=1, name="r-1"), Replica(index=2, name="r-2")],
    )
    shown = repr(run_report(run, "done"))
    executed = [str(tmp_path / "replicas" / str(i) / "executed.ipynb") for i in (1, 2)]
    assert f"executed notebooks: {executed[0]}, {executed[1]}" in shown


LOSES_REPLIES = """
import inspect
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp


class LosesReplies(IPythonKernel):
    # Runs the cell and says it finished (status idle, every output sent), but its
    # execute_reply goes nowhere: what nbclient was seen to wait for after interact().
    async def execute_request(self, *args):
        send = self.session.send
        if "LOSE THE REPLY" in args[-1]["content"]["code"]:
            def dropping(stream, msg_type, *rest, **options):
                lost = msg_type == "execute_reply"
                return send(None if lost else stream, msg_type, *rest, **options)
            self.session.send = dropping
        try:
            result = super().execute_request(*args)
            if inspect.isawaitable(result):
                await result
        finally:
            self.session.send = send


IPKernelApp.launch_instance(kernel_class=LosesReplies)
"""


def _run_losing_replies(make_notebook, helpers, tmp_path, cells: list[str]):
    script = tmp_path / "loses_replies.py"
    script.write_text(LOSES_REPLIES)
    jupyter = kernelspec(
        tmp_path / "jupyter", "lossy", [sys.executable, str(script), "-f", "{connection_file}"]
    )
    notebook = make_notebook(
        cells, metadata={"kernelspec": {"name": "lossy", "display_name": "l", "language": "python"}}
    )
    exported = export_notebook(notebook, tmp_path / "run")
    started = time.monotonic()
    run = helpers.run_batch(
        exported.argv, env={"JUPYTER_PATH": str(jupyter), "CANFAR_JLAB_REPLY_STALL": "3"}
    )
    return run, time.monotonic() - started


GOING_ON = (
    "canfar-jlab: the kernel finished this cell but its reply did not come within 3 s "
    "(CANFAR_JLAB_REPLY_STALL); going on"
)


def test_a_lost_reply_after_the_cell_went_idle_is_not_waited_for(make_notebook, helpers, tmp_path):
    run, took = _run_losing_replies(
        make_notebook,
        helpers,
        tmp_path,
        ["print('one')", "print('two')  # LOSE THE REPLY", "print('three')"],
    )
    assert run.returncode == 0, run.stderr
    assert GOING_ON in run.stderr and took < 60
    assert [line for line in run.stdout.splitlines() if not line.startswith(MARKER_PREFIX)] == [
        "one",
        "two",
        "three",
    ]
    report = status_of(tmp_path / "run")
    assert (report["state"], report["stall"], report["cell"]["index"]) == ("completed", None, 3)
    executed = json.loads((tmp_path / "run" / "replicas" / "1" / "executed.ipynb").read_text())
    texts = ["".join(out["text"]) for cell in executed["cells"] for out in cell["outputs"]]
    assert texts == ["one\n", "two\n", "three\n"]


def test_a_cell_that_raised_and_lost_its_reply_still_fails(make_notebook, helpers, tmp_path):
    run, _ = _run_losing_replies(
        make_notebook,
        helpers,
        tmp_path,
        ["raise ValueError('bad pixel')  # LOSE THE REPLY", "print('never')"],
    )
    assert run.returncode == 1
    assert GOING_ON in run.stderr
    assert (
        "canfar-jlab: stopped at code cell 1 (ValueError: bad pixel); the cells after it did not "
        "run"
    ) in run.stderr
    assert "never" not in run.stdout
    report = status_of(tmp_path / "run")
    assert (report["error"], report["failed_cell"]["index"]) == ("ValueError: bad pixel", 1)
