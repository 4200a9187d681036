"""The server's one connection to a session service: credentials, client, live hub.

`Backend` is the typed service object every route calls (`get_session`, `images`, the run
service as `.service`...), never a client method named by a string. The extension builds it
from the class its `backend_class` setting names (a subclass of `Backend`), as
jupyter-scheduler builds its `scheduler_class`, so a deployment may swap it.
Created by the ExtensionApp's start hook and closed by its stop hook. Credential discovery
may start the local engine, so it runs in a worker thread and never blocks the event loop;
until it has succeeded, routes answer with its one-line failure (502) and try again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..credentials import Credentials
from ..errors import AuthError, NotFound, Unavailable, UpstreamTimeout
from ..live import LiveHub
from ..logdelta import LogCursor
from ..models import Context, Image, LogChunk, PlatformLoad, Run, Session
from ..runs import RunStore, busy, reconcile
from ..runs.connection import Connection
from ..runs.service import RunService
from ..skaha import SkahaClient

log = logging.getLogger(__name__)

T = TypeVar("T")


class Backend:
    """Lazily connected client + hub, shared by every handler of one Jupyter server."""

    def __init__(
        self,
        *,
        url: str | None = None,
        request_timeout: float = 10.0,
        list_interval: float = 2.0,
        log_bytes_per_second: float = 2 * 2**20,
        runs_root: Path | None = None,
        root_dir: Path | None = None,
    ) -> None:
        self.url = url or None
        self.store = RunStore(runs_root)
        self.root_dir = root_dir.resolve() if root_dir else None
        self.request_timeout = request_timeout
        self.list_interval = list_interval
        # One connection for every route and the hub: it re-resolves the local engine when
        # it refuses (restarted on a new port with a new token), whatever the call path.
        self.connection = Connection.for_server(self.url, request_timeout)
        self.service = RunService(self.store, self.connection)
        self.log_bytes_per_second = log_bytes_per_second
        self.hub: LiveHub | None = None

    @property
    def client(self) -> SkahaClient | None:
        return self.connection.client

    @property
    def credentials(self) -> Credentials | None:
        return self.connection.credentials

    @property
    def last_error(self) -> str | None:
        return self.connection.last_error

    @property
    def call_deadline(self) -> float:
        """Upper bound for one route's upstream work, retries included."""
        return self.request_timeout * 2

    def summary(self) -> dict[str, Any]:
        """What the browser may know about the backend: kind, host and credential source."""
        from urllib.parse import urlsplit

        if self.credentials is None:
            return {
                "kind": "unknown",
                "host": urlsplit(self.url).hostname if self.url else "",
                "url": "",
                "error": self.last_error,
            }
        creds = self.credentials
        return {
            "kind": "local" if creds.is_local_engine else "skaha",
            "host": urlsplit(creds.base_url).hostname or "",
            "url": creds.base_url,
            "credential": {
                "source": creds.source,
                "method": creds.summary()["method"],
                "expires": creds.current_expiry.isoformat() if creds.current_expiry else None,
                "site": creds.site,  # the config's server in use (issue 16: the default site)
            },
        }

    async def connect(self) -> SkahaClient:
        """The client, connecting on first use (and again after a failure)."""
        client = await self.connection.connect()
        if self.hub is None:
            # One hub for the server's life: it reads through `self`, so a reconnect (the
            # local engine restarted) swaps the client under it and every open live channel
            # keeps going.
            self.hub = LiveHub(
                self,
                list_interval=self.list_interval,
                whole_log_bytes_per_second=self.log_bytes_per_second,
                observer=self._observe,
                # Replicas still running keep the list polled (their logs must be archived
                # when they end) even when no browser is watching.
                busy=lambda: busy(self.store, self.connection.client),
            )
        return client

    # ------------------------------------------------ the session service, typed
    # Each call goes through the self-healing connection (a restarted local engine is found
    # again). The hub reads `list_sessions` and `logs` too.

    async def _run(self, work: Callable[[SkahaClient], Awaitable[T]], what: str) -> T:
        await self.connect()
        return await self.connection.run(work, what)

    async def list_sessions(self) -> list[Session]:
        return await self._run(lambda client: client.list_sessions(), "list_sessions")

    async def get_session(self, session_id: str) -> Session:
        return await self._run(lambda client: client.get_session(session_id), "get_session")

    async def delete_session(self, session_id: str) -> None:
        await self._run(lambda client: client.delete(session_id), "delete")

    async def logs(self, session_id: str, offset: int | None = None) -> LogChunk:
        return await self._run(lambda client: client.logs(session_id, offset), "logs")

    async def events(self, session_id: str) -> str:
        return await self._run(lambda client: client.events(session_id), "events")

    async def images(self) -> list[Image]:
        return await self._run(lambda client: client.images(), "images")

    async def context(self) -> Context:
        return await self._run(lambda client: client.context(), "context")

    async def platform_load(self) -> PlatformLoad:
        return await self._run(lambda client: client.platform_load(), "platform_load")

    async def read_log(self, session_id: str, cursor: LogCursor) -> bytes:
        return await self._run(lambda client: client.read_log(session_id, cursor), "read_log")

    async def log_stream(self, sessions: dict[str, int]) -> AsyncIterator[Any]:
        """The service's streaming log read; on a local engine that refused us or went away,
        drop the client so the hub's next attempt reconnects (to a restarted engine)."""
        client = await self.connect()
        if not client.credentials.is_local_engine:
            # Only the local engine has it; never probe CANFAR with an unknown POST.
            raise NotFound("the session service has no log stream")
        try:
            async for frame in client.log_stream(sessions):
                yield frame
        except (AuthError, Unavailable) as exc:
            if client.credentials.is_local_engine and not isinstance(exc, UpstreamTimeout):
                await self.reset(client)
            raise

    async def _observe(self, sessions: list) -> dict[str, Any]:
        """Every list the hub takes also brings the runs up to date (statuses, log archive)."""
        await self.connect()
        reconciled = await reconcile(self.store, sessions, self.connection)
        return {
            "runs": [self.run_json(run) for run in reconciled.runs if run.deleted is None],
            "owners": reconciled.owners,
            "ended": [self.run_json(run) for run in reconciled.ended],
        }

    def run_json(self, run: Run) -> dict[str, Any]:
        """A run as the browser sees it, with its folder relative to the server root if inside."""
        if self.root_dir is not None:
            try:
                relative = Path(run.folder).resolve().relative_to(self.root_dir)
                run = run.model_copy(update={"folder_relative": relative.as_posix()})
            except ValueError:
                pass
        return run.model_dump(mode="json")

    async def resume(self) -> None:
        """Follow runs that are still active (from before a restart, or from the CLI)."""
        try:
            if not await asyncio.to_thread(busy, self.store):
                return  # nothing in flight: connect (maybe start the engine) only when asked
            await self.connect()
        except Exception as exc:  # logged once; routes report the same reason when used
            log.warning("canfar-jlab could not resume following active runs: %s", exc)
            return
        self.nudge()

    def nudge(self) -> None:
        """Poll the service again now (after a launch, re-run or delete)."""
        if self.hub is not None:
            self.hub.nudge()

    async def reset(self, stale: SkahaClient | None = None) -> None:
        await self.connection.reset(stale)

    async def close(self) -> None:
        hub, self.hub = self.hub, None
        if hub is not None:
            await hub.close()
        await self.reset()
