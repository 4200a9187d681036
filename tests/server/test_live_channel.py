"""The live websocket: pushed status and log deltas, resumable, and refused to strangers."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys

import pytest
import tornado.httpclient
import tornado.websocket

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.models import SessionSpec
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
