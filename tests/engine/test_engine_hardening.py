"""The engine's defences, one test per defect found by the attack on it (issue 15): admission
checks before anything is created, the RAM limit over the whole process tree, a clean replica
environment, no token in its log, and settings kept across a crash."""

from __future__ import annotations

import os
import signal
import socket
import sys
from urllib.parse import urlsplit

import pytest
from engine_helpers import IMAGE, create, delete, gone, logs, wait_log, wait_status
from fixtures_engine import RunningEngine, wait_for

from canfar_jlab.engine.control import EngineError, engine_status, ensure_engine, stop_engine


@pytest.fixture
def client(engine):
    with engine.client() as c:
        yield c


def _ids(client) -> set[str]:
    return {s["id"] for s in client.get("/session").json()}


def _refused(client, **params) -> str:
    """POST a create that must be refused: 400, one line, nothing created."""
    query = {"name": "bad", "image": IMAGE, "cmd": sys.executable, **params}
    before = _ids(client)
    response = client.post("/session", data=query)
    assert response.status_code == 400, response.text
    assert response.text.count("\n") == 1 and len(response.text) < 400
    assert _ids(client) == before
    return response.text.strip()


# ------------------------------------------------------------------ admission


@pytest.mark.parametrize("name", ["-abc", "abc-", "x" * 64, "---", "-"])
def test_names_that_are_not_dns_labels_are_refused(client, name) -> None:
    assert "must be a DNS label" in _refused(client, name=name)


def test_a_nul_byte_in_env_or_args_is_refused(client) -> None:
    assert "NUL" in _refused(client, env="A=x\x00y")
    assert "NUL" in _refused(client, args="a\x00b")


def test_too_many_or_too_large_env_entries_are_refused(client) -> None:
    assert "at most 256" in _refused(client, env=[f"V{i}=x" for i in range(300)])
    assert "Max number of fields" in _refused(client, env=[f"V{i}=x" for i in range(1000)])
    large = [f"V{i}={'x' * 30000}" for i in range(3)]
    assert "bytes in all" in _refused(client, env=large)


def test_args_beyond_what_a_process_can_start_with_are_refused(client) -> None:
    assert "exceed" in _refused(client, args=" ".join(["y" * 1000] * 200))


def test_an_image_name_of_300000_characters_is_refused_and_not_echoed(client) -> None:
    message = _refused(client, image="images.canfar.net/" + "a" * 300_000)
    assert "at most 512" in message and len(message) < 300


# ------------------------------------------------------------------ RAM over the whole tree


def test_a_replica_whose_children_pass_its_ram_together_is_oomkilled(client) -> None:
    session_id = create(client, "tree", "hold-children", "3", "700", ram="1")
    out = wait_log(client, session_id, "PIDS", timeout=60)
    pids = [int(p) for p in out.split("PIDS", 1)[1].split()]
    assert wait_status(client, session_id, "Completed", "Failed", timeout=120) == "Failed"
    log = logs(client, session_id)
    assert "OOMKilled" in log and "RAM limit of 1 GiB (ram=1)" in log
    events = client.get(f"/session/{session_id}", params={"view": "events"}).text
    assert "OOMKilled" in events and "RAM limit of 1 GiB" in events
    assert "children ended" not in log  # killed as a whole, not child by child
    wait_for(lambda: all(gone(pid) for pid in pids), 10, "every child to be gone")
    delete(client, session_id)


# ------------------------------------------------------------------ clean environment


def test_replicas_start_with_a_clean_environment(engine_factory, monkeypatch) -> None:
    monkeypatch.setenv("CANARY_SECRET", "canary-4f1d")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-9b2e")
    monkeypatch.setenv("CANARY_PASSED", "passed-7c3a")
    monkeypatch.setenv("LANG", "C.UTF-8")
    running = engine_factory(pass_env="CANARY_PASSED")
    names = ["CANARY_SECRET", "AWS_SECRET_ACCESS_KEY", "CANARY_PASSED", "LANG", "HOME"]
    with running.client() as client:
        session_id = create(
            client, "env", "env", *names, "REPLICA_ID", "skaha_sessionid", env="REPLICA_ID=3"
        )
        assert wait_status(client, session_id, "Completed", "Failed") == "Completed"
        out = logs(client, session_id)
    assert "CANARY_SECRET=<unset>" in out and "canary-4f1d" not in out
    assert "AWS_SECRET_ACCESS_KEY=<unset>" in out
    assert "CANARY_PASSED=passed-7c3a" in out  # listed in pass_env
    assert "LANG=C.UTF-8" in out and f"HOME={running.workdir}" in out
    assert "REPLICA_ID=3" in out and f"skaha_sessionid={session_id}" in out


# ------------------------------------------------------------------ the engine's own log


def test_a_malformed_authorization_header_never_puts_the_token_in_the_log(engine) -> None:
    host, port = urlsplit(engine.url).hostname, urlsplit(engine.url).port
    raw = (
        f"GET /skaha/v1/session?token={engine.token} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {engine.token}\x01\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(raw)
        assert conn.recv(4096).startswith(b"HTTP/1.1 400")
    with engine.client() as client:  # a normal request after it, so the log is written
        assert client.get("/session").status_code == 200
    log_file = engine.home / "engine" / "engine.log"
    text = log_file.read_text(errors="replace")
    assert "Malformed HTTP" in text  # tornado did log the bad request...
    assert engine.token not in text  # ...without the token


# ------------------------------------------------------------------ settings across a crash


def test_an_engine_restarted_after_a_crash_keeps_its_settings(engine_factory, monkeypatch) -> None:
    monkeypatch.setenv("CANFAR_JLAB_ENGINE_MEMORY_GB", "5")
    running = engine_factory(cores=7, log_cap="8k")
    os.kill(running.info.pid, signal.SIGKILL)
    wait_for(lambda: engine_status(running.home) is None, 20, "the engine to be gone")
    # Restarted on demand, as the Jupyter server's reconnect does: no settings passed, from a
    # process whose environment lacks the engine's variables.
    monkeypatch.delenv("CANFAR_JLAB_ENGINE_MEMORY_GB")
    info = ensure_engine(running.home, timeout=60)
    assert info.pid != running.info.pid
    with RunningEngine(running.home, info, running.workdir).client() as client:
        context = client.get("/context").json()
    assert context["cores"]["options"] == list(range(1, 8))
    assert context["memoryGB"]["options"] == list(range(1, 6))


def test_settings_that_do_not_start_an_engine_are_not_kept(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(EngineError):
            ensure_engine(tmp_path, timeout=60, config={"port": busy.getsockname()[1]})
    info = ensure_engine(tmp_path, timeout=60)  # on demand, later: the defaults again
    try:
        assert info.url.startswith("http://127.0.0.1:")
    finally:
        stop_engine(tmp_path, timeout=60)


def test_an_engine_stopped_cleanly_starts_fresh(engine_factory) -> None:
    running = engine_factory(cores=7)
    running.stop()
    info = ensure_engine(running.home, timeout=60)
    with RunningEngine(running.home, info, running.workdir).client() as client:
        context = client.get("/context").json()
    assert context["cores"]["options"] != list(range(1, 8))  # the defaults again


def test_a_log_stream_request_nested_past_the_stack_is_a_400(client) -> None:
    response = client.post(
        "/logstream", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "must be JSON" in response.text
    response = client.post("/logstream", json={"sessions": {"abc\n": 0}})
    assert response.status_code == 400 and "invalid session id" in response.text
