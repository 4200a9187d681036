"""The engine's supervisor (one process for every replica), driven directly through its socket
and line protocol: a session runs at most once, exit statuses are recorded in exit.json, and a
later connection (an engine restarted) learns which sessions it still holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from engine_helpers import TOOL
from fixtures_engine import wait_for

from canfar_jlab.engine.procs import is_alive, start_time
from canfar_jlab.engine.sessionfiles import read_json


class Connection:
    """One engine's connection: send requests, read answers line by line."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.buffer = b""
        self.hello = self.next()["hello"]

    def next(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the supervisor closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def send(self, request: dict) -> None:
        self.sock.sendall(json.dumps(request).encode() + b"\n")

    def answer(self, session_id: str, ended: bool = False) -> dict:
        while True:  # skip what concerns other sessions
            reply = self.next()
            if reply.get("id") == session_id and bool(reply.get("ended")) == ended:
                return reply

    def close(self) -> None:
        self.sock.close()


class Supervisor:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "supervisor.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(4)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "canfar_jlab.engine.supervisor", str(listener.fileno())],
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
        listener.close()

    def connect(self) -> Connection:
        return Connection(self.path)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    running = Supervisor(tmp_path)
    yield running
    running.proc.kill()  # its replicas, if any are left, end with the test's tmp_path
    running.proc.wait(timeout=60)


def _spec(session_dir: Path, *args: str, **extra: object) -> dict:
    return {
        "id": session_dir.name,
        "dir": str(session_dir),
        "argv": [sys.executable, TOOL, *args],
        "env": {**os.environ, "skaha_sessionid": session_dir.name},
        "cwd": str(session_dir.parent),
        "ram_bytes": None,
        "grace": 1,
        "log_cap": 1 << 20,
        **extra,
    }


def _launch(conn: Connection, session_dir: Path, *args: str) -> dict:
    spec = _spec(session_dir, *args)
    conn.send({"op": "launch", "spec": spec})
    return conn.answer(spec["id"])


def test_a_session_launched_twice_runs_once(supervisor, tmp_path: Path) -> None:
    conn = supervisor.connect()
    session = tmp_path / "twice"
    go = tmp_path / "go"
    first = _launch(conn, session, "wait", str(go), "0")
    second = _launch(conn, session, "wait", str(go), "0")
    assert first["replica"] and second["replica"] == first["replica"]  # the one it runs
    owner = wait_for(lambda: read_json(session / "supervisor.json"), 30, "the owner's record")
    assert owner["pid"] == first["pid"] == supervisor.proc.pid
    assert owner["replica_pid"] == first["replica"]
    go.touch()
    conn.answer("twice", ended=True)
    outcome = read_json(session / "exit.json")
    assert outcome["code"] == 0 and outcome["signal"] is None
    assert (session / "output.log").read_text().count("PID ") == 1

    # Launched again after it ended: it does not run a second time.
    third = _launch(conn, session, "exit", "3")
    assert third["replica"] is None
    conn.answer("twice", ended=True)
    assert read_json(session / "exit.json") == outcome
    assert "exiting" not in (session / "output.log").read_text()


def test_exit_status_and_signals_are_recorded(supervisor, tmp_path: Path) -> None:
    conn = supervisor.connect()
    failed = _launch(conn, tmp_path / "three", "exit", "3")
    killed = _launch(conn, tmp_path / "killed", "sleep")
    assert failed["replica"] and killed["replica"]
    os.kill(killed["replica"], 9)
    three = wait_for(lambda: read_json(tmp_path / "three" / "exit.json"), 30, "exit 3")
    nine = wait_for(lambda: read_json(tmp_path / "killed" / "exit.json"), 30, "signal 9")
    assert (three["code"], three["signal"]) == (3, None)
    assert (nine["code"], nine["signal"]) == (None, 9)


def test_a_command_that_does_not_exist(supervisor, tmp_path: Path) -> None:
    conn = supervisor.connect()
    spec = _spec(tmp_path / "nocmd") | {"argv": ["no-such-command-anywhere"]}
    spec["env"] = {"PATH": "/usr/bin:/bin"}
    conn.send({"op": "launch", "spec": spec})
    assert conn.answer("nocmd")["replica"] is None
    conn.answer("nocmd", ended=True)
    outcome = read_json(tmp_path / "nocmd" / "exit.json")
    assert outcome["code"] == 127
    log = (tmp_path / "nocmd" / "output.log").read_text()
    assert "cannot start 'no-such-command-anywhere'" in log


def test_the_answer_comes_once_the_replica_exists(supervisor, tmp_path: Path) -> None:
    conn = supervisor.connect()
    reply = _launch(conn, tmp_path / "answered", "sleep")
    # Answered after starting the replica: Running is then true.
    assert reply["replica"] and is_alive(reply["replica"], start_time(reply["replica"]))
    record = wait_for(lambda: read_json(tmp_path / "answered" / "supervisor.json"), 30, "record")
    assert record["replica_pid"] == reply["replica"]
    os.kill(reply["replica"], 9)
    conn.answer("answered", ended=True)


def test_one_process_supervises_every_replica(supervisor, tmp_path: Path) -> None:
    conn = supervisor.connect()
    go = tmp_path / "go"
    names = [f"r{i}" for i in range(6)]
    replicas = [_launch(conn, tmp_path / name, "wait", str(go), "0")["replica"] for name in names]
    children = {p.pid for p in psutil.Process(supervisor.proc.pid).children()}
    assert set(replicas) <= children  # no process per replica between them and it
    go.touch()
    ended: set[str] = set()
    while ended != set(names):  # in any order
        reply = conn.next()
        if reply.get("ended"):
            ended.add(reply["id"])
    assert all(read_json(tmp_path / name / "exit.json")["code"] == 0 for name in names)


def test_a_new_connection_learns_what_is_held_and_hears_its_end(supervisor, tmp_path) -> None:
    first = supervisor.connect()
    go_a, go_b = tmp_path / "go-a", tmp_path / "go-b"
    _launch(first, tmp_path / "a", "wait", str(go_a), "0", "said-while-no-engine-listened")
    _launch(first, tmp_path / "b", "wait", str(go_b), "4")
    first.close()  # the engine is gone (kill -9): the supervisor carries on
    go_a.touch()
    outcome = wait_for(lambda: read_json(tmp_path / "a" / "exit.json"), 30, "a's exit record")
    assert outcome["code"] == 0
    assert "said-while-no-engine-listened" in (tmp_path / "a" / "output.log").read_text()

    second = supervisor.connect()  # a restarted engine
    assert second.hello["pid"] == supervisor.proc.pid
    assert second.hello["held"] == ["b"]  # a ended and is recorded; b still runs
    go_b.touch()
    second.answer("b", ended=True)
    assert read_json(tmp_path / "b" / "exit.json")["code"] == 4
    second.close()
    supervisor.proc.wait(timeout=30)  # no engine and nothing held: it leaves


def test_a_launch_that_cannot_prepare_its_session_is_answered(supervisor, tmp_path) -> None:
    conn = supervisor.connect()
    spec = _spec(tmp_path / "doomed") | {"dir": "/proc/self/no-such/dir"}
    conn.send({"op": "launch", "spec": spec})
    assert "cannot prepare the session" in conn.answer("doomed")["error"]


def test_a_burst_of_short_replicas_all_end_on_their_own(supervisor, tmp_path: Path) -> None:
    # Replicas that end while others are still being started: the strays of an ended replica
    # are killed, never a replica that a spawner thread has not handed over yet.
    conn = supervisor.connect()
    names = [f"quick{i}" for i in range(100)]
    specs = [_spec(tmp_path / name) | {"argv": ["true"]} for name in names]
    burst = b"".join(json.dumps({"op": "launch", "spec": spec}).encode() + b"\n" for spec in specs)
    conn.sock.sendall(burst)
    ended: set[str] = set()
    while ended != set(names):
        reply = conn.next()
        if reply.get("ended"):
            ended.add(reply["id"])
    codes = [read_json(tmp_path / name / "exit.json")["code"] for name in names]
    assert codes == [0] * len(names)


def test_what_a_replica_leaves_behind_ends_with_it(supervisor, tmp_path: Path) -> None:
    conn = supervisor.connect()
    go = tmp_path / "go"
    other = _launch(conn, tmp_path / "other", "wait", str(go), "0")  # must not be touched
    _launch(conn, tmp_path / "leaver", "orphan")
    conn.answer("leaver", ended=True)
    log = (tmp_path / "leaver" / "output.log").read_text()
    orphan = int(log.split("ORPHAN ")[1].split()[0])
    # Re-parented to the supervisor when its parent ended, told apart by skaha_sessionid.
    wait_for(lambda: not psutil.pid_exists(orphan), 30, "the orphan to be killed and reaped")
    assert read_json(tmp_path / "leaver" / "exit.json")["code"] == 0
    assert is_alive(other["replica"], start_time(other["replica"]))
    go.touch()
    conn.answer("other", ended=True)
