"""Every `%canfar` verb and `%%canfar` in an IPython shell against the real local engine
(found by the usual credential discovery), with runs in the same store the server reads."""

from __future__ import annotations

import os
import re
import signal
import threading
from datetime import datetime, timezone

import nbformat
import pytest
from export.conftest import without_markers
from fixtures_engine import RunningEngine, wait_for
from magic_support import cell, line, replica_lines
from nbformat.v4 import new_code_cell, new_notebook

from canfar_jlab.paths import data_home
from canfar_jlab.runs import Replica, Run, RunSpec, RunStore


def session_ids(engine: RunningEngine, name_prefix: str) -> dict[str, str]:
    """{session name: id} of the engine's sessions whose name starts with `name_prefix`."""
    with engine.client() as http:
        listed = http.get("/session").json()
    return {s["name"]: s["id"] for s in listed if s["name"].startswith(name_prefix)}


def test_service_tables_show_as_html_and_text(shell):
    for verb, heading in (("images", "IMAGE"), ("context", "CHOICES"), ("stats", "ALLOCATED")):
        shown = line(shell, verb)
        assert shown.stderr == ""
        assert len(shown.html) == 1 and "<table" in shown.html[0], verb
        assert heading in shown.plain[0] and "<" not in shown.plain[0]
    images = line(shell, "images --type headless").plain[0]
    assert "headless" in images


def test_a_canfar_cell_runs_as_three_replicas_with_their_replica_id(shell, runs_root):
    # --setup brings the import and the function from earlier cells, not the computation.
    assert cell(
        shell, "import os\ndef label():\n    return 'replica ' + os.environ['REPLICA_ID']"
    ).success
    assert cell(shell, "expensive = sum(range(10))\nSEP = ' of '").success
    shown = cell(
        shell,
        "%%canfar -r 3 --setup --name three\n"
        "print(label() + SEP + os.environ['REPLICA_COUNT'])\n"
        "print('expensive' in dir())",
    )
    assert shown.success and shown.stderr == ""
    assert "launched run three: 3 of 3 replica(s) created on the local engine" in shown.text
    assert "follow with: %canfar logs three -f" in shown.text
    assert any("three-3" in html and "<table" in html for html in shown.html)

    followed = line(shell, "logs three -f")
    assert followed.stderr == ""
    lines = replica_lines(followed.stdout)
    assert lines == {i: [f"replica {i} of 3", "False"] for i in (1, 2, 3)}
    assert "Run three: completed (3 Completed)" in followed.text

    # The same logs later, from the run folder, one header per replica; and one replica.
    again = line(shell, "logs three")
    assert "==> replica 2 (three-2, Completed) <==\nreplica 2 of 3\nFalse\n" in without_markers(
        again.stdout
    )
    assert without_markers(line(shell, "logs three -i 3").stdout) == "replica 3 of 3\nFalse\n"
    assert without_markers(line(shell, "logs three-1").stdout) == "replica 1 of 3\nFalse\n"

    run = RunStore(runs_root).get("three")  # the store every front door reads
    assert run.state == "completed" and [r.index for r in run.replicas] == [1, 2, 3]
    listed = line(shell, "ps --all")
    assert re.search(r"^three\s+completed\s+3 Completed", listed.text, re.M)
    assert line(shell, "ps").text.count("three") == 0  # ended runs only with --all
    assert "three-2" in line(shell, "ps three").text


def test_batch_promotes_the_kernels_notebook(shell, tmp_path):
    notebook = tmp_path / "reduce.ipynb"
    parameters = new_code_cell("GREETING = 'hello'")
    parameters.metadata["tags"] = ["parameters"]
    body = new_code_cell("import os\nprint(GREETING, os.environ['REPLICA_ID'])")
    nbformat.write(new_notebook(cells=[parameters, body]), str(notebook))
    shell.user_ns["__session__"] = str(notebook)  # what ipykernel sets for a notebook's kernel
    try:
        shown = line(shell, "batch -r 2 -p GREETING=bonjour -e MODE=test -f")
    finally:
        del shell.user_ns["__session__"]
    assert shown.stderr == ""
    assert "launched run reduce: 2 of 2 replica(s)" in shown.text
    assert replica_lines(shown.stdout) == {1: ["bonjour 1"], 2: ["bonjour 2"]}
    assert "Run reduce: completed (2 Completed)" in shown.text

    refused = tmp_path / "asks.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("name = input('name? ')")]), str(refused))
    error = line(shell, f"batch {refused}").error_line()
    assert "cannot run asks.ipynb as batch: code cell 1, line 1" in error
    assert "input()" in error


