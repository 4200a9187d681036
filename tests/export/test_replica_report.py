"""The replica status report (replicas/<i>/status.json) as the runner writes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from canfar_jlab.export import export_notebook
from canfar_jlab.replica_report import ReplicaReport

CONTRACT_FIELDS = {
    "format",
    "replica",
    "count",
    "session_id",
    "attempt",
    "runner",
    "state",
    "started",
    "heartbeat",
    "ended",
    "exit_code",
    "cell",
    "failed_cell",
    "error",
    "peak_rss_bytes",
    "cpu_seconds",
    "files",
}


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_heartbeat_comes_from_a_thread_while_the_main_thread_is_busy(tmp_path, monkeypatch):
    monkeypatch.setenv("skaha_sessionid", "abc123")
    monkeypatch.setenv("CANFAR_REPLICA_ATTEMPT", "2")
    report = ReplicaReport(tmp_path, replica=3, count=10, runner="nbclient", heartbeat_seconds=0.2)
    report.start()
    first = read(tmp_path / "status.json")
    assert CONTRACT_FIELDS <= set(first)
    assert (first["replica"], first["count"], first["session_id"], first["attempt"]) == (
        3,
        10,
        "abc123",
        2,
    )
    assert first["state"] == "running" and first["ended"] is None
    assert first["started"].endswith("Z") and first["heartbeat"].endswith("Z")
    wait_for(lambda: read(tmp_path / "status.json")["heartbeat"] != first["heartbeat"])
    report.cell(4, 12, "\n\ndf = load('x')  \nmore()")
    assert read(tmp_path / "status.json")["cell"] == {
        "index": 4,
        "total": 12,
        "first_line": "df = load('x')",
    }
    report.finish(1, error="ValueError: bad pixel", failed_cell=(4, "df = load('x')"))
    final = read(tmp_path / "status.json")
    assert final["state"] == "failed" and final["exit_code"] == 1
    assert final["failed_cell"] == {"index": 4, "first_line": "df = load('x')"}
    assert final["error"] == "ValueError: bad pixel"
    assert final["ended"] >= final["started"]
    assert final["peak_rss_bytes"] > 10_000_000 and final["cpu_seconds"] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp files left


@pytest.mark.parametrize("runner", ["nbclient", "script"])
def test_the_runner_reports_cells_failure_and_the_tree_resources(
    make_notebook, helpers, tmp_path, runner
):
    # A child that holds 150 MB and burns CPU: the report counts the whole process tree.
    child = (
        f'!{sys.executable} -c "b = bytearray(150_000_000); '
        'print(sum(i * i for i in range(3_000_000)) > 0)"'
    )
    notebook = make_notebook(["print('one')", child, "raise ValueError('bad pixel')", "print(4)"])
    exported = export_notebook(notebook, tmp_path / "run", runner=runner)
    run = helpers.run_batch(exported.argv, env={"REPLICA_ID": "2", "REPLICA_COUNT": "2"})
    assert run.returncode == 1
    assert "canfar-jlab: stopped at code cell 3 (ValueError: bad pixel)" in run.stderr
    report = read(tmp_path / "run" / "replicas" / "2" / "status.json")
    assert report["runner"] == runner
    assert (report["replica"], report["count"], report["state"]) == (2, 2, "failed")
    assert report["exit_code"] == 1
    assert report["cell"] == {"index": 3, "total": 4, "first_line": "raise ValueError('bad pixel')"}
    assert report["failed_cell"] == {"index": 3, "first_line": "raise ValueError('bad pixel')"}
    assert report["error"] == "ValueError: bad pixel"
    assert report["peak_rss_bytes"] >= 150_000_000
    assert report["cpu_seconds"] >= 0.1


@pytest.mark.parametrize("runner", ["nbclient", "script"])
def test_a_completed_run_reports_exit_zero(make_notebook, helpers, tmp_path, runner):
    notebook = make_notebook(["x = 1", "print(x)"])
    exported = export_notebook(notebook, tmp_path / "run", runner=runner)
    run = helpers.run_batch(exported.argv)
    assert run.returncode == 0, run.stderr
    report = read(tmp_path / "run" / "replicas" / "1" / "status.json")
    assert (report["state"], report["exit_code"], report["error"]) == ("completed", 0, None)
    assert report["cell"]["index"] == 2 and report["ended"] is not None


def test_started_is_when_the_process_began_not_when_python_got_to_it(tmp_path):
    """A runner whose interpreter and imports are slow (a busy node) still reports the start
    of its own process: `started` is the replica's run, not the moment the report was made."""
    program = (
        "import sys, time; time.sleep(1.5); sys.path.insert(0, sys.argv[1]); "
        "from canfar_jlab.replica_report import ReplicaReport; "
        "ReplicaReport(sys.argv[2], replica=1, count=1, runner='script').start()"
    )
    repo = str(Path(__file__).resolve().parents[2])
    before = time.time()
    done = subprocess.run([sys.executable, "-c", program, repo, str(tmp_path)], timeout=60)
    assert done.returncode == 0
    started = datetime.fromisoformat(read(tmp_path / "status.json")["started"]).timestamp()
    assert before - 0.05 <= started <= before + 0.5, started - before
