"""The live websocket: pushed status and log deltas, resumable, and refused to strangers."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

import pytest
import tornado.httpclient
import tornado.websocket

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.live import Snapshot
from canfar_jlab.models import Replica, ReplicaStatus, Run, RunSpec, Session, SessionSpec
from canfar_jlab.server.live import delta_message, sessions_state, snapshot_message
from canfar_jlab.skaha import SkahaClient

LINES = 30
# One line every 20 ms, then exit 0: a replica whose log grows while we watch it.
PRINTER = f"import time\nfor i in range({LINES}):\n print('line',i,flush=True)\n time.sleep(0.02)"


@pytest.fixture(scope="module")
def engine_creds():
    return engine_credentials()


async def _launch_printer(creds, name: str, tmp_path) -> str:
    script = tmp_path / f"{name}.py"
    script.write_text(PRINTER)
    async with SkahaClient(creds) as client:
        image = (await client.images())[0].id
        spec = SessionSpec(name=name, image=image, cmd=sys.executable, args=[str(script)])
        return await client.create_session(spec)


async def _receive(ws, timeout: float = 30.0) -> dict:
    message = await asyncio.wait_for(ws.read_message(), timeout)
    assert message is not None, "the server closed the live channel"
    return json.loads(message)


async def _collect_log(ws, session_id: str) -> tuple[str, list[dict], dict]:
    """Read log messages for `session_id` until its log_end; return text, deltas, end."""
    text, deltas = "", []
    while True:
        message = await _receive(ws)
        if message.get("session") != session_id:
            continue
        if message["type"] == "log_end":
            return text, deltas, message
        assert message["type"] == "log", message
        deltas.append(message)
        text += message["text"]


async def test_sessions_are_pushed_without_asking_again(jp_ws_fetch, engine_creds, tmp_path):
    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    first = await _receive(ws)
    assert first["type"] == "sessions" and isinstance(first["sessions"], list)

    session_id = await _launch_printer(engine_creds, "live-status", tmp_path)
    statuses = set()
    while "Completed" not in statuses:
        message = await _receive(ws)
        assert message["type"] == "sessions"
        statuses |= {s["status"] for s in message["sessions"] if s["id"] == session_id}
    ws.close()


async def test_log_deltas_in_order_then_end_and_resume_without_duplicates(
    jp_ws_fetch, engine_creds, tmp_path
):
    session_id = await _launch_printer(engine_creds, "live-logs", tmp_path)
    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message(json.dumps({"op": "subscribe", "topic": "logs", "session": session_id}))
    text, deltas, end = await _collect_log(ws, session_id)
    ws.close()

    assert [line for line in text.splitlines() if line.startswith("line")] == [
        f"line {i}" for i in range(LINES)
    ]
    assert end["status"] == "Completed"
    # Deltas tile the log: each starts where the previous one ended.
    assert deltas[0]["offset"] == 0
    for before, after in itertools.pairwise(deltas):
        assert after["offset"] == before["next_offset"]

    # A reconnect that resumes from the middle gets exactly the rest, once.
    middle = deltas[len(deltas) // 2]["offset"] if len(deltas) > 1 else 0
    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message(
        json.dumps({"op": "subscribe", "topic": "logs", "session": session_id, "offset": middle})
    )
    rest, _, _ = await _collect_log(ws, session_id)
    ws.close()
    assert text.encode()[middle:].decode() == rest


async def test_bad_requests_get_one_line_errors(jp_ws_fetch):
    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message("not json")
    assert (await _receive(ws))["type"] == "error"
    ws.write_message(json.dumps({"op": "subscribe", "topic": "logs", "session": "../../etc"}))
    error = await _receive(ws)
    assert error["type"] == "error" and "session id" in error["message"]
    ws.close()


async def test_foreign_origin_is_refused(jp_ws_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch("canfar-jlab", "live", headers={"Origin": "https://evil.example"})
    assert info.value.code == 403


async def test_same_origin_is_accepted(jp_ws_fetch, jp_http_port):
    ws = await jp_ws_fetch(
        "canfar-jlab", "live", headers={"Origin": f"http://localhost:{jp_http_port}"}
    )
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    assert (await _receive(ws))["type"] == "sessions"
    ws.close()


async def test_missing_token_is_refused(jp_ws_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch("canfar-jlab", "live", headers={"Authorization": ""})
    assert info.value.code == 403


# ------------------------------------------------------------------ deltas


def _session(sid: str, name: str, status: str, cpu: str | None = None) -> Session:
    data = {
        "id": sid,
        "userid": "tester",
        "runAsUID": "1000",
        "runAsGID": "1000",
        "supplementalGroups": [1000],
        "image": "images.canfar.net/skaha/base:latest",
        "type": "headless",
        "status": status,
        "name": name,
        "startTime": "2026-11-30T12:00:00Z",
        "expiryTime": "2026-12-04T12:00:00Z",
        "connectURL": "not-applicable",
        "requestedRAM": "4G",
        "requestedCPUCores": "1",
        "requestedGPUCores": "0",
        "isFixedResources": True,
    }
    if cpu is not None:
        data.update(cpuCoresInUse=cpu, ramInUse="120M")
    return Session.model_validate(data)


def _big_run(statuses: dict[str, str]) -> Snapshot:
    """1,000 replicas in four runs of 250 (a run's largest size), as the hub would see them."""
    sessions, runs, owners = [], [], {}
    for r in range(4):
        replicas = []
        for i in range(1, 251):
            sid = f"s{r}x{i:04d}"
            status = statuses.get(sid, "Pending")
            cpu = "0.9" if status == "Running" else None
            sessions.append(_session(sid, f"big{r}-{i}", status, cpu))
            owners[sid] = (f"big{r}", i)
            replicas.append(
                Replica(index=i, name=f"big{r}-{i}", session_id=sid, status=ReplicaStatus(status))
            )
        run = Run(
            name=f"big{r}",
            notebook="analysis/reduce.ipynb",
            notebook_sha256="0" * 64,
            created="2026-11-30T12:00:00Z",
            folder=f"/home/user/canfar-runs/big{r}",
            script="reduce.py",
            service="local-engine",
            spec=RunSpec(image="images.canfar.net/skaha/base:latest", replicas=250),
            replicas=replicas,
        )
        runs.append(run.model_dump(mode="json"))
    return Snapshot(time.time(), sessions, {"runs": runs, "owners": owners})


def _apply(message: dict, delta: dict) -> dict:
    """What a tab does with a delta: the reference the frontend follows (src/, issue 13)."""
    sessions = {s["id"]: dict(s) for s in message["sessions"]}
    for change in delta["sessions"]:
        sessions.setdefault(change["id"], {}).update(change)
    for sid in delta["removed"]:
        sessions.pop(sid)
    runs = {r["name"]: json.loads(json.dumps(r)) for r in message["runs"]}
    for change in delta["runs"]:
        run = runs.setdefault(change["name"], {})
        replica_changes = change.pop("replica_changes", [])
        run.update(change)
        by_index = {replica["index"]: replica for replica in run["replicas"]}
        for replica in replica_changes:
            if replica["index"] in by_index:
                by_index[replica["index"]].update(replica)
            else:
                run["replicas"].append(replica)
    for name in delta["runs_removed"]:
        runs.pop(name)
    return {"sessions": list(sessions.values()), "runs": list(runs.values())}


def _strip_nulls(value):
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def test_ten_changes_in_a_1000_replica_run_send_under_5_kb():
    before = _big_run({"s0x0001": "Running", "s0x0002": "Running"})
    changed = {f"s0x{i:04d}": "Running" for i in range(3, 11)}  # 8 start
    changed.update({"s0x0001": "Completed", "s0x0002": "Completed"})  # 2 end
    after = _big_run(changed)
    first = json.loads(json.dumps(snapshot_message(before), default=str))
    delta = json.loads(
        json.dumps(delta_message(sessions_state(before), sessions_state(after), after), default=str)
    )
    full = json.dumps(snapshot_message(after), default=str)
    size = len(json.dumps(delta))
    assert size <= 5000, size
    assert len(full) > 40 * size  # what a whole snapshot would have cost
    assert len(delta["sessions"]) == 10 and delta["removed"] == []
    # Applying the delta to what the tab had gives exactly the new snapshot.
    expected = json.loads(full)
    rebuilt = _apply(first, delta)
    assert _strip_nulls(rebuilt["sessions"]) == _strip_nulls(expected["sessions"])
    assert _strip_nulls(rebuilt["runs"]) == _strip_nulls(expected["runs"])


def test_sessions_that_come_and_go_are_in_the_delta():
    before = _big_run({})
    after = Snapshot(
        before.t + 2,
        [*before.sessions[1:], _session("newcomer", "solo", "Pending")],
        {"runs": before.extra["runs"][1:], "owners": before.extra["owners"]},
        error="the service is slow",
    )
    delta = delta_message(sessions_state(before), sessions_state(after), after)
    assert delta["removed"] == [before.sessions[0].id]
    assert [s["id"] for s in delta["sessions"]] == ["newcomer"]
    assert delta["sessions"][0]["status"] == "Pending"  # a newcomer comes whole
    assert delta["runs"] == [] and delta["runs_removed"] == ["big0"]
    assert delta["error"] == "the service is slow"


async def test_a_tab_that_asks_for_deltas_gets_one_snapshot_then_deltas(
    jp_ws_fetch, engine_creds, tmp_path
):
    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions", "deltas": True}))
    first = await _receive(ws)
    assert first["type"] == "sessions"
    known = {s["id"]: s for s in first["sessions"]}

    session_id = await _launch_printer(engine_creds, "live-delta", tmp_path)
    while known.get(session_id, {}).get("status") != "Completed":
        message = await _receive(ws)
        assert message["type"] == "sessions_delta", message["type"]
        for change in message["sessions"]:
            # Sessions that did not change are not sent again; changed ones only in part.
            previous = known.get(change["id"])
            assert previous is None or any(previous.get(k) != v for k, v in change.items())
            known.setdefault(change["id"], {}).update(change)
    ws.close()


async def test_a_tab_says_which_logs_it_shows(jp_ws_fetch, jp_serverapp, engine_creds, tmp_path):
    script = tmp_path / "quiet.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    async with SkahaClient(engine_creds) as client:
        image = (await client.images())[0].id
        spec = SessionSpec(name="shown", image=image, cmd=sys.executable, args=[str(script)])
        session_id = await client.create_session(spec)
        ws = await jp_ws_fetch("canfar-jlab", "live")
        subscribe = {"op": "subscribe", "topic": "logs", "session": session_id, "visible": False}
        ws.write_message(json.dumps(subscribe))
        assert (await _receive(ws))["text"].startswith("up")
        hub = jp_serverapp.web_app.settings["canfar_jlab_backend"].hub
        feed = hub.log_feeds[session_id]
        assert not feed.visible
        ws.write_message(
            json.dumps({"op": "visible", "topic": "logs", "session": session_id, "visible": True})
        )
        deadline = time.monotonic() + 10
        while not feed.visible:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        ws.close()
        await client.delete(session_id)
