"""Live status, usage and log text for many viewers at the cost of one.

* One `list_sessions` call per interval feeds every viewer of every session: the status and the
  CPU/memory in use of a 1,000-replica run cost the service what a 1-replica run costs.
* One log feed per watched session, however many viewers it has (single flight). Its recent
  text is kept in a bounded buffer; each viewer reads at its own pace from its own byte offset,
  so a slow viewer never blocks the feed or the others, and one that falls behind the buffer
  catches up with a direct read from the service.
* Where the service offers a log stream (the local engine, docs/engine.md), one long-lived
  request carries every watched log; elsewhere each feed polls. Against a service that sends
  whole logs (Skaha), polling is polite: a quiet log is read ever less often (up to
  `quiet_interval`), one shown in a tab at least every `whole_log_interval`, one whose session
  just ended once more at once, and all whole-log reads share a bytes-per-second cap.
* A polling feed reads through the one log follower (`logdelta.LogCursor`, as the CLI and the
  run service do): a whole log that shrank, rotated or restarted upstream is noticed, its new
  text shown once after one notice, never repeated or cut at the old size.
* Feeds stop when their last viewer leaves; the list poll runs only while someone watches it or
  an observer (the runs module) says there is still work in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .logdelta import RESTART_NOTICE, LogCursor, unseen
from .models import LogChunk, Session
from .skaha import InvalidRequest, NotFound, SkahaError

log = logging.getLogger(__name__)


class SessionSource(Protocol):
    """What the hub needs from a Skaha client (`canfar_jlab.skaha.SkahaClient` fits)."""

    async def list_sessions(self) -> list[Session]: ...

    async def logs(self, session_id: str, offset: int | None = None) -> LogChunk: ...

    async def read_log(self, session_id: str, cursor: LogCursor) -> bytes: ...

    # Optional: `log_stream(sessions: dict[str, int]) -> AsyncIterator[LogFrame]`, the service's
    # streaming log read (SkahaClient.log_stream); the hub uses it when the source has it.


@dataclass(frozen=True)
class Snapshot:
    """Every session the service lists, at one moment, plus what observers add (runs)."""

    t: float
    sessions: list[Session]
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    failure: BaseException | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class LogDelta:
    """Log text between two byte offsets of one session's log."""

    session_id: str
    offset: int
    next_offset: int
    text: str


@dataclass(frozen=True)
class LogEnd:
    """The session ended (or vanished) and its log was read one last time."""

    session_id: str
    status: str


# Called with each new list; may return extra fields for the snapshot (e.g. {"runs": [...]})
# and says through `busy()` whether the list must keep being polled with no viewer.
Observer = Callable[[list[Session]], Awaitable[dict[str, Any]]]


class ByteBudget:
    """A cap on whole-log bytes per second, shared by every feed of one hub: a read reserves
    the bytes it expects (the log's last size) and waits its turn; the actual size settles the
    account afterwards. Reads that fit the rate are never delayed."""

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = float(bytes_per_second)
        self._free_at = 0.0

    async def reserve(self, expected: int) -> int:
        if self.rate <= 0:
            return expected
        now = time.monotonic()
        start = max(self._free_at, now)
        self._free_at = start + expected / self.rate
        if start > now:
            await asyncio.sleep(start - now)
        return expected

    def settle(self, reserved: int, actual: int) -> None:
        if self.rate > 0:
            self._free_at += (actual - reserved) / self.rate