def test_a_cell_that_needs_a_person_is_refused_in_its_own_terms(shell, runs_root):
    cells = data_home() / "magic-cells"
    before = set(os.listdir(runs_root)), set(os.listdir(cells)) if cells.exists() else set()
    shown = cell(shell, "%%canfar -r 2\nx = 1\nname = input('name? ')")
    assert "cannot run this cell as batch: this cell, line 2:" in shown.error_line()
    after = set(os.listdir(runs_root)), set(os.listdir(cells)) if cells.exists() else set()
    assert after == before  # nothing was created, and the cell's notebook is not kept


def test_every_problem_is_listed_one_line_each_and_a_warning_does_not_refuse(
    shell, runs_root, tmp_path
):
    people = tmp_path / "people.ipynb"
    cells = [
        "x = input()",
        "import getpass\npassword = getpass.getpass()",
        "import tkinter",
        "from ipywidgets import interact\ninteract(lambda n: n, n=2)",
    ]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(people))
    before = set(os.listdir(runs_root))
    shown = line(shell, f"batch {people} -r 2")
    listed = shown.stderr.splitlines()
    assert listed[0] == "canfar: cannot run people.ipynb as batch (4 problems):"
    assert [text.split(":")[0] for text in listed[1:]] == [
        "  code cell 1, line 1",
        "  code cell 2, line 2",
        "  code cell 3, line 1",
        "  code cell 4, line 2",
    ]
    assert "input()" in listed[1] and "getpass()" in listed[2] and "tkinter" in listed[3]
    assert "warning: ipywidgets interact()" in listed[4]
    assert "Traceback" not in shown.stdout + shown.stderr

    asks = cell(shell, "%%canfar -r 2\nx = input()\nimport tkinter")
    assert asks.stderr.splitlines() == [
        "canfar: cannot run this cell as batch (2 problems):",
        "  this cell, line 1: input() waits for someone to type, and a batch replica has no "
        "keyboard",
        "  this cell, line 2: tkinter opens desktop windows, and a batch replica has no display",
    ]
    assert set(os.listdir(runs_root)) == before  # nothing was created

    # interact() alone is a warning: shown with the launch, which goes ahead
    widgets = tmp_path / "widgets.ipynb"
    flagged = "from ipywidgets import interact\nif False:\n    interact(lambda n: n, n=2)"
    nbformat.write(new_notebook(cells=[new_code_cell(flagged)]), str(widgets))
    launched = line(shell, f"batch {widgets} --name widgets -f")
    assert launched.stderr == ""
    assert "code cell 1, line 3: warning: ipywidgets interact() runs once" in launched.text
    assert "Run widgets: completed" in launched.text


def test_run_any_command_as_replicas(shell, local_engine):
    shown = line(shell, "run -r 2 --name env-job --cores 1 -- printenv REPLICA_ID OMP_NUM_THREADS")
    assert shown.stderr == ""
    assert "2 of 2 session(s) named env-job created on the local engine" in shown.text
    ids = session_ids(local_engine, "env-job-")
    assert set(ids) == {"env-job-1", "env-job-2"}
    # -f on a session: its log until it has ended (here it already may have).
    assert line(shell, f"logs {ids['env-job-2']} -f").stdout == "2\n1\n"
    assert line(shell, f"logs {ids['env-job-1']}").stdout == "1\n1\n"
    events = line(shell, f"events {ids['env-job-1']}")
    assert events.stderr == "" and events.stdout.strip()
    listed = line(shell, "ps --all").text
    assert "env-job-1" in listed and "env-job-2" in listed
    deleted = line(shell, f"delete {ids['env-job-1']} {ids['env-job-2']}")
    assert f"deleted session {ids['env-job-1']}" in deleted.text
    assert session_ids(local_engine, "env-job-") == {}


def test_rerun_runs_only_the_failed_replica_again(shell):
    source = (
        "%%canfar -r 2 --name flaky -f\n"
        "import os, pathlib\n"
        "marker = pathlib.Path(os.environ['CANFAR_RUN_OUTPUTS']) / 'tried'\n"
        "if os.environ['REPLICA_ID'] == '2' and not marker.exists():\n"
        "    marker.touch()\n"
        "    raise RuntimeError('replica 2 fails the first time')\n"
        "print('finished', os.environ['REPLICA_ID'])"
    )
    first = cell(shell, source)
    assert first.success and first.stderr == ""
    assert "Run flaky: failed (1 Completed, 1 Failed)" in first.text
    assert "RuntimeError: replica 2 fails the first time" in first.stdout

    assert "add --failed" in line(shell, "rerun flaky").error_line()
    again = line(shell, "rerun flaky --failed -f")
    assert again.stderr == ""
    assert "run flaky: replica(s) 2 relaunched on the local engine" in again.text
    assert "finished 2" in again.stdout and "finished 1" not in again.stdout
    assert "Run flaky: completed (2 Completed)" in again.text
    assert "has no Failed or NotCreated replica" in line(shell, "rerun flaky --failed").error_line()
    refused = line(shell, "rerun flaky --more-memory").error_line()  # issue 17
    assert "run flaky has no replica that ran out of memory" in refused


