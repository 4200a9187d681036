"""Every client call against the real local engine over HTTP (tests/fixtures_engine.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from canfar_jlab.credentials import resolve_credentials
from canfar_jlab.models import SessionSpec, SessionStatus
from canfar_jlab.skaha import InvalidRequest, NotFound, SkahaClient

T = TypeVar("T")
SCRIPT = str(Path(__file__).with_name("replica_script.py"))
IMAGE = "images.canfar.net/skaha/base:latest"
REPO = Path(__file__).resolve().parents[2]


def spec(action: str, *args: str, **fields: object) -> SessionSpec:
    name = f"cl-{action}-{secrets.token_hex(3)}"
    return SessionSpec(
        name=name, image=IMAGE, cmd=sys.executable, args=[SCRIPT, action, *args], **fields
    )


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s"
        await asyncio.sleep(0.05)


async def ended(client: SkahaClient, session_id: str) -> SessionStatus:
    async def check() -> SessionStatus | None:
        status = (await client.get_session(session_id)).status
        return status if status.is_terminal else None

    return await eventually(check)


@pytest.fixture
def engine_client(engine, leaks):
    leaks.secrets.add(engine.token)
    creds = resolve_credentials(engine.url, engine.token)
    return SkahaClient(creds)


async def test_platform_calls(engine_client):
    async with engine_client as client:
        images = await client.images()
        assert IMAGE in {image.id for image in images}
        assert all(image.types == ["headless"] for image in images)
        context = await client.context()
        assert context.cores.options and context.max_interactive_sessions is not None
        stats = await client.platform_stats()
        assert stats.cores.cpu_cores_available == 8
        availability = await client.availability()
        assert availability.available and "local engine" in availability.note
        assert await client.repositories()


async def test_replicas_run_with_their_replica_env_and_end(engine_client):
    job = spec("env", "REPLICA_ID", "REPLICA_COUNT", "GREETING", env={"GREETING": "hi"})
    async with engine_client as client:
        outcomes = await client.create_replicas(job, 3)
        assert [(o.index, o.name, o.ok) for o in outcomes] == [
            (i, f"{job.name}-{i}", True) for i in (1, 2, 3)
        ]
        for outcome in outcomes:
            assert await ended(client, outcome.session_id) is SessionStatus.COMPLETED
            log = (await client.logs(outcome.session_id)).text
            assert log.splitlines() == [
                f"REPLICA_ID={outcome.index}",
                "REPLICA_COUNT=3",
                "GREETING=hi",
            ]
        mine = {o.session_id for o in outcomes}
        listed = await client.list_sessions(type="headless", status="Completed")
        assert mine <= {s.id for s in listed}
        named = {s.id: s.name for s in listed if s.id in mine}
        assert sorted(named.values()) == [f"{job.name}-{i}" for i in (1, 2, 3)]
        session = await client.get_session(outcomes[0].session_id)
        assert session.type == "headless" and session.start_time is not None
        assert isinstance(await client.events(outcomes[0].session_id), str)
        for session_id in mine:
            await client.delete(session_id)


async def test_a_failing_replica_is_failed(engine_client):
    async with engine_client as client:
        [outcome] = await client.create_replicas(spec("fail"), 1)
        assert await ended(client, outcome.session_id) is SessionStatus.FAILED
        assert (await client.logs(outcome.session_id)).text == "about to fail\n"
        await client.delete(outcome.session_id)


async def test_tail_uses_the_engines_offsets_and_emits_each_line_once(
    engine_client, tmp_path, caplog
):
    gate = tmp_path / "go"
    async with engine_client as client:
        [outcome] = await client.create_replicas(spec("gated", str(gate)), 1)
        sid = outcome.session_id
        chunks: list[str] = []
        async for text in client.tail(sid, poll_interval=0.05):
            chunks.append(text)
            if "line 2\n" in "".join(chunks):
                gate.touch()  # the replica may finish its partial line now
        expected = "line 1\nline 2\nwaiting done\nline 4 é\n"
        assert "".join(chunks) == expected
        assert all(chunk.endswith("\n") for chunk in chunks)
        assert (await client.get_session(sid)).status is SessionStatus.COMPLETED
        rest = await client.logs(sid, offset=len(b"line 1\nline 2\n"))
        assert rest.honoured and rest.text == "waiting done\nline 4 é\n"
        assert rest.next_offset == len(expected.encode())
        await client.delete(sid)
    asked = [
        int(found)
        for record in caplog.records
        if record.name == "httpx"
        for found in re.findall(rf"{sid}\?view=logs&offset=(\d+)", record.getMessage())
    ]
    assert asked[0] == 0 and max(asked) > 0  # later polls asked only for new bytes


async def test_renew_delete_and_unknown_sessions(engine_client, tmp_path, raises):
    gate = tmp_path / "go"
    async with engine_client as client:
        [outcome] = await client.create_replicas(spec("gated", str(gate)), 1)
        sid = outcome.session_id

        async def running() -> bool:
            return (await client.get_session(sid)).status is SessionStatus.RUNNING

        await eventually(running)
        await client.renew(sid)
        await client.delete(sid)

        async def gone_or_ended() -> bool:
            try:
                return (await client.get_session(sid)).status is not SessionStatus.RUNNING
            except NotFound:
                return True

        await eventually(gone_or_ended)
        await client.delete(sid)  # again: still fine
        await client.delete("zzzzzzzz")
        with raises(NotFound, match="session zzzzzzzz not found"):
            await client.get_session("zzzzzzzz")
        with raises(InvalidRequest, match="No active job"):
            await client.renew("zzzzzzzz")


async def test_the_engines_own_refusals_come_back_per_replica(engine_client):
    too_big = spec("env", cores=64)  # the test engine has 8 cores
    async with engine_client as client:
        outcomes = await client.create_replicas(too_big, 2)
    assert [(o.ok, o.error_status, o.error) for o in outcomes] == [
        (False, 400, "Invalid value for 'cores': 64")
    ] * 2


async def test_nothing_configured_means_the_local_engine(home, engine, monkeypatch, leaks):
    leaks.secrets.add(engine.token)
    monkeypatch.setenv("CANFAR_JLAB_HOME", str(engine.home))
    creds = resolve_credentials()
    assert creds.kind == "local-engine" and creds.is_local_engine
    assert creds.base_url == f"{engine.url}/v1"
    assert "local engine" in creds.source and engine.token not in repr(creds)
    pinned = resolve_credentials(f"{engine.url}/v1")  # its URL alone finds its token too
    assert pinned.kind == "local-engine"
    async with SkahaClient(creds) as client:
        assert isinstance(await client.list_sessions(), list)


def test_cli_against_the_local_engine(home, engine, leaks, tmp_path):
    leaks.secrets.add(engine.token)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
    environ.update(HOME=str(home), CANFAR_JLAB_HOME=str(engine.home))

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "canfar_jlab", *args]
        done = subprocess.run(
            command, capture_output=True, text=True, env=environ, cwd=REPO, timeout=60
        )
        leaks.add("cli stdout", done.stdout)
        leaks.add("cli stderr", done.stderr)
        assert done.returncode == 0, done.stderr
        return done

    async def make() -> str:
        async with SkahaClient(resolve_credentials(engine.url, engine.token)) as client:
            [outcome] = await client.create_replicas(spec("env", "REPLICA_ID"), 1)
            await ended(client, outcome.session_id)
            return outcome.session_id

    sid = asyncio.run(make())
    listed = json.loads(cli("ps", "--all", "--json").stdout)
    assert sid in {s["id"] for s in listed}
    assert cli("logs", sid).stdout == "REPLICA_ID=1\n"
    assert cli("logs", "-f", sid, "--interval", "0.05").stdout == "REPLICA_ID=1\n"
    assert cli("delete", sid).stdout == f"deleted {sid}\n"
