"""The live hub's polling path (Skaha, engines without the log stream) follows a log that
shrinks or rotates upstream with the one log follower (`logdelta.LogCursor`): every line
shown once, none lost, a restart said once. Against the misbehaving Skaha fake, which sends
whole logs over real HTTP."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import asynccontextmanager

from fake_skaha import FakeSkaha

from canfar_jlab.credentials import Credentials, Secret, normalise_base_url
from canfar_jlab.live import LiveHub, LogDelta, LogEnd
from canfar_jlab.logdelta import RESTART_NOTICE
from canfar_jlab.skaha import SkahaClient

TOKEN = "tok-" + secrets.token_hex(12)
NOTICE = RESTART_NOTICE.decode()


class Viewer:
    """One viewer of a log through the hub: the text it was shown, and the end."""

    def __init__(self, hub: LiveHub, session_id: str, offset: int = 0) -> None:
        self.text, self.end = "", None
        self.offsets: list[tuple[int, int]] = []
        self.task = asyncio.ensure_future(self._read(hub, session_id, offset))

    async def _read(self, hub: LiveHub, session_id: str, offset: int) -> None:
        async for item in hub.logs(session_id, offset):
            if isinstance(item, LogDelta):
                self.text += item.text
                self.offsets.append((item.offset, item.next_offset))
            elif isinstance(item, LogEnd):
                self.end = item


async def _until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


OLD = "".join(f"old {i}\n" for i in range(300))


@asynccontextmanager
async def _watched_log(**hub_options):
    """The fake with one session whose log is OLD, a hub over a client on it, and a viewer
    that has been shown OLD: (fake, session id, hub, viewer)."""
    with FakeSkaha(TOKEN) as fake:
        sid = fake.add_session("restarts")
        fake.append_log(sid, OLD)
        url = normalise_base_url(fake.url)
        credentials = Credentials(base_url=url, source="test", kind="explicit", token=Secret(TOKEN))
        async with SkahaClient(credentials) as client:
            hub = LiveHub(client, list_interval=0.1, whole_log_interval=0.05, **hub_options)
            viewer = Viewer(hub, sid)
            await _until(lambda: viewer.text == OLD)
            yield fake, sid, hub, viewer


async def _follow(change) -> tuple[Viewer, Viewer, str]:
    """A log is read whole, then `change(fake, sid)` changes it upstream and lines follow; the
    session ends. Returns the viewer that watched throughout, one that came at the end, and
    the text the service last served."""
    async with _watched_log() as (fake, sid, hub, viewer):
        change(fake, sid)
        await _until(lambda: viewer.text.endswith("again 1\n"))
        fake.append_log(sid, "again 2\n")
        await _until(lambda: viewer.text.endswith("again 2\n"))
        late = Viewer(hub, sid)  # joins now: the hub's buffer shows it the same
        fake.set_status(sid, "Completed")
        await asyncio.wait_for(asyncio.gather(viewer.task, late.task), 20)
        await hub.close()
        served = fake.logs[sid].decode()
    for each in (viewer, late):
        assert each.end is not None and each.end.status == "Completed"
        # Offsets only grow and tile the text shown: a browser resumes from the last one.
        pairs = zip(each.offsets, each.offsets[1:], strict=False)
        assert all(a[1] == b[0] for a, b in pairs), each.offsets
    return viewer, late, served


async def test_a_log_that_restarts_shorter_is_shown_after_one_notice():
    def restart(fake, sid):
        fake.replace_log(sid, "again 1\n")

    viewer, late, served = await _follow(restart)
    assert viewer.text == late.text == OLD + NOTICE + served
    assert served == "again 1\nagain 2\n"


async def test_a_log_that_restarts_and_outgrows_the_old_one_is_not_cut_at_the_old_size():
    def restart(fake, sid):
        fake.replace_log(sid, "".join(f"restarted, longer {i}\n" for i in range(200)) + "again 1\n")

    viewer, late, served = await _follow(restart)
    assert viewer.text == late.text == OLD + NOTICE + served


async def test_a_rotated_log_that_kept_its_tail_continues_after_it_without_repeats():
    def rotate(fake, sid):
        fake.replace_log(sid, "".join(f"old {i}\n" for i in range(150, 300)) + "again 1\n")

    viewer, late, _ = await _follow(rotate)
    assert viewer.text == late.text == OLD + "again 1\nagain 2\n"


async def test_a_viewer_behind_the_buffer_after_a_restart_gets_the_log_as_it_is_now():
    """The text from before a restart is gone upstream: a viewer that comes back from an older
    offset than the hub still holds gets the notice and the whole current log, not a slice of
    it cut at its old offset."""
    async with _watched_log(log_buffer_bytes=64) as (fake, sid, hub, viewer):
        fake.replace_log(sid, "again 1\n")
        await _until(lambda: viewer.text.endswith("again 1\n"))
        resumed = Viewer(hub, sid, offset=100)  # a browser tab reconnecting from byte 100
        await _until(lambda: resumed.text.endswith("again 1\n"))
        fake.append_log(sid, "again 2\n")
        fake.set_status(sid, "Completed")
        await asyncio.wait_for(asyncio.gather(viewer.task, resumed.task), 20)
        await hub.close()
    assert viewer.text == OLD + NOTICE + "again 1\nagain 2\n"
    assert resumed.text == NOTICE + "again 1\nagain 2\n"
    assert resumed.offsets[-1][1] == viewer.offsets[-1][1]  # both end at the same offset
