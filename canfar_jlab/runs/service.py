"""The run service: what every front door (server extension, CLI, magic) calls.

Launch, preview, list, get, logs, stop, delete and re-run, over one `Connection` (which
re-resolves the local engine when it refuses), on one `RunStore`. The doors keep only parsing
their input and rendering the result. Wherever a door expects a run, it may be given a run
name, a replica name (`RUN-3`) or a session id; `resolve` says which, or raises `NoMatch` with
one line for the user.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NoMatch
from ..models import LaunchRequest, Replica, Run, Session
from ..skaha import InvalidRequest, NotFound, SkahaClient
from .actions import delete_run, stop_run
from .connection import Connection
from .follow import LineHandler, ProgressHandler, follow_run
from .reconciler import Reconciled, reconcile, service_of
from .rerun import rerun_failed
from .sites import run_client, same_site
from .store import RunError, RunStore

if TYPE_CHECKING:
    from .launcher import Preview

_REPLICA = re.compile(r"^(?P<run>[a-z0-9][a-z0-9-]*)-(?P<index>[0-9]+)$")
SOURCES = ("snapshot", "notebook")
REDUCE_SUFFIX = "-reduce"


@dataclass
class Target:
    """What a RUN / REPLICA / SESSION argument named: a run (with `index`, one replica of it),
    or a session outside any run (`session`)."""

    run: Run | None = None
    index: int | None = None
    session: Session | None = None

    @property
    def replicas(self) -> list[Replica]:
        """The chosen replicas (index 0: the reduce step); a whole run's include it."""
        assert self.run is not None
        return [r for r in self.run.steps if self.index is None or r.index == self.index]

    @property
    def indices(self) -> list[int] | None:
        return None if self.index is None else [self.index]


@dataclass
class ReplicaLog:
    """One replica's log as it is now: from the archive when saved, else from the service."""

    replica: Replica
    text: str
    source: str  # "archive", "service", "none"
    attempts: list[str] = field(default_factory=list)  # earlier attempts' archived logs


