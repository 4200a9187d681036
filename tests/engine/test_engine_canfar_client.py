"""Conformance: the official `canfar` client (1.5.x, test-only, AGPL) drives the engine unchanged,
through its Python API and its CLI, with CANFAR_URL=<engine>/v1 and CANFAR_TOKEN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from engine_helpers import TOOL
from fixtures_engine import RunningEngine, wait_for

CANFAR_CLI = Path(sys.executable).with_name("canfar")


@pytest.fixture
def canfar_env(engine: RunningEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """Environment-only recipe (canfar-client.md §D): nothing written to a real home."""
    env = {
        "HOME": str(tmp_path),
        "CANFAR_URL": f"{engine.url}/v1",
        "CANFAR_TOKEN": engine.token,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_discovery_reads_our_capabilities(engine: RunningEngine, canfar_env) -> None:
    from canfar.utils import vosi

    xml = httpx.get(f"{engine.url}/capabilities", trust_env=False).text
    best = vosi.capabilities(xml)[0]
    assert best["version"] == "v1"
    assert best["baseurl"] == engine.url
    assert "oidc" in best["auth_modes"]  # canfar's name for ivo://ivoa.net/sso#token


def test_python_api_replicas_end_to_end(engine: RunningEngine, canfar_env) -> None:
    from canfar.context import Context
    from canfar.images import Images
    from canfar.overview import Overview
    from canfar.sessions import Session

    session = Session(errors="raise")
    names = ["REPLICA_ID", "REPLICA_COUNT", "GREETING", "skaha_sessionid"]
    ids = session.create(
        name="conformance",
        image="skaha/base:1.0",  # the client prefixes its registry host
        cmd=sys.executable,
        args=" ".join([TOOL, "env", *names]),
        env={"GREETING": "hello"},
        replicas=3,
    )
    assert len(ids) == 3 and len(set(ids)) == 3

    def completed() -> list[dict]:
        done = session.fetch(kind="headless", status="Completed")
        return done if {s["id"] for s in done} >= set(ids) else []

    wait_for(completed, 30, "three completed replicas")
    info = {item["id"]: item for item in session.info(ids)}
    assert {info[i]["name"] for i in ids} == {"conformance-1", "conformance-2", "conformance-3"}
    assert all(info[i]["image"] == "images.canfar.net/skaha/base:1.0" for i in ids)

    logs = session.logs(ids)
    for session_id in ids:
        replica = info[session_id]["name"].rsplit("-", 1)[1]
        out = logs[session_id]
        assert f"REPLICA_ID={replica}\n" in out
        assert "REPLICA_COUNT=3\n" in out and "GREETING=hello\n" in out
        assert f"skaha_sessionid={session_id}\n" in out

    events = session.events(ids)
    assert all("Completed" in next(iter(e.values())) for e in events)
    stats = session.stats()
    assert stats["cores"]["cpuCoresAvailable"] == 8.0 and "ramAvailable" in stats["ram"]
    assert "images.canfar.net/skaha/base:1.0" in Images().fetch()
    assert Context().resources()["cores"]["options"][-1] == 8
    assert Overview().availability() is True

    assert session.destroy(ids) == dict.fromkeys(ids, True)
    assert not {s["id"] for s in session.fetch()} & set(ids)


def test_python_api_renew_and_destroy_a_running_session(engine: RunningEngine, canfar_env) -> None:
    from canfar.sessions import Session

    session = Session(errors="raise")
    [session_id] = session.create(
        name="renewable", image="skaha/base:1.0", cmd=sys.executable, args=f"{TOOL} sleep"
    )
    wait_for(
        lambda: (
            session.fetch(status="Running")
            and session_id in {s["id"] for s in session.fetch(status="Running")}
        ),
        30,
        "the session to run",
    )
    assert session.renew(session_id) == {session_id: True}
    assert session.destroy(session_id) == {session_id: True}
    wait_for(lambda: session_id not in {s["id"] for s in session.fetch()}, 30, "the deletion")


def test_python_api_bad_input_raises_and_creates_nothing(engine: RunningEngine, canfar_env):
    from canfar.exceptions.session import SessionRequestError
    from canfar.sessions import Session

    session = Session(errors="raise")
    before = {s["id"] for s in session.fetch()}
    with pytest.raises(SessionRequestError) as caught:
        session.create(name="too-big", image="skaha/base:1.0", cores=64, cmd="true")
    response = caught.value.errors[1].response
    assert (response.status_code, response.text) == (400, "Invalid value for 'cores': 64\n")
    assert {s["id"] for s in session.fetch()} == before


def _canfar(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CANFAR_CLI), *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not CANFAR_CLI.exists(), reason="the canfar CLI is not installed")
def test_cli_create_ps_logs(engine: RunningEngine, canfar_env: dict) -> None:
    created = _canfar(
        canfar_env,
        "create",
        "--name",
        "cli-run",
        "--env",
        "GREETING=from-cli",
        "headless",
        "skaha/base:1.0",
        "--",
        sys.executable,
        TOOL,
        "env",
        "GREETING",
        "skaha_sessionid",
    )
    assert created.returncode == 0, created.stderr + created.stdout
    with engine.client() as client:
        [found] = [s for s in client.get("/session").json() if s["name"] == "cli-run"]
        session_id = found["id"]
        wait_for(
            lambda: client.get(f"/session/{session_id}").json()["status"] == "Completed",
            30,
            "the CLI-created session to complete",
        )
    listed = _canfar(canfar_env, "ps", "--all", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert session_id in {s["id"] for s in json.loads(listed.stdout)}
    logs = _canfar(canfar_env, "logs", session_id)
    assert logs.returncode == 0, logs.stderr
    assert "GREETING=from-cli" in logs.stdout and f"skaha_sessionid={session_id}" in logs.stdout
    with engine.client() as client:
        client.delete(f"/session/{session_id}")
