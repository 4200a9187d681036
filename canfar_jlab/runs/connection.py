"""One connection to the session service, shared by every call of a front door.

`Connection` looks like a `SkahaClient` (the run service, the reconciler and the live hub take
either), but resolves the credentials lazily and, on the local engine, resolves them again
and retries once when the engine refuses the token or does not answer: after
`canfar-jlab engine stop && canfar-jlab engine start` it has a new port and a new token, and
resolving starts it again if it is stopped. That holds for every call path (launch, preview,
list, logs, delete...), not only for the routes that happened to reconnect.

A create whose outcome is unknown (the request may have reached the service) is never sent
again here: the run service reconciles those by name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..credentials import Credentials, resolve_credentials
from ..errors import (
    AuthError,
    BadReply,
    ConnectionFailed,
    CreateOutcomeUnknown,
    SkahaError,
    Unavailable,
    UpstreamTimeout,
)
from ..skaha import RetryPolicy, SkahaClient
from .archive import LOG_READ_LIMIT

log = logging.getLogger(__name__)

T = TypeVar("T")


# What a stopped or restarted engine looks like; a timeout or a garbled reply may mean the
# request was acted on, so those are never retried.
_REFUSALS = (AuthError, Unavailable)
_NOT_RETRIED = (UpstreamTimeout, CreateOutcomeUnknown, BadReply)

# SkahaClient methods that talk to the service (each goes through `call`).
_CALLS = frozenset(
    {
        "list_sessions",
        "get_session",
        "create_session",
        # Raises only before any create is sent (its per-replica failures are outcomes).
        "create_replicas",
        "logs",
        "read_log",
        "events",
        "renew",
        "delete",
        "images",
        "context",
        "platform_stats",
        "repositories",
        "availability",
    }
)


class Connection:
    """A lazily resolved, self-healing client (`url`: as `resolve_credentials` takes it)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        resolve: Callable[[str | None], Credentials] | None = None,
        client: Callable[[Credentials], SkahaClient] | None = None,
        one_failure: bool = False,
    ) -> None:
        self.url = url or None
        self._resolve = resolve or (lambda url: resolve_credentials(url))
        self._make = client or (
            lambda credentials: SkahaClient(credentials, max_log_bytes=LOG_READ_LIMIT)
        )
        self.client: SkahaClient | None = None
        self.credentials: Credentials | None = None
        self.last_error: str | None = None
        # The server reports every setup failure as one kind (502); the CLI keeps the kind
        # (credentials: exit code 3).
        self._one_failure = one_failure
        self._lock = asyncio.Lock()

    @classmethod
    def for_server(cls, url: str | None, request_timeout: float) -> Connection:
        """The server's connection: one attempt gets the request timeout, retries fit in a
        route's deadline."""
        return cls(
            url,
            one_failure=True,
            client=lambda credentials: SkahaClient(
                credentials,
                timeout=request_timeout,
                connect_timeout=min(5.0, request_timeout),
                retry=RetryPolicy(attempts=3, base_delay=0.25, max_delay=2.0),
                max_log_bytes=LOG_READ_LIMIT,
            ),
        )

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ connecting

    async def connect(self) -> SkahaClient:
        """The client, resolving the credentials on first use (and again after a failure).
        Resolving may start the local engine, so it runs in a worker thread."""
        if self.client is not None:
            return self.client
        async with self._lock:
            if self.client is None:
                try:
                    credentials = await asyncio.to_thread(self._resolve, self.url)
                except SkahaError as exc:
                    self.last_error = exc.message
                    if not self._one_failure:
                        raise
                    raise ConnectionFailed(exc.message) from None
                except Exception as exc:  # one line for the user, never a traceback
                    self.last_error = f"could not set up the session service: {exc}"
                    raise ConnectionFailed(self.last_error) from None
                self.credentials, self.last_error = credentials, None
                self.client = self._make(credentials)
        return self.client

    async def reset(self, stale: SkahaClient | None = None) -> None:
        """Drop the client (only if it is still `stale`, when given) so the next call
        resolves the credentials again."""
        async with self._lock:
            client = self.client
            if client is None or (stale is not None and client is not stale):
                return  # another caller already reconnected
            self.client = self.credentials = None
        await client.aclose()

    async def aclose(self) -> None:
        await self.reset()

    async def run(self, work: Callable[[SkahaClient], Awaitable[T]], what: str) -> T:
        """`work(client)`; on the local engine, reconnect and try once more when it refuses
        our token or cannot be reached. `what` names the call in the log."""
        client = await self.connect()
        try:
            return await work(client)
        except _REFUSALS as exc:
            if not client.credentials.is_local_engine or isinstance(exc, _NOT_RETRIED):
                raise
            log.info("the local engine refused %s (%s): connecting again", what, exc.code)
            await self.reset(client)
            client = await self.connect()
            return await work(client)
        except RuntimeError:
            if not client.closed or self.client is client:
                raise
            # Another call found the engine restarted and replaced this client while ours
            # waited to retry on it; a closed client sends nothing, so going on is safe.
            log.info("%s: the connection was renewed meanwhile; going on with the new one", what)
            client = await self.connect()
            return await work(client)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`client.<method>(...)` through `run`: the SkahaClient face below forwards here."""
        return await self.run(lambda client: getattr(client, method)(*args, **kwargs), method)

    # ------------------------------------------------------------ SkahaClient's face

    def __getattr__(self, name: str) -> Any:
        if name in _CALLS:

            async def forward(*args: Any, **kwargs: Any) -> Any:
                return await self.call(name, *args, **kwargs)

            forward.__name__ = name
            return forward
        if name.startswith("_") or self.__dict__.get("client") is None:
            raise AttributeError(name)
        # Anything else (base_url, reconcile_delay, newer helpers): the live client's, as is.
        return getattr(self.__dict__["client"], name)

    def tail(self, session_id: str, poll_interval: float = 2.0, **kwargs: Any) -> Any:
        assert self.client is not None, "connect first"
        return self.client.tail(session_id, poll_interval, **kwargs)


async def connected(connection: Connection | SkahaClient) -> SkahaClient:
    """The live client behind a connection (or the client itself)."""
    if isinstance(connection, Connection):
        return await connection.connect()
    return connection
