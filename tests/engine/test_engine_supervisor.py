"""The fork server and the per-replica supervisor, driven directly through the fork server's
line protocol: a session runs at most once, and exit statuses are recorded in exit.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import TOOL
from fixtures_engine import wait_for

from canfar_jlab.engine.procs import is_alive, start_time
from canfar_jlab.engine.sessionfiles import read_json


@pytest.fixture
def forkserver() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "canfar_jlab.engine.forkserver"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    yield proc
    proc.stdin.close()
    proc.wait(timeout=60)


def _launch(server: subprocess.Popen[bytes], session_dir: Path, *args: str) -> dict:
    spec = {
        "id": session_dir.name,
        "dir": str(session_dir),
        "argv": [sys.executable, TOOL, *args],
        "env": dict(os.environ),
        "cwd": str(session_dir.parent),
        "ram_bytes": None,
        "grace": 1,
        "log_cap": 1 << 20,
    }
    server.stdin.write(json.dumps(spec).encode() + b"\n")
    server.stdin.flush()
    while True:  # skip the `ended` notes of earlier supervisors
        reply = json.loads(server.stdout.readline())
        if reply.get("id") == spec["id"] and not reply.get("ended"):
            return reply


def test_a_session_launched_twice_runs_once(forkserver, tmp_path: Path) -> None:
    session = tmp_path / "twice"
    go = tmp_path / "go"
    first = _launch(forkserver, session, "wait", str(go), "0")
    second = _launch(forkserver, session, "wait", str(go), "0")
    assert first["pid"] != second["pid"]
    # The duplicate leaves as soon as the owner has recorded itself.
    wait_for(lambda: not is_alive(second["pid"], second["ctime"]), 30, "the duplicate to leave")
    owner = wait_for(lambda: read_json(session / "supervisor.json"), 30, "the owner's record")
    assert owner["pid"] == first["pid"] and owner["ctime"] == first["ctime"]
    go.touch()
    outcome = wait_for(lambda: read_json(session / "exit.json"), 30, "the exit record")
    assert outcome["code"] == 0 and outcome["signal"] is None
    assert (session / "output.log").read_text().count("PID ") == 1

    # Launched again after it ended: it does not run a second time.
    third = _launch(forkserver, session, "exit", "3")
    wait_for(lambda: not is_alive(third["pid"], third["ctime"]), 30, "the late duplicate to leave")
    assert read_json(session / "exit.json") == outcome
    assert "exiting" not in (session / "output.log").read_text()


def test_exit_status_and_signals_are_recorded(forkserver, tmp_path: Path) -> None:
    failed = _launch(forkserver, tmp_path / "three", "exit", "3")
    killed = _launch(forkserver, tmp_path / "killed", "sleep")
    assert failed["pid"] and killed["pid"]
    record = wait_for(lambda: read_json(tmp_path / "killed" / "supervisor.json"), 30, "record")
    os.kill(record["replica_pid"], 9)
    three = wait_for(lambda: read_json(tmp_path / "three" / "exit.json"), 30, "exit 3")
    nine = wait_for(lambda: read_json(tmp_path / "killed" / "exit.json"), 30, "signal 9")
    assert (three["code"], three["signal"]) == (3, None)
    assert (nine["code"], nine["signal"]) == (None, 9)


def test_a_command_that_does_not_exist(forkserver, tmp_path: Path) -> None:
    spec = {
        "id": "nocmd",
        "dir": str(tmp_path / "nocmd"),
        "argv": ["no-such-command-anywhere"],
        "env": {"PATH": "/usr/bin:/bin"},
        "cwd": str(tmp_path),
        "ram_bytes": None,
        "grace": 1,
        "log_cap": 1 << 20,
    }
    forkserver.stdin.write(json.dumps(spec).encode() + b"\n")
    forkserver.stdin.flush()
    assert json.loads(forkserver.stdout.readline())["pid"]
    outcome = wait_for(lambda: read_json(tmp_path / "nocmd" / "exit.json"), 30, "exit record")
    assert outcome["code"] == 127
    log = (tmp_path / "nocmd" / "output.log").read_text()
    assert "cannot start 'no-such-command-anywhere'" in log


def test_the_answer_comes_once_the_replica_exists(forkserver, tmp_path: Path) -> None:
    reply = _launch(forkserver, tmp_path / "answered", "sleep")
    # The supervisor answers itself, after starting the replica: Running is then true.
    assert reply["replica"] and is_alive(reply["replica"], start_time(reply["replica"]))
    record = wait_for(lambda: read_json(tmp_path / "answered" / "supervisor.json"), 30, "record")
    assert record["replica_pid"] == reply["replica"]
    os.kill(reply["replica"], 9)
    wait_for(lambda: read_json(tmp_path / "answered" / "exit.json"), 30, "the exit record")


def test_a_supervisor_that_dies_before_answering_is_reported(forkserver, tmp_path: Path) -> None:
    spec = {"id": "doomed", "dir": "/proc/self/no-such/dir", "argv": ["true"], "env": {}}
    spec |= {"cwd": str(tmp_path), "ram_bytes": None, "grace": 1, "log_cap": 1 << 20}
    forkserver.stdin.write(json.dumps(spec).encode() + b"\n")
    forkserver.stdin.flush()
    assert json.loads(forkserver.stdout.readline()) == {"id": "doomed", "ended": True}
