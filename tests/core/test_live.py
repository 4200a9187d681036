"""LiveHub over the real local engine: shared feeds, stale lists, slow viewers."""

from __future__ import annotations

import asyncio

from live_support import CountingSource, read_all, start_printer

from canfar_jlab.live import LiveHub
from canfar_jlab.skaha import SkahaClient


async def test_session_created_after_the_last_list_is_followed_to_its_end(creds, tmp_path):
    async with SkahaClient(creds) as client:
        hub = LiveHub(client, list_interval=0.2)
        await hub.refresh()  # a list taken before the session exists
        session_id = await start_printer(client, tmp_path, "late-session", 5, 0.01)
        text, end = await asyncio.wait_for(read_all(hub, session_id), 30)
        await hub.close()
    assert [ln for ln in text.splitlines() if ln.startswith("line")] == [
        f"line {i}" for i in range(5)
    ]
    assert end is not None and end.status == "Completed"


async def test_many_viewers_share_one_feed_and_each_gets_everything(creds, tmp_path):
    async with SkahaClient(creds) as client:
        source = CountingSource(client, stream=False)
        hub = LiveHub(source, list_interval=0.2, log_min_interval=0.05)
        session_id = await start_printer(client, tmp_path, "shared-feed", 40, 0.01)
        viewers = [asyncio.ensure_future(read_all(hub, session_id)) for _ in range(8)]
        while not hub.log_feeds or hub.log_feeds[session_id].viewers < 8:
            await asyncio.sleep(0.01)
        feed = hub.log_feeds[session_id]
        assert list(hub.log_feeds) == [session_id]  # one feed for eight viewers
        results = await asyncio.wait_for(asyncio.gather(*viewers), 60)
        assert hub.log_feeds == {}  # the last viewer left: the feed stopped
        await hub.close()
    # Every upstream read was the shared feed's own: no viewer read for itself.
    assert source.log_reads == feed.upstream_reads
    for text, end in results:
        assert [ln for ln in text.splitlines() if ln.startswith("line")] == [
            f"line {i}" for i in range(40)
        ]
        assert end is not None and end.status == "Completed"


async def test_a_slow_viewer_falls_behind_the_buffer_and_still_gets_everything(creds, tmp_path):
    async with SkahaClient(creds) as client:
        source = CountingSource(client, stream=False)
        hub = LiveHub(source, list_interval=0.2, log_min_interval=0.05, log_buffer_bytes=64)
        session_id = await start_printer(client, tmp_path, "slow-viewer", 40, 0.01)
        fast = asyncio.ensure_future(read_all(hub, session_id))
        slow = asyncio.ensure_future(read_all(hub, session_id, slow=0.05))
        (fast_text, _), (slow_text, slow_end) = await asyncio.wait_for(
            asyncio.gather(fast, slow), 60
        )
        await hub.close()
    assert slow_text == fast_text
    assert [ln for ln in slow_text.splitlines() if ln.startswith("line")] == [
        f"line {i}" for i in range(40)
    ]
    assert slow_end is not None and slow_end.status == "Completed"


async def test_no_viewers_no_polling(creds):
    async with SkahaClient(creds) as client:
        source = CountingSource(client, stream=False)
        hub = LiveHub(source, list_interval=0.05)
        snapshots = hub.snapshots()
        first = await asyncio.wait_for(snapshots.__anext__(), 10)
        assert first.error is None
        await snapshots.aclose()  # the last viewer leaves
        await asyncio.sleep(0)
        calls = source.list_calls
        await asyncio.sleep(0.3)  # several intervals: a live poll would have listed again
        assert source.list_calls <= calls + 1
        await hub.close()
