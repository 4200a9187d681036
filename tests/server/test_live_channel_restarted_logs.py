"""The server's live channel on a Skaha that sends whole logs (no log stream, so its hub
polls): a log that restarts shorter upstream is shown once after one notice, through the
server's own connection (Backend.read_log and the one log follower). Skaha is the
misbehaving fake on 127.0.0.1 (tests/fake_skaha.py): the real CANFAR cannot run here."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from server_config import server_config

from canfar_jlab.logdelta import RESTART_NOTICE


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config({"list_interval": 0.1})


async def test_a_log_that_restarts_upstream_is_shown_once_after_a_notice(skaha, jp_ws_fetch):
    sid = skaha.add_session("restarts")
    old = "".join(f"old {i}\n" for i in range(100))
    skaha.append_log(sid, old)
    ws = await jp_ws_fetch("canfar-jlab", "live")
    ws.write_message(json.dumps({"op": "subscribe", "topic": "logs", "session": sid}))
    text, deltas, end = "", [], None
    changed = False
    deadline = time.monotonic() + 30
    while end is None:
        assert time.monotonic() < deadline, text[-200:]
        message = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if message.get("session") != sid:
            continue
        if message["type"] == "log_end":
            end = message
            continue
        assert message["type"] == "log", message
        deltas.append(message)
        text += message["text"]
        if text == old and not changed:  # seen whole: the container restarts
            skaha.replace_log(sid, "again 1\n")
            changed = True
        elif text.endswith("again 1\n"):
            skaha.append_log(sid, "again 2\n")
            skaha.set_status(sid, "Completed")
    ws.close()
    assert text == old + RESTART_NOTICE.decode() + "again 1\nagain 2\n"
    assert end["status"] == "Completed"
    for before, after in itertools.pairwise(deltas):  # a browser resumes from the last one
        assert after["offset"] == before["next_offset"]
