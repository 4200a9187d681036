"""Watching a run until it ends: its replicas' logs as whole lines, and its progress.

Used by `canfar-jlab run --follow`, `logs RUN -f` and the magic. Each poll lists the sessions
once, reconciles the store (so logs get archived even if no server is running), then reads
each live replica's new log bytes (the local engine sends only those; from Skaha the client
cuts what was already seen). A replica that has ended is finished from its archived log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

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

    offset: int = 0
    pending: str = ""
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
        return [r for r in run.replicas if self.indices is None or r.index in self.indices]

    async def _pump_one(self, run: Run, replica: Replica) -> None:
        assert replica.session_id is not None
        stream = self._streams.setdefault((replica.index, replica.session_id), _Stream())
        if stream.done:
            return
        final = replica.is_ended and (replica.log is not None or replica.log_lost)
        if final and replica.log is not None and not replica.log_partial:
            text = _read_from(Path(run.folder) / replica.log, stream.offset)
        elif final:  # lost: only what we saw
            text = ""
        else:
            async with self._gate:
                try:
                    chunk = await self.client.logs(replica.session_id, stream.offset)
                except SkahaError:
                    return  # try again at the next poll
            stream.offset = chunk.next_offset
            text = chunk.text
        self._emit(replica.index, stream, text, final)
        stream.done = final

    def _emit(self, index: int, stream: _Stream, text: str, final: bool) -> None:
        data = stream.pending + text
        lines = data.split("\n")
        stream.pending = "" if final else lines.pop()
        if "\r" in stream.pending.rstrip("\r"):  # an unfinished bar: keep its last state only
            stream.pending = "\r" + shown_line(stream.pending)
        if final and lines[-1] == "":
            lines.pop()
        for line in lines:
            self.on_line(index, shown_line(line))


def shown_line(raw: str) -> str:
    """A log line as a terminal shows it: the text after its last carriage return.

    A progress bar's state that rewrites its previous line starts with ``\\r`` (see
    `canfar_jlab.kernel_runner.LineStreamer`); printed here as a line of its own.
    """
    line = raw.rstrip("\r")
    return line[line.rfind("\r") + 1 :]


def shown_lines(text: str) -> list[str]:
    """`text` as the lines a terminal shows (see `shown_line`)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [shown_line(line) for line in lines]


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
        followed = [r for r in run.replicas if indices is None or r.index in indices]
        ended = all(r.is_ended for r in followed)
        if ended and (follower is None or follower.done(run)):
            return run
        await asyncio.sleep(interval)


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return ""
