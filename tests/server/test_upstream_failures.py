"""A slow, failing or absent session service: the routes answer 502/504 with one line in
bounded time, and the server keeps answering other routes meanwhile.

The service is a misbehaving Skaha look-alike on 127.0.0.1 (tests/fake_skaha.py): the real
CANFAR cannot run here.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest
import tornado.httpclient
from fake_skaha import Delay, Malformed, Status
from server_config import server_config

TIMEOUT = 1.0


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config({"request_timeout": TIMEOUT})


async def _error(jp_fetch, *path) -> tuple[int, str, float]:
    start = time.monotonic()
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("canfar-jlab", *path)
    elapsed = time.monotonic() - start
    body = info.value.response.body.decode()
    assert "Traceback" not in body and os.environ["CANFAR_TOKEN"] not in body
    message = json.loads(body)["message"]
    assert "\n" not in message
    return info.value.code, message, elapsed


async def test_service_answering_500_gives_502(jp_fetch, skaha):
    for _ in range(5):  # more than the retries
        skaha.fail_next("GET session", Status(500, "unexpected exception: boom"))
    code, message, _ = await _error(jp_fetch, "sessions")
    assert code == 502
    assert "500" in message or "boom" in message


async def test_service_unavailable_with_retry_after_gives_502(jp_fetch, skaha):
    for _ in range(5):
        skaha.fail_next("GET context", Status(503, "temporarily unavailable", {"Retry-After": "0"}))
    code, _, _ = await _error(jp_fetch, "context")
    assert code == 502


async def test_malformed_json_gives_502(jp_fetch, skaha):
    skaha.fail_next("GET image", Malformed())
    code, _, _ = await _error(jp_fetch, "images")
    assert code == 502


async def test_slow_service_gives_504_in_bounded_time_while_config_answers(jp_fetch, skaha):
    for _ in range(5):
        skaha.fail_next("GET session", Delay(10 * TIMEOUT))
    slow = asyncio.ensure_future(_error(jp_fetch, "sessions"))
    # While the slow call is stuck upstream, another route answers at once.
    config = json.loads((await jp_fetch("canfar-jlab", "config")).body)
    assert config["backend"]["kind"] == "skaha" and not slow.done()
    assert skaha.token not in json.dumps(config)
    code, message, elapsed = await slow
    assert code == 504 and "did not answer" in message
    assert elapsed < 4 * TIMEOUT


async def test_service_down_gives_502(jp_fetch, monkeypatch, skaha_token):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CANFAR_URL", f"http://127.0.0.1:{port}/skaha/v1")
    monkeypatch.setenv("CANFAR_TOKEN", skaha_token)
    code, message, elapsed = await _error(jp_fetch, "sessions")
    assert code == 502 and elapsed < 4 * TIMEOUT
    assert message


async def test_refused_credential_is_502_with_renew_hint(jp_fetch, skaha):
    skaha.fail_next("GET session", Status(401, "invalid token"))
    code, message, _ = await _error(jp_fetch, "sessions")
    assert code == 502
    assert "CANFAR_TOKEN" in message


async def test_many_tabs_listing_at_once_cost_one_upstream_list(jp_fetch, skaha):
    skaha.add_session("shared-1")
    skaha.fail_next("GET session", Delay(0.3))  # keep the first list in flight a while
    replies = await asyncio.gather(*(jp_fetch("canfar-jlab", "sessions") for _ in range(10)))
    assert all(json.loads(r.body)["sessions"][0]["name"] == "shared-1" for r in replies)
    lists = [r for r in skaha.recorded("GET") if r.path.endswith("/session") and not r.query]
    assert len(lists) == 1
