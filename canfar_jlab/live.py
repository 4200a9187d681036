"""Live status, usage and log text for many viewers at the cost of one.

* One `list_sessions` call per interval feeds every viewer of every session: the status and the
  CPU/memory in use of a 1,000-replica run cost the service what a 1-replica run costs.
* One log feed per watched session, however many viewers it has (single flight). Its recent
  text is kept in a bounded buffer; each viewer reads at its own pace from its own byte offset,
  so a slow viewer never blocks the feed or the others, and one that falls behind the buffer
  catches up with a direct read from the service.
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

from .models import LogChunk, Session

log = logging.getLogger(__name__)


class SessionSource(Protocol):
    """What the hub needs from a Skaha client (`canfar_jlab.skaha.SkahaClient` fits)."""

    async def list_sessions(self) -> list[Session]: ...

    async def logs(self, session_id: str, offset: int | None = None) -> LogChunk: ...


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


class LogFeed:
    """One session's log, polled once for all of its viewers."""

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
        self.upstream_reads = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self, offset: int) -> None:
        if self._task is None:
            self.next_offset = offset
            self._task = asyncio.create_task(self._poll(), name=f"log-feed-{self.session_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        interval = self.min_interval
        failures = 0
        started = time.time()
        while True:
            ended = self.hub.ended_status(self.session_id, since=started)
            try:
                chunk = await self.hub.source.logs(self.session_id, self.next_offset)
                self.upstream_reads += 1
                failures = 0
            except Exception as exc:  # the service is down or slow: keep trying, say so once
                failures += 1
                if failures == 1:
                    log.info("log read of %s failed: %s", self.session_id, _one_line(exc))
                await asyncio.sleep(min(self.max_interval * 4, interval * 2**failures))
                continue
            if chunk.text or chunk.next_offset != self.next_offset:
                await self._append(chunk)
                interval = self.min_interval
            else:
                interval = min(self.max_interval, interval * 2)
            if ended is not None:
                # The status came before this read, so this read had the log's final bytes.
                async with self._changed:
                    self.ended = LogEnd(self.session_id, ended)
                    self._changed.notify_all()
                return
            # A service that sends whole logs on every call gets polled gently.
            floor = self.min_interval if chunk.honoured else max(self.min_interval, 2.0)
            await asyncio.sleep(max(floor, interval))

    async def _append(self, chunk: LogChunk) -> None:
        start = self.next_offset or 0
        delta = LogDelta(self.session_id, start, chunk.next_offset, chunk.text)
        async with self._changed:
            self.chunks.append(delta)
            self.buffered += len(chunk.text)
            while self.buffered > self.buffer_bytes and len(self.chunks) > 1:
                self.buffered -= len(self.chunks.popleft().text)
            self.next_offset = chunk.next_offset
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
                # Fell behind the buffer (or resumed from an old offset): read the gap directly.
                chunk = await self.hub.source.logs(self.session_id, cursor)
                self.upstream_reads += 1
                if chunk.text:
                    yield LogDelta(self.session_id, cursor, chunk.next_offset, chunk.text)
                cursor = max(cursor, chunk.next_offset)
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
        observer: Observer | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.source = source
        self.list_interval = list_interval
        self.log_min_interval = log_min_interval
        self.log_max_interval = log_max_interval
        self.log_buffer_bytes = log_buffer_bytes
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

    async def logs(self, session_id: str, offset: int = 0) -> AsyncIterator[LogDelta | LogEnd]:
        """Follow one session's log from byte `offset`, sharing one feed with other viewers."""
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
        self.ensure_polling()
        feed.start(offset)
        try:
            async for item in feed.follow(offset):
                yield item
        finally:
            feed.viewers -= 1
            if feed.viewers == 0 and self._feeds.get(session_id) is feed:
                del self._feeds[session_id]
                await feed.stop()

    @property
    def log_feeds(self) -> dict[str, LogFeed]:
        return dict(self._feeds)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
