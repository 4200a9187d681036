"""The session routes over the real local engine: what the sidebar reads and deletes."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import tornado.httpclient

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.models import SessionSpec
from canfar_jlab.skaha import SkahaClient


async def _wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@pytest.fixture(scope="module")
def engine_creds():
    """Credentials for the suite's local engine (started on demand in its temporary home)."""
    return engine_credentials()


async def _launch(client: SkahaClient, name: str, code: str) -> str:
    image = (await client.images())[0].id
    spec = SessionSpec(name=name, image=image, cmd=sys.executable, args=["-c", code])
    return await client.create_session(spec)


async def _get(jp_fetch, *path, **params):
    response = await jp_fetch("canfar-jlab", *path, params=params or None)
    return json.loads(response.body)


async def test_session_list_get_logs_events_and_delete(jp_fetch, engine_creds):
    code = "print('hello-from-replica',flush=True)"
    async with SkahaClient(engine_creds) as client:
        session_id = await _launch(client, "route-test", code)

    listed = await _get(jp_fetch, "sessions")
    assert session_id in [s["id"] for s in listed["sessions"]]

    one = await _get(jp_fetch, "sessions", session_id)
    assert one["id"] == session_id and one["name"] == "route-test"
    assert one["status"] in {"Pending", "Running", "Completed"}

    async def completed():
        return (await _get(jp_fetch, "sessions", session_id))["status"] == "Completed"

    await _wait_for(completed)
    logs = await _get(jp_fetch, "sessions", session_id, "logs")
    assert "hello-from-replica" in logs["text"]
    assert logs["offset"] == 0 and logs["next_offset"] == len(logs["text"].encode())

    # Resuming from next_offset returns nothing new; from the middle, only the rest.
    tail = await _get(jp_fetch, "sessions", session_id, "logs", offset=str(logs["next_offset"]))
    assert tail["text"] == ""
    middle = logs["text"].index("from-replica")
    rest = await _get(jp_fetch, "sessions", session_id, "logs", offset=str(middle))
    assert rest["text"] == logs["text"][middle:]

    events = await _get(jp_fetch, "sessions", session_id, "events")
    assert isinstance(events["text"], str)

    response = await jp_fetch("canfar-jlab", "sessions", session_id, method="DELETE")
    assert json.loads(response.body) == {"deleted": [session_id]}


async def test_unknown_session_is_404_with_one_line(jp_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("canfar-jlab", "sessions", "zzzz9999")
    assert info.value.code == 404
    body = json.loads(info.value.response.body)
    assert "\n" not in body["message"] and "zzzz9999" in body["message"]
    assert "Traceback" not in info.value.response.body.decode()


async def test_bad_log_offset_is_400(jp_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("canfar-jlab", "sessions", "abcd1234", "logs", params={"offset": "-5"})
    assert info.value.code == 400
    assert "offset" in json.loads(info.value.response.body)["message"]


async def test_images_context_stats_and_config(jp_fetch):
    images = await _get(jp_fetch, "images")
    assert images["images"] and "id" in images["images"][0]
    assert "Python environment" in images["note"]

    context = await _get(jp_fetch, "context")
    assert context["cores"]["options"]

    stats = await _get(jp_fetch, "stats")
    assert "cores" in stats and "ram" in stats

    config = await _get(jp_fetch, "config")
    assert config["backend"]["kind"] == "local"
    assert config["backend"]["credential"]["method"] == "token"
