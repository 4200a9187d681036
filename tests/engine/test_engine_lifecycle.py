"""Replica lifecycles on real processes: exit codes, signals, deletion of process trees,
queueing against capacity, log caps, memory limits, deadlines, retention, and an engine that is
killed with SIGKILL and started again."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from engine_helpers import (
    create,
    delete,
    gone,
    logs,
    session,
    status_of,
    wait_log,
    wait_status,
)
from fixtures_engine import RunningEngine, start_engine, wait_for

from canfar_jlab.engine.control import engine_status, ensure_engine
from canfar_jlab.engine.logcap import marker
from canfar_jlab.engine.sessionfiles import read_json


@pytest.fixture
def client(engine: RunningEngine):
    with engine.client() as c:
        yield c


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """An engine with one core, a short grace period and a 4 KiB log cap."""
    running = start_engine(
        tmp_path_factory.mktemp("small-engine"), cores=1, grace_period=0.5, log_cap=4096
    )
    yield running
    running.stop()


def _pid(client, session_id: str) -> int:
    return int(re.search(r"PID (\d+)", wait_log(client, session_id, "PID")).group(1))


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _events(client, session_id: str) -> str:
    return client.get(f"/session/{session_id}", params={"view": "events"}).text


# ------------------------------------------------------------------ how replicas end


def test_exit_code_3_is_failed(client) -> None:
    session_id = create(client, "exit-three", "exit", "3")
    assert wait_status(client, session_id, "Completed", "Failed") == "Failed"
    assert "Process exited with code 3" in _events(client, session_id)
    assert "exiting with 3" in logs(client, session_id)
    delete(client, session_id)


def test_exit_code_0_is_completed(client) -> None:
    session_id = create(client, "exit-zero", "exit", "0")
    assert wait_status(client, session_id, "Completed", "Failed") == "Completed"
    delete(client, session_id)


def test_killed_by_a_signal_is_failed(client) -> None:
    session_id = create(client, "signalled", "sleep")
    pid = _pid(client, session_id)
    os.kill(pid, signal.SIGKILL)
    assert wait_status(client, session_id, "Completed", "Failed") == "Failed"
    assert "killed by signal 9 (SIGKILL)" in _events(client, session_id)
    delete(client, session_id)


def test_delete_leaves_no_process_of_the_tree(client) -> None:
    session_id = create(client, "tree", "children")
    line = wait_log(client, session_id, "PIDS")
    pids = [int(p) for p in re.search(r"PIDS ([\d ]+)", line).group(1).split()]
    assert len(pids) == 3  # the replica, a child in its group, a child that left with setsid
    assert session(client, session_id)["status"] == "Running"
    delete(client, session_id)
    wait_status(client, session_id, None)
    wait_for(lambda: all(gone(pid) for pid in pids), 30, "every process of the tree to go")


def test_a_replica_that_ignores_sigterm_is_killed_after_the_grace_period(small) -> None:
    with small.client() as client:
        session_id = create(client, "stubborn", "ignore-term")
        pid = _pid(client, session_id)
        wait_log(client, session_id, "ignoring SIGTERM")
        delete(client, session_id)
        assert status_of(client, session_id) == "Terminating"
        wait_for(lambda: gone(pid), 30, "SIGKILL after the grace period")
        wait_status(client, session_id, None)


def test_no_zombies_are_left_under_the_engine(engine: RunningEngine, client) -> None:
    ids = [create(client, f"reaped-{i}", "exit", "0") for i in range(4)]
    for session_id in ids:
        wait_status(client, session_id, "Completed")

    def no_zombies() -> bool:
        """Under the daemon: its supervisor and the replicas. An exit is
        reaped within moments; a zombie that stays means something is not reaped."""
        for proc in psutil.Process(engine.info.pid).children(recursive=True):
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                continue
        return True

    wait_for(no_zombies, 10, "every ended process under the engine to be reaped")
    delete(client, *ids)


def test_a_ram_request_limits_memory(client) -> None:
    too_much = create(client, "greedy", "allocate", "2048", ram="1")
    fits = create(client, "modest", "allocate", "64", ram="1")
    assert wait_status(client, too_much, "Completed", "Failed") == "Failed"
    assert "OOMKilled" in logs(client, too_much)  # the tree's limit (memlimit.py), named
    assert wait_status(client, fits, "Completed", "Failed") == "Completed"
    delete(client, too_much, fits)


# ------------------------------------------------------------------ capacity and queueing


def test_sessions_beyond_capacity_wait_pending_first_come_first_served(small, tmp_path) -> None:
    with small.client() as client:
        go = [tmp_path / f"go-{i}" for i in range(3)]
        ids = [create(client, f"queued-{i}", "wait", str(go[i])) for i in range(3)]
        wait_status(client, ids[0], "Running")
        assert [status_of(client, i) for i in ids[1:]] == ["Pending", "Pending"]
        assert "FailedScheduling" in _events(client, ids[1])
        assert "startTime" not in session(client, ids[1])
        stats = client.get("/session", params={"view": "stats"}).json()
        assert stats["cores"]["requestedCPUCores"] == 1.0
        go[0].touch()
        wait_status(client, ids[0], "Completed")
        wait_status(client, ids[1], "Running")  # the next in line, not the last
        assert status_of(client, ids[2]) == "Pending"
        delete(client, ids[2])  # a pending session is simply dropped
        assert status_of(client, ids[2]) is None
        go[1].touch()
        wait_status(client, ids[1], "Completed")
        delete(client, *ids[:2])


def test_cores_beyond_the_machine_are_refused(small) -> None:
    with small.client() as client:
        response = client.post(
            "/session", params={"name": "x", "image": "i", "cmd": "true", "cores": "2"}
        )
        assert (response.status_code, response.text) == (400, "Invalid value for 'cores': 2\n")


# ------------------------------------------------------------------ logs


def test_logs_are_capped_with_a_marker(small) -> None:
    with small.client() as client:
        session_id = create(client, "chatty", "spam", "20000")
        wait_status(client, session_id, "Completed")
        out = logs(client, session_id).encode()
        assert out == b"x" * 99 + b"\n" + out[100:4096] + marker(4096)
        assert b"done" not in out
        offset = client.get(f"/session/{session_id}", params={"view": "logs", "offset": "4000"})
        assert offset.content == out[4000:]
        on_disk = small.home / "engine" / "sessions" / session_id / "output.log"
        assert on_disk.stat().st_size == len(out)  # the supervisor cut the file too
        delete(client, session_id)


def test_a_replica_flooding_its_log_never_holds_more_than_the_cap_on_disk(small) -> None:
    """2 GiB printed as fast as Python can (1 MiB blocks): the file never passes cap + 1 MiB,
    the replica neither blocks nor dies at the cap, and its exit code is kept."""
    with small.client() as client:
        session_id = create(client, "flood", "flood", "2048", "7")
        on_disk = small.home / "engine" / "sessions" / session_id / "output.log"
        largest = 0
        deadline = time.monotonic() + 300
        while status_of(client, session_id) in ("Pending", "Running"):
            with contextlib.suppress(FileNotFoundError):
                largest = max(largest, on_disk.stat().st_size)
            assert time.monotonic() < deadline, "the flood did not end"
        largest = max(largest, on_disk.stat().st_size)
        assert status_of(client, session_id) == "Failed"
        assert "Process exited with code 7" in _events(client, session_id)
        assert largest <= 4096 + (1 << 20)
        out = on_disk.read_bytes()
        assert out == b"y" * 4096 + marker(4096)  # written once, in order, never cut
        assert logs(client, session_id).encode() == out
        delete(client, session_id)


# ------------------------------------------------------------------ deadline and retention


def test_a_session_past_its_deadline_fails(engine_factory) -> None:
    running = engine_factory(deadline=1)
    with running.client() as client:
        session_id = create(client, "overdue", "sleep")
        assert wait_status(client, session_id, "Completed", "Failed") == "Failed"
        assert "DeadlineExceeded" in _events(client, session_id)


def test_finished_sessions_are_forgotten_after_the_retention(engine_factory) -> None:
    running = engine_factory(retention=1)
    with running.client() as client:
        session_id = create(client, "short-lived", "exit", "0")
        wait_status(client, session_id, "Completed", None)
        wait_status(client, session_id, None, timeout=30)
        assert not (running.home / "engine" / "sessions" / session_id).exists()


# ------------------------------------------------------------------ restart


def test_engine_killed_and_restarted_keeps_every_session(engine_factory, tmp_path: Path) -> None:
    running = engine_factory(cores=4)
    go_ok, go_fail = tmp_path / "go-ok", tmp_path / "go-fail"
    with running.client() as client:
        ok = create(client, "ends-ok", "wait", str(go_ok), "0", "said-while-the-engine-was-down")
        fails = create(client, "ends-3", "wait", str(go_fail), "3")
        killed = create(client, "killed", "sleep")
        survives = create(client, "survives", "sleep")
        queued = create(client, "queued", "exit", "0")  # capacity 4: waits behind the others
        pids = {sid: _pid(client, sid) for sid in (ok, fails, killed, survives)}
        assert status_of(client, queued) == "Pending"

    os.kill(running.info.pid, signal.SIGKILL)
    wait_for(lambda: engine_status(running.home) is None, 30, "the engine to die")
    # While the engine is down: two replicas end on their own, one is killed by a signal.
    go_ok.touch()
    go_fail.touch()
    os.kill(pids[killed], signal.SIGKILL)
    wait_for(lambda: all(gone(pids[s]) for s in (ok, fails, killed)), 30, "replicas to end")
    assert not gone(pids[survives])

    info = ensure_engine(running.home, timeout=60)
    assert info.pid != running.info.pid
    restarted = RunningEngine(home=running.home, info=info, workdir=running.workdir)
    with restarted.client() as client:
        listed = {s["id"] for s in client.get("/session").json()}
        assert listed == {ok, fails, killed, survives, queued}
        assert wait_status(client, ok, "Completed", "Failed") == "Completed"
        assert "said-while-the-engine-was-down" in logs(client, ok)  # its supervisor copied it
        assert wait_status(client, fails, "Completed", "Failed") == "Failed"
        assert "Process exited with code 3" in _events(client, fails)
        assert wait_status(client, killed, "Completed", "Failed") == "Failed"
        assert "killed by signal 9" in _events(client, killed)
        assert status_of(client, survives) == "Running"
        assert "Adopted" in _events(client, survives)
        assert wait_status(client, queued, "Completed", "Failed") == "Completed"
        delete(client, survives)  # an adopted replica can still be stopped
        wait_for(lambda: gone(pids[survives]), 30, "the adopted replica to stop")
        wait_status(client, survives, None)


def test_a_supervisor_killed_with_sigkill_loses_its_sessions_and_is_replaced(
    engine_factory,
) -> None:
    running = engine_factory()
    with running.client() as client:
        session_id = create(client, "orphaned", "sleep")
        pid = _pid(client, session_id)
        record = running.home / "engine" / "sessions" / session_id / "supervisor.json"
        supervisor = wait_for(lambda: read_json(record), 30, "supervisor.json")["pid"]
        os.kill(supervisor, signal.SIGKILL)
        assert wait_status(client, session_id, "Completed", "Failed") == "Failed"
        assert "Lost" in _events(client, session_id)
        # killed by the engine; reaped by whoever inherits it (a zombie under a sandbox's init)
        wait_for(lambda: gone(pid) or _zombie(pid), 30, "the unsupervised replica to be killed")
        after = create(client, "after", "exit", "0")  # a new supervisor starts
        assert wait_status(client, after, "Completed", "Failed") == "Completed"
        assert read_json(record.parent.parent / after / "supervisor.json")["pid"] != supervisor


LEGACY_SUPERVISOR = """
import json, os, signal, sys, time
from canfar_jlab.engine.procs import start_time
session, go = sys.argv[1], sys.argv[2]
def end(code, sig):
    outcome = {"code": code, "signal": sig, "ended": time.time(), "terminated": sig is not None}
    with open(os.path.join(session, "exit.json"), "w") as out:
        json.dump(outcome, out)
    sys.exit(0)