class RunService:
    """Runs in `store`, sessions through `connection` (a Connection, or a plain client)."""

    def __init__(self, store: RunStore, connection: Connection | SkahaClient) -> None:
        self.store = store
        self.connection = connection

    async def client(self) -> Any:
        """The connection, connected (its credentials known)."""
        if isinstance(self.connection, Connection):
            await self.connection.connect()
        return self.connection

    @property
    def service_name(self) -> str:
        credentials = self.connection.credentials
        return credentials.service_name if credentials is not None else "the session service"

    # ------------------------------------------------------------ reading

    async def refresh(self) -> tuple[list[Session], Reconciled]:
        """One listing of the service, every run of it brought up to date (adopting sessions
        by name, recording ends from the replicas' reports, archiving logs)."""
        client = await self.client()
        sessions = await client.list_sessions()
        return sessions, await reconcile(self.store, sessions, client)

    async def runs(
        self,
        *,
        include_ended: bool = True,
        include_deleted: bool = True,
        reconciled: Reconciled | None = None,
    ) -> list[Run]:
        """This service's runs, up to date (or as `reconciled` from `refresh` has them),
        newest first."""
        if reconciled is None:
            _, reconciled = await self.refresh()
        service = service_of(await self.client())
        return [
            run
            for run in reconciled.runs
            if run.service == service
            and (include_ended or run.state == "active")
            and (include_deleted or run.deleted is None)
        ]

    async def get(self, name: str) -> Run:
        """Run `name`, up to date from the site it was launched on (issue 16)."""
        client = await self.client()
        run = self.store.get(name)
        if same_site(client, run.site):
            await self.refresh()
        else:
            async with run_client(run, client) as there:
                await reconcile(self.store, await there.list_sessions(), there)
        return self.store.get(name)

    async def resolve(self, text: str, *, sessions: bool = True) -> Target:
        """A run name, `RUN-<i>` (replica i), or a session id (a run's replica when a run owns
        it; a bare session otherwise, when `sessions`)."""
        if self.store.exists(text):
            return Target(run=self._same_service(self.store.get(text), await self.client()))
        if text.endswith(REDUCE_SUFFIX) and self.store.exists(text[: -len(REDUCE_SUFFIX)]):
            run = self.store.get(text[: -len(REDUCE_SUFFIX)])  # RUN-reduce: its reduce step
            if run.reduce is not None:
                return Target(run=self._same_service(run, await self.client()), index=0)
        match = _REPLICA.match(text)
        if match and self.store.exists(match["run"]):
            run = self.store.get(match["run"])
            index = int(match["index"])
            if 1 <= index <= len(run.replicas):
                return Target(run=self._same_service(run, await self.client()), index=index)
        client = await self.client()
        service = service_of(client)
        for run in self.store.list():
            if run.service != service:
                continue
            for replica in run.replicas:
                ids = (replica.session_id, *(a.session_id for a in replica.attempts))
                if text in ids:
                    return Target(run=run, index=replica.index)
        if sessions:
            try:
                return Target(session=await client.get_session(text))
            except (NotFound, InvalidRequest):
                pass
        raise NoMatch(self.no_match(text, sessions=sessions))

    def no_match(self, text: str, *, sessions: bool = True) -> str:
        session = "no session" if sessions else "no replica's session"
        return (
            f"no run named {text[:80]!r}, no replica of that name and {session} with that id "
            f"(runs in {self.store.root}, sessions on {self.service_name})"
        )

    def _same_service(self, run: Run, client: Any) -> Run:
        if run.service != service_of(client) and run.site is None:  # site runs: core switches
            raise RunError(
                f"run {run.name} lives on {run.service}, but the credentials in use point at "
                f"{client.credentials.service_name}"
            )
        return run

    async def logs(self, target: Target) -> list[ReplicaLog]:
        """Each chosen replica's log as it is now; an archived log is never downloaded
        again."""
        client = await self.client()
        if target.session is not None:
            text = (await client.logs(target.session.id)).text
            return [ReplicaLog(Replica(index=1, name=target.session.name or ""), text, "service")]
        assert target.run is not None
        run = await self.get(target.run.name)
        folder = Path(run.folder)
        shown = []
        async with run_client(run, client) as there:  # the run's own site (issue 16)
            for replica in Target(run=run, index=target.index).replicas:
                earlier = [a.log for a in replica.attempts if a.log]
                if replica.log is not None and not replica.log_partial:
                    text = _read(folder / replica.log)
                    shown.append(ReplicaLog(replica, text, "archive", earlier))
                elif replica.session_id is not None:
                    try:
                        text = (await there.logs(replica.session_id)).text
                    except NotFound:
                        text = _read(folder / replica.log) if replica.log else ""
                    shown.append(ReplicaLog(replica, text, "service", earlier))
                else:
                    shown.append(ReplicaLog(replica, "", "none", earlier))
        return shown

    async def events(self, target: Target) -> list[tuple[Replica, str | None]]:
        """Each chosen replica's Kubernetes events from the run's own site (None: it has no
        session); a bare session's as one entry."""
        client = await self.client()
        if target.session is not None:
            replica = Replica(index=1, name=target.session.name or "")
            return [(replica, await client.events(target.session.id))]
        assert target.run is not None
        shown: list[tuple[Replica, str | None]] = []
        async with run_client(target.run, client) as there:
            for replica in target.replicas:
                if replica.session_id is None:
                    shown.append((replica, None))
                    continue
                try:
                    shown.append((replica, await there.events(replica.session_id)))
                except NotFound:
                    shown.append((replica, "(the session is gone)"))
        return shown

    async def follow(
        self,
        name: str,
        *,
        on_line: LineHandler | None = None,
        on_progress: ProgressHandler | None = None,
        indices: Collection[int] | None = None,
        interval: float = 1.0,
    ) -> Run:
        return await follow_run(
            name,
            await self.client(),
            self.store,
            on_line=on_line,
            on_progress=on_progress,
            indices=indices,
            interval=interval,
        )

    # ------------------------------------------------------------ acting

    async def preview(self, request: LaunchRequest) -> Preview:
        from .launcher import preview

        return await preview(request, self.store, await self.client())

    async def launch(self, request: LaunchRequest) -> Run:
        from .launcher import launch

        return await launch(request, await self.client(), self.store)

    async def stop(self, name: str, indices: Collection[int] | None = None) -> Run:
        """End the run's replicas (or those of `indices`); record and logs stay (a whole
        run's state becomes "stopped")."""
        client = await self.client()
        self._same_service(self.store.get(name), client)
        await self.refresh()
        return await stop_run(name, client, self.store, indices)

    async def delete(self, name: str, indices: Collection[int] | None = None) -> list[str]:
        """Delete the run's sessions (logs archived first); a whole run is marked deleted."""
        client = await self.client()
        self._same_service(self.store.get(name), client)
        await self.refresh()
        return await delete_run(name, client, self.store, indices)

    async def rerun(self, name: str, *, source: str = "snapshot", more_memory: bool = False) -> Run:
        """Run the failed replicas again, from the launch snapshot or the current notebook.
        Sessions that exist are adopted first, so no REPLICA_ID ever gets a second one while
        its first is running or has succeeded. `more_memory`: only those that ran out of
        memory, as fixed sessions with twice their peak (refused, with the reason, when the
        service offers too little or none ran out of memory)."""
        if source not in SOURCES:
            raise RunError(f"source: must be one of {', '.join(SOURCES)}")
        client = await self.client()
        self._same_service(self.store.get(name), client)
        await self.refresh()
        return await rerun_failed(name, client, self.store, source=source, more_memory=more_memory)

    def notebook_changed(self, name: str) -> bool | None:
        from .snapshot import notebook_changed

        return notebook_changed(self.store.get(name))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read {path}: {error.strerror})\n"