class LogFeed:
    """One session's log, read once for all of its viewers: from the service's log stream when
    it offers one (the local engine), else by polling."""

    def __init__(
        self,
        hub: LiveHub,
        session_id: str,
        *,
        min_interval: float,
        max_interval: float,
        buffer_bytes: int,
    ) -> None:
        self.hub = hub
        self.session_id = session_id
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.buffer_bytes = buffer_bytes
        self.chunks: deque[LogDelta] = deque()
        self.buffered = 0
        self.next_offset: int | None = None  # None until the first read
        self.ended: LogEnd | None = None
        self.viewers = 0
        self.visible_viewers: set[object] = set()
        self.upstream_reads = 0
        self.last_size = 0  # whole-log services: the size of the last log read
        # Polling: how much of the service's log was seen (the one log follower, which
        # notices a whole log that shrank or rotated), and feed offset minus the service's
        # offset, which a restarted whole log makes positive: offsets given to viewers only
        # grow and tile what they were shown, whatever the log upstream did.
        self.cursor: LogCursor | None = None
        self.shift = 0
        self.interval = 0.0  # polling: the wait before the next read
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def visible(self) -> bool:
        return bool(self.visible_viewers)

    def start(self, offset: int) -> None:
        if self._started:
            return
        self._started = True
        self.next_offset = offset
        if self.hub.stream is not None:
            self.hub.stream.add(self)
        else:
            self.start_polling()

    def start_polling(self) -> None:
        if self.cursor is None:
            self.cursor = LogCursor(self.next_offset or 0)
        if self._task is None and self.ended is None:
            self._task = asyncio.create_task(self._poll(), name=f"log-feed-{self.session_id}")

    def wake(self) -> None:
        """Read now (the session ended, or a viewer now shows it), not after the interval."""
        self._wake.set()

    async def stop(self) -> None:
        if self.hub.stream is not None:
            self.hub.stream.remove(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        hub = self.hub
        interval = self.min_interval
        failures = 0
        started = time.time()
        whole: bool | None = None  # the service sends whole logs (Skaha): known after one read
        while True:
            self._wake.clear()  # here: a wake that comes during the read is not lost
            ended = hub.ended_status(self.session_id, since=started)
            reserved = 0
            try:
                if whole:
                    reserved = await hub.budget.reserve(self.last_size)
                assert self.cursor is not None
                data = await hub.source.read_log(self.session_id, self.cursor)
                self.upstream_reads += 1
                failures = 0
            except Exception as exc:  # the service is down or slow: keep trying, say so once
                failures += 1
                if failures == 1:
                    log.info("log read of %s failed: %s", self.session_id, _one_line(exc))
                await asyncio.sleep(min(self.max_interval * 4, interval * 2**failures))
                continue
            hub.log_reads += 1
            if whole is None:
                whole = self.cursor.honoured is False
            start = self.next_offset or 0
            if whole:
                self.last_size = self.cursor.offset  # the whole log's size
                hub.budget.settle(reserved, self.last_size)
                hub.whole_log_bytes += self.last_size
                next_offset = start + len(data)
                self.shift = next_offset - self.cursor.offset
            else:
                next_offset = self.cursor.offset + self.shift
            news = bool(data) or next_offset != start
            if news:
                await self._append(start, next_offset, data.decode("utf-8", "replace"))
            if ended is not None:
                # The status came before this read, so this read had the log's final bytes.
                await self._finish(ended)
                return
            if whole:
                # Polite to a service that sends the whole log every time: a log that changed
                # is read again in `whole_log_interval`, a quiet one ever less often (up to
                # `quiet_interval`), one shown in a browser tab at least every
                # `whole_log_interval`; an end seen in the list wakes the feed for a last read.
                base = hub.whole_log_interval
                interval = base if news else min(hub.quiet_interval, max(interval, base) * 2)
                wait = min(interval, base) if self.visible else interval
            else:
                interval = self.min_interval if news else min(self.max_interval, interval * 2)
                wait = interval
            self.interval = wait
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def receive(self, offset: int, data: bytes) -> None:
        """Bytes from the log stream, starting at byte `offset`."""
        current = self.next_offset or 0
        data = unseen(current, offset, data)  # a reopened stream resends nothing, but be sure
        if not data:
            return
        offset = max(offset, current)
        await self._append(offset, offset + len(data), data.decode("utf-8", "replace"))

    async def _append(self, start: int, next_offset: int, text: str) -> None:
        delta = LogDelta(self.session_id, start, next_offset, text)
        async with self._changed:
            self.chunks.append(delta)
            self.buffered += len(text)
            while self.buffered > self.buffer_bytes and len(self.chunks) > 1:
                self.buffered -= len(self.chunks.popleft().text)
            self.next_offset = next_offset
            self._changed.notify_all()

    async def _finish(self, status: str) -> None:
        async with self._changed:
            self.ended = LogEnd(self.session_id, status)
            self._changed.notify_all()

    async def follow(self, offset: int) -> AsyncIterator[LogDelta | LogEnd]:
        """Yield the log from byte `offset` on, then new text, then a `LogEnd`."""
        cursor = offset
        while True:
            pending: list[LogDelta] = []
            async with self._changed:
                while True:
                    pending = [c for c in self.chunks if c.next_offset > cursor]
                    if pending or self.ended is not None:
                        break
                    await self._changed.wait()
                ended = self.ended
                oldest = self.chunks[0].offset if self.chunks else self.next_offset or 0
            if cursor < oldest:
                # Fell behind the buffer (or resumed from an old offset): read the gap directly,
                # within the whole-log budget when the service sends whole logs.
                # A whole log that restarted upstream holds nothing from before the restart
                # (`shift`): a viewer from back then gets the notice and the log as it is.
                budget = self.hub.budget
                reserved = await budget.reserve(self.last_size) if self.last_size else 0
                shift = self.shift
                chunk = await self.hub.source.logs(self.session_id, max(0, cursor - shift))
                self.upstream_reads += 1
                whole = 0 if chunk.honoured else chunk.next_offset
                budget.settle(reserved, whole)
                self.hub.whole_log_bytes += whole
                text = (RESTART_NOTICE.decode() if cursor < shift else "") + chunk.text
                if text:
                    yield LogDelta(self.session_id, cursor, shift + chunk.next_offset, text)
                cursor = max(cursor, shift + chunk.next_offset)
                continue
            for delta in pending:
                if delta.offset < cursor:
                    delta = _slice(delta, cursor)
                if delta.text:
                    yield delta
                cursor = delta.next_offset
            if ended is not None and not [c for c in self.chunks if c.next_offset > cursor]:
                yield ended
                return


def _slice(delta: LogDelta, cursor: int) -> LogDelta:
    """The part of `delta` after byte `cursor`."""
    data = delta.text.encode("utf-8", "replace")[cursor - delta.offset :]
    return LogDelta(delta.session_id, cursor, delta.next_offset, data.decode("utf-8", "replace"))


class LogStream:
    """Every watched log over one long-lived request (the service's `log_stream`), reopened
    with the new set when feeds come or go; a service without it is polled instead."""

    DEBOUNCE = 0.05  # a burst of subscriptions (a merged view of 100 replicas) opens one request
    GIVE_UP_AFTER = 3  # failures before the stream ever opened, then the feeds poll

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.feeds: dict[str, LogFeed] = {}
        self.requests = 0  # stream requests opened
        self.frames = 0
        self._opened_once = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, feed: LogFeed) -> None:
        self.feeds[feed.session_id] = feed
        self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="log-stream")

    def remove(self, feed: LogFeed) -> None:
        if self.feeds.get(feed.session_id) is feed:
            del self.feeds[feed.session_id]
            self._changed.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while self.feeds and not self.hub._closed:
            await asyncio.sleep(self.DEBOUNCE)
            self._changed.clear()
            watch = {
                sid: feed.next_offset or 0 for sid, feed in self.feeds.items() if feed.ended is None
            }
            if not watch:
                await self._changed.wait()
                continue
            reader = asyncio.ensure_future(self._consume(watch))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait({reader, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when this task is cancelled (the hub closes)
                changed.cancel()
                if not reader.done():
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
            if reader not in done or reader.cancelled():  # the set changed: reopen with it
                continue
            error = reader.exception()
            if error is None:
                failures = 0
                continue
            failures += 1
            # Never opened: a refusal (404 from Skaha or an older engine, any other status) or
            # repeated failures mean no stream here; the feeds poll, as they always could.
            refused = isinstance(error, NotFound | InvalidRequest) or (
                isinstance(error, SkahaError) and error.status is not None
            )
            if not self._opened_once and (refused or failures >= self.GIVE_UP_AFTER):
                log.info("no log stream from the session service; polling logs instead")
                self.hub.stream = None
                for feed in list(self.feeds.values()):
                    feed.start_polling()
                self.feeds.clear()
                return
            if failures == 1:
                log.info("the log stream broke: %s; reopening it", _one_line(error))
            await asyncio.sleep(min(5.0, 0.25 * 2**failures))

    async def _consume(self, watch: dict[str, int]) -> None:
        source = self.hub.source
        self.requests += 1
        async for frame in source.log_stream(watch):  # type: ignore[attr-defined]
            self._opened_once = True
            self.frames += 1
            feed = self.feeds.get(frame.session_id)
            if feed is None:
                continue
            if frame.data:
                await feed.receive(frame.offset, frame.data)
            if frame.end is not None:
                await feed._finish(frame.end)


class LiveHub:
    """Shared watchers over one session service."""

    def __init__(
        self,
        source: SessionSource,
        *,
        list_interval: float = 2.0,
        log_min_interval: float = 0.1,
        log_max_interval: float = 1.0,
        log_buffer_bytes: int = 2 * 2**20,
        whole_log_interval: float = 2.0,
        quiet_interval: float = 30.0,
        whole_log_bytes_per_second: float = 2 * 2**20,
        stream: bool = True,
        observer: Observer | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.source = source
        self.list_interval = list_interval
        self.log_min_interval = log_min_interval
        self.log_max_interval = log_max_interval
        self.log_buffer_bytes = log_buffer_bytes
        self.whole_log_interval = whole_log_interval
        self.quiet_interval = quiet_interval
        self.budget = ByteBudget(whole_log_bytes_per_second)
        # The log stream while the service may offer one; None once it is known not to.
        self.stream: LogStream | None = (
            LogStream(self) if stream and hasattr(source, "log_stream") else None
        )
        self.log_reads = 0  # upstream log reads by polling feeds
        self.whole_log_bytes = 0  # bytes of whole logs read (services without offsets)
        self.observer = observer
        self.busy = busy or (lambda: False)
        self.snapshot: Snapshot | None = None
        self.list_calls = 0
        self._feeds: dict[str, LogFeed] = {}
        self._snapshot_viewers = 0
        self._snapshot_changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._list_task: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Future[Snapshot] | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def ensure_polling(self) -> None:
        """Start the list poll if it is not running (viewers or busy observers keep it alive)."""
        if self._closed:
            return
        if self._list_task is None or self._list_task.done():
            self._list_task = asyncio.create_task(self._poll_list(), name="live-list")

    async def close(self) -> None:
        self._closed = True
        tasks = [self._list_task] if self._list_task else []
        for task in tasks:
            task.cancel()
        for feed in list(self._feeds.values()):
            await feed.stop()
        if self.stream is not None:
            await self.stream.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._snapshot_changed:
            self._snapshot_changed.notify_all()

    def nudge(self) -> None:
        """Poll again now (after a launch or a delete), not at the next interval."""
        self._wake.set()
        self.ensure_polling()

    # ------------------------------------------------------------------ sessions

    def _wanted(self) -> bool:
        return bool(self._snapshot_viewers or self._feeds or self.busy())

    async def _poll_list(self) -> None:
        while not self._closed and self._wanted():
            await self.refresh()
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.list_interval)

    async def refresh(self) -> Snapshot:
        """One list call, shared by everyone who asks while it is in flight (single flight);
        observers see every list."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._refreshing)

    async def recent(self, max_age: float) -> Snapshot:
        """The last snapshot if it is younger than `max_age` seconds, else a fresh one."""
        snapshot = self.snapshot
        if snapshot is not None and snapshot.error is None and time.time() - snapshot.t < max_age:
            return snapshot
        return await self.refresh()

    async def _refresh(self) -> Snapshot:
        try:
            sessions = await self.source.list_sessions()
            self.list_calls += 1
            extra = await self.observer(sessions) if self.observer else {}
            snapshot = Snapshot(time.time(), sessions, extra)
        except Exception as exc:
            previous = self.snapshot
            snapshot = Snapshot(
                time.time(),
                previous.sessions if previous else [],
                previous.extra if previous else {},
                error=_one_line(exc),
                failure=exc,
            )
        async with self._snapshot_changed:
            self.snapshot = snapshot
            self._snapshot_changed.notify_all()
        for feed in list(self._feeds.values()):
            if feed.ended is None and self.ended_status(feed.session_id) is not None:
                feed.wake()  # a replica that just ended is read once more, now
        return snapshot

    def ended_status(self, session_id: str, since: float = 0.0) -> str | None:
        """The session's final status as the last list saw it, or 'Deleted' when a list taken
        after `since` no longer has it (an older list may predate the session)."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.error:
            return None
        for session in snapshot.sessions:
            if session.id == session_id:
                return session.status.value if session.status.is_terminal else None
        return "Deleted" if snapshot.t >= since else None

    async def snapshots(self) -> AsyncIterator[Snapshot]:
        """The latest snapshot at once, then each new one; a slow reader only skips stale ones."""
        self._snapshot_viewers += 1
        self.ensure_polling()
        try:
            seen: Snapshot | None = None
            while not self._closed:
                async with self._snapshot_changed:
                    while (self.snapshot is seen or self.snapshot is None) and not self._closed:
                        await self._snapshot_changed.wait()
                    current = self.snapshot
                if current is None or self._closed:
                    return
                seen = current
                yield current
        finally:
            self._snapshot_viewers -= 1

    # ------------------------------------------------------------------ logs

    async def logs(
        self,
        session_id: str,
        offset: int = 0,
        *,
        viewer: object | None = None,
        visible: bool = True,
    ) -> AsyncIterator[LogDelta | LogEnd]:
        """Follow one session's log from byte `offset`, sharing one feed with other viewers.
        `visible` says whether `viewer` shows it now (see `set_visible`): a visible log is
        read at least every `whole_log_interval` from a whole-log service."""
        viewer = viewer if viewer is not None else object()
        feed = self._feeds.get(session_id)
        if feed is None:
            feed = LogFeed(
                self,
                session_id,
                min_interval=self.log_min_interval,
                max_interval=self.log_max_interval,
                buffer_bytes=self.log_buffer_bytes,
            )
            self._feeds[session_id] = feed
        feed.viewers += 1
        if visible:
            feed.visible_viewers.add(viewer)
        self.ensure_polling()
        feed.start(offset)
        try:
            async for item in feed.follow(offset):
                yield item
        finally:
            feed.viewers -= 1
            feed.visible_viewers.discard(viewer)
            if feed.viewers == 0 and self._feeds.get(session_id) is feed:
                del self._feeds[session_id]
                await feed.stop()

    def set_visible(self, session_id: str, viewer: object, visible: bool) -> None:
        """`viewer` now shows (or hides) the session's log."""
        feed = self._feeds.get(session_id)
        if feed is None:
            return
        if visible and viewer not in feed.visible_viewers:
            feed.visible_viewers.add(viewer)
            feed.wake()
        elif not visible:
            feed.visible_viewers.discard(viewer)

    @property
    def log_feeds(self) -> dict[str, LogFeed]:
        return dict(self._feeds)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