signal.signal(signal.SIGTERM, lambda *_: end(None, 15))
record = {"pid": os.getpid(), "ctime": start_time(os.getpid()), "started": time.time()}
with open(os.path.join(session, "supervisor.json"), "w") as out:
    json.dump(record, out)
while not os.path.exists(go):
    time.sleep(0.02)
end(0, None)
"""


def test_per_replica_supervisors_of_an_older_engine_are_adopted(engine_factory, tmp_path):
    """An engine from before the one-supervisor model left a supervisor per replica: the new
    engine follows each by pid and start time, records its exit.json, and can stop it."""
    running = engine_factory(cores=4)
    sessions = running.home / "engine" / "sessions"
    with running.client() as client:
        ends, stopped = create(client, "old-ends", "sleep"), create(client, "old-stopped", "sleep")
        pids = [_pid(client, ends), _pid(client, stopped)]
    supervisor = read_json(sessions / ends / "supervisor.json")["pid"]
    os.kill(running.info.pid, signal.SIGKILL)
    wait_for(lambda: engine_status(running.home) is None, 30, "the engine to die")
    os.kill(supervisor, signal.SIGKILL)  # what is left is what an older engine left
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    go = tmp_path / "go"
    fakes = []
    for session_id in (ends, stopped):
        (sessions / session_id / "supervisor.json").unlink()
        fakes.append(
            subprocess.Popen(
                [sys.executable, "-c", LEGACY_SUPERVISOR, str(sessions / session_id), str(go)]
            )
        )
        wait_for(lambda s=session_id: read_json(sessions / s / "supervisor.json"), 30, "record")

    try:
        info = ensure_engine(running.home, timeout=60)
        restarted = RunningEngine(home=running.home, info=info, workdir=running.workdir)
        with restarted.client() as client:
            assert status_of(client, ends) == status_of(client, stopped) == "Running"
            assert "Adopted" in _events(client, ends)
            delete(client, stopped)  # SIGTERM to the old supervisor: it records it and leaves
            fakes[1].wait(timeout=30)
            wait_status(client, stopped, None)
            go.touch()
            assert wait_status(client, ends, "Completed", "Failed") == "Completed"
            fakes[0].wait(timeout=30)
    finally:
        for fake in fakes:  # never left behind, whatever failed
            if fake.poll() is None:
                fake.kill()
                fake.wait()
