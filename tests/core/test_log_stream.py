"""The engine's streaming log read, and the hub choosing it over polling when it is offered.

Real parts: the local engine over HTTP for the stream; the misbehaving Skaha fake
(tests/fake_skaha.py, which has no stream and sends whole logs) for the polling fallback.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from fake_skaha import FakeSkaha, Status
from live_support import CountingSource, read_all, start_printer

from canfar_jlab.credentials import Credentials, Secret, normalise_base_url
from canfar_jlab.live import LiveHub
from canfar_jlab.skaha import SkahaClient, Unavailable

TOKEN = "tok-" + secrets.token_hex(12)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("line")]


# ------------------------------------------------------------------ the engine's stream


async def test_one_request_carries_every_session_to_its_end(creds, tmp_path):
    async with SkahaClient(creds) as client:
        ids = [await start_printer(client, tmp_path, f"stream-{i}", 20, 0.01) for i in range(3)]
        received: dict[str, bytearray] = {sid: bytearray() for sid in ids}
        ends: dict[str, str] = {}

        async def consume() -> None:
            async for frame in client.log_stream(dict.fromkeys(ids, 0)):
                assert frame.offset == len(received[frame.session_id])  # frames tile the log
                received[frame.session_id] += frame.data
                if frame.end is not None:
                    ends[frame.session_id] = frame.end

        await asyncio.wait_for(consume(), 60)  # the reply ends when every session has ended
        for sid in ids:
            assert ends[sid] == "Completed"
            assert _lines(received[sid].decode()) == [f"line {i}" for i in range(20)]
            assert (await client.logs(sid)).text == received[sid].decode()

        # From an offset: exactly the rest, then the end at once (the session has ended).
        middle = len(received[ids[0]]) // 2
        frames = [f async for f in client.log_stream({ids[0]: middle})]
        assert b"".join(f.data for f in frames) == bytes(received[ids[0]][middle:])
        assert frames[-1].end == "Completed"

        # An unknown (or forgotten) session ends at once as Deleted.
        frames = [f async for f in client.log_stream({"nosuchsession0": 0})]
        assert [(f.data, f.end) for f in frames] == [(b"", "Deleted")]


@pytest.mark.parametrize(
    "sessions", [{"../etc": 0}, {"abc": -1}, {"abc": "7"}, ["abc"], {"abc": True}]
)
async def test_a_bad_watch_list_is_a_one_line_400(creds, sessions):
    async with SkahaClient(creds) as client:
        reply = await client._http.post(client._base.join("logstream"), json={"sessions": sessions})
    assert reply.status_code == 400
    assert reply.text.count("\n") == 1 and reply.text.startswith("logstream:")


# ------------------------------------------------------------------ the hub's choice


async def test_the_hub_streams_from_the_engine_and_never_polls(creds, tmp_path):
    async with SkahaClient(creds) as client:
        source = CountingSource(client)
        hub = LiveHub(source, list_interval=0.2)
        ids = [await start_printer(client, tmp_path, f"hub-stream-{i}", 30, 0.01) for i in range(4)]
        results = await asyncio.wait_for(asyncio.gather(*(read_all(hub, sid) for sid in ids)), 60)
        await hub.close()
    for text, end in results:
        assert _lines(text) == [f"line {i}" for i in range(30)]
        assert end is not None and end.status == "Completed"
    assert source.log_reads == 0  # no polling at all
    assert 1 <= source.stream_opens <= 4  # one request for the lot, reopened as viewers came


async def test_without_a_stream_the_hub_polls_as_before(creds, tmp_path):
    async with SkahaClient(creds) as client:
        source = CountingSource(client, stream=False)
        hub = LiveHub(source, list_interval=0.2, log_min_interval=0.05)
        sid = await start_printer(client, tmp_path, "hub-poll", 10, 0.01)
        text, end = await asyncio.wait_for(read_all(hub, sid), 60)
        await hub.close()
    assert _lines(text) == [f"line {i}" for i in range(10)]
    assert end is not None and end.status == "Completed"
    assert source.log_reads > 0


# ------------------------------------------------------------------ Skaha: polite polling


def _fake_credentials(fake: FakeSkaha) -> Credentials:
    return Credentials(
        base_url=normalise_base_url(fake.url),
        source="test",
        kind="explicit",
        token=Secret(TOKEN),
    )


async def _until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_skaha_without_a_stream_is_polled_and_the_stream_is_not_asked_again():
    with FakeSkaha(TOKEN) as fake:
        sid = fake.add_session("s1")
        fake.append_log(sid, "hello\n")
        async with SkahaClient(_fake_credentials(fake)) as client:
            hub = LiveHub(client, list_interval=0.1, whole_log_interval=0.05)
            follow = asyncio.ensure_future(read_all(hub, sid))
            await _until(lambda: hub.log_feeds.get(sid) and hub.log_feeds[sid].next_offset == 6)
            other = asyncio.ensure_future(read_all(hub, fake.add_session("s2")))
            await _until(lambda: len(fake.recorded("GET", sid)) >= 2)
            fake.append_log(sid, "bye\n")
            fake.set_status(sid, "Completed")
            text, end = await asyncio.wait_for(follow, 20)
            other.cancel()
            await hub.close()
        assert text == "hello\nbye\n" and end is not None and end.status == "Completed"
        assert len(fake.recorded("POST", "/logstream")) == 1  # tried once, then polling


async def test_quiet_logs_back_off_visible_ones_do_not():
    with FakeSkaha(TOKEN) as fake:
        quiet, shown = fake.add_session("quiet"), fake.add_session("shown")
        for sid in (quiet, shown):
            fake.append_log(sid, "start\n")
        async with SkahaClient(_fake_credentials(fake)) as client:
            hub = LiveHub(client, list_interval=0.1, whole_log_interval=0.05, quiet_interval=0.4)
            tasks = [
                asyncio.ensure_future(read_all(hub, quiet, visible=False)),
                asyncio.ensure_future(read_all(hub, shown, visible=True)),
            ]
            await _until(lambda: quiet in hub.log_feeds and hub.log_feeds[quiet].interval >= 0.4)
            assert hub.log_feeds[shown].interval <= 0.05
            reads = {sid: len(fake.recorded("GET", sid)) for sid in (quiet, shown)}
            await asyncio.sleep(1.0)  # a window over which to count reads, not a wait for state
            quiet_reads = len(fake.recorded("GET", quiet)) - reads[quiet]
            shown_reads = len(fake.recorded("GET", shown)) - reads[shown]
            assert quiet_reads <= 4 and shown_reads >= 8
            # A viewer shows the quiet log: it is read again at once, then every 0.05 s.
            before = len(fake.recorded("GET", quiet))
            viewer = object()
            hub.set_visible(quiet, viewer, True)
            await _until(lambda: len(fake.recorded("GET", quiet)) > before, timeout=0.3)
            for task in tasks:
                task.cancel()
            await hub.close()


async def test_a_replica_that_just_ended_is_read_once_more_at_once():
    with FakeSkaha(TOKEN) as fake:
        sid = fake.add_session("ending")
        fake.append_log(sid, "working\n")
        async with SkahaClient(_fake_credentials(fake)) as client:
            # Quiet logs wait up to a minute: only the end, seen in the list, wakes the feed.
            hub = LiveHub(client, list_interval=0.1, whole_log_interval=20.0, quiet_interval=60.0)
            follow = asyncio.ensure_future(read_all(hub, sid, visible=False))
            await _until(lambda: len(fake.recorded("GET", sid)) >= 1)
            fake.append_log(sid, "done\n")
            fake.set_status(sid, "Completed")
            started = time.monotonic()
            text, end = await asyncio.wait_for(follow, 10)
            await hub.close()
        assert time.monotonic() - started < 10
        assert text == "working\ndone\n" and end is not None and end.status == "Completed"


async def test_whole_log_bytes_per_second_are_capped():
    cap = 200_000
    with FakeSkaha(TOKEN) as fake:
        ids = [fake.add_session(f"big{i}") for i in range(5)]
        for sid in ids:
            fake.append_log(sid, b"x" * 99_999 + b"\n")
        async with SkahaClient(_fake_credentials(fake)) as client:
            hub = LiveHub(
                client,
                list_interval=0.2,
                whole_log_interval=0.05,
                whole_log_bytes_per_second=cap,
            )
            tasks = [asyncio.ensure_future(read_all(hub, sid)) for sid in ids]
            started = time.monotonic()
            await _until(lambda: hub.whole_log_bytes >= 500_000)  # every log read once
            await asyncio.sleep(1.5)  # a window over which to measure the rate
            elapsed = time.monotonic() - started
            read = hub.whole_log_bytes
            for task in tasks:
                task.cancel()
            await hub.close()
    # Uncapped, 5 visible logs every 0.05 s would be 10 MB/s; capped: the rate, plus the
    # first read of each log (nothing is known of a log's size before it).
    assert read <= cap * elapsed + 600_000, (read, elapsed)


async def test_a_stream_refused_with_any_status_means_polling():
    with FakeSkaha(TOKEN) as fake:
        fake.fail_next("POST logstream", Status(403, "forbidden path"))
        sid = fake.add_session("refused")
        fake.append_log(sid, "polled\n")
        fake.set_status(sid, "Completed")
        async with SkahaClient(_fake_credentials(fake)) as client:
            hub = LiveHub(client, list_interval=0.1, whole_log_interval=0.05)
            text, end = await asyncio.wait_for(read_all(hub, sid), 20)
            await hub.close()
        assert text == "polled\n" and end is not None
        assert hub.stream is None  # decided once for the hub's life


class BrokenStream(CountingSource):
    """A stream that never opens (a connection that always breaks)."""

    async def _log_stream(self, sessions):
        self.stream_opens += 1
        raise Unavailable("the connection broke")
        yield  # an async generator, like the real one


async def test_a_stream_that_never_opens_gives_way_to_polling(creds, tmp_path):
    async with SkahaClient(creds) as client:
        source = BrokenStream(client)
        hub = LiveHub(source, list_interval=0.2, log_min_interval=0.05)
        sid = await start_printer(client, tmp_path, "no-stream", 5, 0.01)
        text, end = await asyncio.wait_for(read_all(hub, sid), 60)
        await hub.close()
    assert _lines(text) == [f"line {i}" for i in range(5)]
    assert end is not None and end.status == "Completed"
    assert source.stream_opens == 3 and source.log_reads > 0
