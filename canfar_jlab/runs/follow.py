"""Watching a run until it ends: its replicas' logs as whole lines, and its progress.

Used by `canfar-jlab run --follow`, `logs RUN -f` and the magic. Each poll lists the sessions
once, reconciles the store (so logs get archived even if no server is running), then reads
each live replica's new log bytes (the local engine sends only those; from Skaha the client
cuts what was already seen). A replica that has ended is finished from its archived log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from ..logdelta import LineCutter, LogCursor, lines_of
from ..models import Replica, Run
from ..skaha import SkahaClient, SkahaError
from .reconciler import reconcile
from .sites import same_site, site_client
from .store import RunStore

LineHandler = Callable[[int, str], None]
ProgressHandler = Callable[[Run], None]


@dataclass
class _Stream:
    """How far one session's log has been passed on."""

    cursor: LogCursor = field(default_factory=LogCursor)
    lines: LineCutter = field(default_factory=LineCutter)
    done: bool = False


class RunFollower:
    """Follows the logs of a run's replicas (all, or `indices`), each line passed on once."""

    def __init__(
        self,
        client: SkahaClient,
        on_line: LineHandler,
        indices: Collection[int] | None = None,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.on_line = on_line
        self.indices = set(indices) if indices is not None else None
        self._streams: dict[tuple[int, str], _Stream] = {}
        self._gate = asyncio.Semaphore(concurrency)

    def done(self, run: Run) -> bool:
        return all(
            self._streams.get((r.index, r.session_id), _Stream()).done
            for r in self._followed(run)
            if r.session_id
        )

    async def pump(self, run: Run) -> None:
        """Pass on what each followed replica logged since the last call."""
        replicas = [r for r in self._followed(run) if r.session_id]
        await asyncio.gather(*(self._pump_one(run, replica) for replica in replicas))

    def _followed(self, run: Run) -> list[Replica]:
        return [r for r in run.steps if self.indices is None or r.index in self.indices]

    async def _pump_one(self, run: Run, replica: Replica) -> None:
        assert replica.session_id is not None
        stream = self._streams.setdefault((replica.index, replica.session_id), _Stream())
        if stream.done:
            return
        final = replica.is_ended and (replica.log is not None or replica.log_lost)
        if final and replica.log is not None and not replica.log_partial:
            # The archive is the whole log: the cursor cuts what was already passed on.
            whole = _read_whole(Path(run.folder) / replica.log)
            data = stream.cursor.advance(whole, None) if whole is not None else b""
        elif final:  # lost: only what we saw
            data = b""
        else:
            async with self._gate:
                try:
                    data = await self.client.read_log(replica.session_id, stream.cursor)
                except SkahaError:
                    return  # try again at the next poll
        for line in lines_of(stream.lines.take(data, final=final)):
            self.on_line(replica.index, line)
        stream.done = final


async def follow_run(
    name: str,
    client: SkahaClient,
    store: RunStore,
    *,
    on_line: LineHandler | None = None,
    on_progress: ProgressHandler | None = None,
    indices: Collection[int] | None = None,
    interval: float = 1.0,
) -> Run:
    """Poll until every replica of run `name` has ended and its log was passed on; return the
    final Run. `on_line(index, line)` gets each log line, `on_progress(run)` each poll's run."""
    site = store.get(name).site
    if not same_site(client, site):  # issue 16: follow on the site the run was launched on
        async with site_client(site) as there:
            return await follow_run(
                name,
                there,
                store,
                on_line=on_line,
                on_progress=on_progress,
                indices=indices,
                interval=interval,
            )
    follower = RunFollower(client, on_line, indices) if on_line is not None else None
    while True:
        sessions = await client.list_sessions()
        await reconcile(store, sessions, client)
        run = store.get(name)
        if on_progress is not None:
            on_progress(run)
        if follower is not None:
            await follower.pump(run)
        followed = [r for r in run.steps if indices is None or r.index in indices]
        # A replica's own report may say it ended while its session still winds down (the
        # kernel shutting down): the run is followed to the end once its logs are archived too.
        # A whole run is followed through its reduce step (index 0), started once they all
        # succeeded.
        ended = all(r.is_ended and _log_settled(r) for r in followed)
        ended = ended and (indices is not None or not run.reduce_pending)
        if ended and (follower is None or follower.done(run)):
            return run
        await asyncio.sleep(interval)


def _log_settled(replica: Replica) -> bool:
    """Its log is archived, known lost, or it never had a session to have one."""
    return replica.session_id is None or replica.log is not None or replica.log_lost


def _read_whole(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
