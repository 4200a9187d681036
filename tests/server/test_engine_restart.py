"""The local engine restarts (new port, new token) while JupyterLab is open: the routes and
the open live channel carry on without a server restart or a page reload."""

from __future__ import annotations

import asyncio
import json

import pytest

from canfar_jlab.engine.control import engine_status, ensure_engine, stop_engine


@pytest.fixture
def own_engine_home(tmp_path, monkeypatch):
    # An engine of this test's own: the suite's shared engine must not be restarted.
    home = tmp_path / "engine-home"
    monkeypatch.setenv("CANFAR_JLAB_HOME", str(home))
    yield home
    stop_engine(home, terminate_replicas=True)


async def test_routes_and_live_channel_survive_an_engine_restart(
    own_engine_home, jp_fetch, jp_ws_fetch
):
    first = json.loads((await jp_fetch("canfar-jlab", "config")).body)
    assert first["backend"]["kind"] == "local"
    before = engine_status(own_engine_home)
    assert before is not None

    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    assert json.loads(await asyncio.wait_for(ws.read_message(), 30))["type"] == "sessions"

    await asyncio.to_thread(stop_engine, own_engine_home)
    after = await asyncio.to_thread(ensure_engine, own_engine_home)
    assert (after.url, after.token()) != (before.url, before.token_file.read_text())

    images = json.loads((await jp_fetch("canfar-jlab", "images")).body)
    assert images["images"]
    config = json.loads((await jp_fetch("canfar-jlab", "config")).body)
    assert config["backend"]["url"] == after.url + "/v1"

    # The live channel gets a clean list from the new engine, without reconnecting.
    while True:
        message = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if message["type"] == "sessions" and "error" not in message:
            break
    ws.close()