def test_logs_follow_stops_cleanly_when_the_cell_is_interrupted(shell):
    # Jupyter's "interrupt kernel" sends SIGINT to the kernel process, and Python raises
    # KeyboardInterrupt in the main thread, where the magic is waiting for log lines. This test
    # runs the magic in the main thread and sends SIGINT the same way once the first line of
    # the replica's log has been shown.
    launched = cell(
        shell,
        "%%canfar --name follow-me\nimport time\nprint('started', flush=True)\ntime.sleep(600)",
    )
    assert launched.success and launched.stderr == "", launched.stderr
    seen_first_line = threading.Event()

    def interrupt_once_started(captured) -> None:
        try:
            wait_for(lambda: "started" in captured.stdout, timeout=60, what="the first line")
            seen_first_line.set()
        finally:  # never leave the main thread waiting for a replica that sleeps 600 s
            os.kill(os.getpid(), signal.SIGINT)

    from IPython.utils.capture import capture_output

    try:
        with capture_output() as captured:
            helper = threading.Thread(target=interrupt_once_started, args=(captured,))
            helper.start()
            shell.run_line_magic("canfar", "logs follow-me -f")
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped the magic")
    helper.join()
    assert seen_first_line.is_set()
    assert captured.stderr == ""
    assert without_markers(captured.stdout) == (
        "started\ninterrupted: stopped following run follow-me; it keeps running\n"
    )

    # The replica is still running; delete stops it, and the run records why.
    assert "Running" in line(shell, "ps follow-me").text
    deleted = line(shell, "delete follow-me")
    assert "deleted run follow-me: 1 session(s); its folder stays" in deleted.text
    after = line(shell, "ps follow-me").text
    assert "Failed" in after and "deleted by the user before it ended" in after


@pytest.mark.parametrize("verb", ["logs", "logs -f", "events", "delete", "ps", "rerun --failed"])
@pytest.mark.parametrize("target", ["no-such-run", "NOT/an id!"])
def test_a_bad_id_gets_a_one_line_answer(shell, verb, target):
    command, _, flags = verb.partition(" ")
    shown = line(shell, f"{command} '{target}' {flags}")
    error = shown.error_line()
    assert "no run named" in error
    assert shown.stdout == ""


async def test_a_run_from_the_magic_is_listed_by_the_server(shell, jp_fetch):
    # The magic is called synchronously inside a running event loop, as in a kernel.
    shown = cell(shell, "%%canfar --name seen-by-server\nprint('hi')")
    assert shown.success and shown.stderr == ""
    response = await jp_fetch("canfar-jlab", "runs")
    import json

    names = [run["name"] for run in json.loads(response.body)["runs"]]
    assert "seen-by-server" in names
    assert "hi" in line(shell, "logs seen-by-server -f").stdout


def test_a_run_on_another_service_is_named_not_followed(shell, runs_root):
    # A run launched against CANFAR, seen from a kernel whose credentials find the local engine.
    store = RunStore(runs_root)
    store.claim("on-canfar")
    store.write(
        Run(
            name="on-canfar",
            notebook="/arc/home/me/nb.ipynb",
            notebook_sha256="0" * 64,
            created=datetime.now(timezone.utc),
            folder=str(runs_root / "on-canfar"),
            script="nb.py",
            service="https://ws-uv.canfar.net/skaha/v1",
            spec=RunSpec(image="images.canfar.net/skaha/astroml:latest", replicas=1),
            replicas=[Replica(index=1, name="on-canfar", session_id="abc123")],
        )
    )
    for verb in (
        "logs on-canfar -f",
        "events on-canfar",
        "delete on-canfar",
        "rerun on-canfar --failed",
    ):
        error = line(shell, verb).error_line()
        assert "run on-canfar lives on https://ws-uv.canfar.net/skaha/v1" in error, verb
    assert "1 run(s) on other session services are not shown" in line(shell, "ps --all").text
