"""The async Skaha v1 client: the only code that speaks to a session service.

One client for CANFAR (or any Skaha deployment) and for the local engine; they differ only by
base URL and credential (`canfar_jlab.credentials`). It survives the real service's quirks
(shared/docs/skaha-api.md, security-reliability.md §4):

* GET and DELETE are retried with capped, jittered backoff on connection failures and
  429/502/503/504, honouring a bounded `Retry-After`. POST create is never retried once it may
  have reached the server: `create_replicas` reconciles by listing sessions by name instead.
* Redirects are not followed across origins (credentials would go with them).
* Every phase has a timeout; bodies are read with a size cap.
* The credential is attached by an httpx auth hook for the service's origin only, and never
  appears in a URL, a log record, an exception or a repr.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
from pydantic import ValidationError

from .errors import (  # the client's failures, re-exported: callers catch them from here
    AuthError,
    BadReply,
    CreateOutcomeUnknown,
    CredentialsError,
    InvalidRequest,
    NotFound,
    RedirectRefused,
    SkahaError,
    Unavailable,
    UpstreamTimeout,
    one_line,
)
from .logdelta import LineCutter, LogCursor
from .models import (
    Availability,
    Context,
    Image,
    LogChunk,
    PlatformLoad,
    PlatformStats,
    ReplicaOutcome,
    Session,
    SessionSpec,
    replica_names,
)
from .version import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from .credentials import Credentials

log = logging.getLogger(__name__)

T = TypeVar("T")

LOG_OFFSET_HEADER = "X-Skaha-Log-Offset"
LOG_STREAM_PATH = "logstream"
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_JSON_CAP = 32 * 2**20
_ERROR_CAP = 8 * 2**10
_XML_CAP = 64 * 2**10
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent calls are retried. Delays are capped and jittered ("equal jitter")."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: float = 30.0  # a longer Retry-After is reported, not waited for

    def backoff(self, attempt: int) -> float:
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return cap / 2 + random.uniform(0, cap / 2)  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: bytes


class _OriginAuth(httpx.Auth):
    """Adds the credential headers to requests for one origin, and to nothing else."""

    def __init__(self, origin: tuple[str, str, int], headers: Callable[[], dict[str, str]]):
        self._origin = origin
        self._headers = headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self._origin:
            request.headers.update(self._headers())
        yield request

    def __repr__(self) -> str:
        return "_OriginAuth(***)"


class SkahaClient:
    """Async client for one Skaha v1 service. Use `async with`, or call `aclose()`.

    `timeout` bounds reading a reply (seconds), `connect_timeout` opening a connection.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        max_log_bytes: int = 64 * 2**20,
        reconcile_delay: float = 1.0,
    ) -> None:
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.max_log_bytes = max_log_bytes
        self.reconcile_delay = reconcile_delay
        self._base = httpx.URL(credentials.base_url.rstrip("/") + "/")
        self._http = httpx.AsyncClient(
            auth=_OriginAuth(_origin(self._base), credentials.auth_headers),
            headers={
                "Accept": "application/json",
                "User-Agent": f"canfar-jlab/{__version__} httpx/{httpx.__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max(1, max_connections // 4),
            ),
            follow_redirects=False,
            verify=_ssl_context(credentials),
            # Proxy settings from the environment only for https: a proxy must never see a
            # plain-http credential (the local engine's token).
            trust_env=self._base.scheme == "https",
        )

    @property
    def base_url(self) -> str:
        return str(self._base).rstrip("/")

    def __repr__(self) -> str:
        return f"SkahaClient(base_url={self.base_url!r}, source={self.credentials.source!r})"

    async def __aenter__(self) -> SkahaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        """Closed: its requests fail before anything is sent."""
        return self._http.is_closed

    # ---------------------------------------------------------------- sessions

    async def list_sessions(
        self, type: str | None = None, status: str | None = None, *, view: str | None = None
    ) -> list[Session]:
        """The caller's sessions, optionally filtered by type and status (case-insensitive).

        `view="interactive"` (Skaha 1.1.4+) lists only non-headless sessions; Skaha then
        ignores `type`, so it is not sent. Older services ignore the view and list everything,
        so the headless ones are dropped here too.
        """
        if view is not None and view != "interactive":
            raise InvalidRequest(f"unknown session list view {view!r}")
        pairs = (("type", None if view else type), ("status", status), ("view", view))
        params = {key: value for key, value in pairs if value}
        data = await self._get_json("session", params)
        if not isinstance(data, list):
            raise BadReply(
                f"{self.credentials.service_name} sent a session list that is not a list"
            )
        sessions = []
        for item in data:
            try:
                sessions.append(Session.model_validate(item))
            except ValidationError:
                log.warning("skipping a session entry without an id from %s", self.base_url)
        if view == "interactive":
            sessions = [s for s in sessions if (s.type or "headless") != "headless"]
        return sessions

    async def get_session(self, session_id: str) -> Session:
        data = await self._get_json(f"session/{_checked_id(session_id)}")
        if not isinstance(data, dict):
            raise BadReply(f"{self.credentials.service_name} sent a session that is not an object")
        try:
            return Session.model_validate(data)
        except ValidationError:
            raise BadReply(
                f"{self.credentials.service_name} sent a session without an id"
            ) from None

    async def create_session(
        self, spec: SessionSpec, *, name: str | None = None, env: dict[str, str] | None = None
    ) -> str:
        """POST one session (form-encoded) and return its id.

        Retried only when the connection could not be opened (nothing was sent). When the request
        may have reached the service but no usable reply came back, raises
        `CreateOutcomeUnknown`: list sessions by name before trying again.
        """
        fields = spec.form_fields(name=name, extra_env=env)
        reply = await self._send("POST", "session", form=fields, idempotent=False)
        session_id = reply.body.decode("utf-8", "replace").strip()
        if not _SESSION_ID.match(session_id):
            raise CreateOutcomeUnknown(
                f"{self.credentials.service_name} accepted the create of "
                f"{name or spec.name} but its reply is not a session id"
            )
        return session_id

    async def create_replicas(
        self,
        spec: SessionSpec,
        replicas: int = 1,
        *,
        concurrency: int = 8,
        rounds: int = 3,
        only: Iterable[int] | None = None,
    ) -> list[ReplicaOutcome]:
        """Create `replicas` sessions the way the official client does, one outcome each.

        Names are `name` (one replica) or `name-1` .. `name-N`; each gets REPLICA_ID (1-based)
        and REPLICA_COUNT in its env. A create whose outcome is unknown is reconciled by listing
        sessions and matching the expected name against sessions that did not exist before;
        only replicas still missing are created again (up to `rounds` times).
        `only` creates just those REPLICA_IDs of the N (e.g. to run failed replicas again).
        Raises (nothing sent) on invalid names, an expired credential or a failed first listing.
        """
        try:
            names = replica_names(spec.name, replicas)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        todo = sorted(set(only)) if only is not None else list(range(1, replicas + 1))
        if not todo or not all(1 <= index <= replicas for index in todo):
            raise InvalidRequest(f"replicas to create must be among 1..{replicas}")
        await self.credentials.refresh_if_due()
        self._check_expiry()
        wanted = {names[index - 1] for index in todo}
        # Sessions already carrying these names (an earlier run) must never be mistaken for ours.
        before = {s.id for s in await self.list_sessions() if s.name in wanted}
        gate = asyncio.Semaphore(max(1, concurrency))
        outcomes: dict[int, ReplicaOutcome] = {}
        last_error: dict[int, SkahaError] = {}

        async def create(index: int) -> tuple[int, str | SkahaError]:
            env = {"REPLICA_ID": str(index), "REPLICA_COUNT": str(replicas)}
            async with gate:
                try:
                    return index, await self.create_session(spec, name=names[index - 1], env=env)
                except SkahaError as exc:
                    return index, exc

        for round_number in range(1, rounds + 1):
            unknown: list[int] = []
            for index, result in await asyncio.gather(*(create(i) for i in todo)):
                name = names[index - 1]
                if isinstance(result, str):
                    outcomes[index] = ReplicaOutcome(index=index, name=name, session_id=result)
                elif isinstance(result, CreateOutcomeUnknown):
                    unknown.append(index)
                    last_error[index] = result
                else:
                    outcomes[index] = _failed(index, name, result)
            if not unknown:
                break
            log.info("reconciling %d replica(s) of %s by name", len(unknown), spec.name)
            await asyncio.sleep(self.reconcile_delay)
            try:
                listed = await self.list_sessions()
            except SkahaError as exc:
                for index in unknown:
                    more = f"and listing sessions to check failed: {exc.message}"
                    outcomes[index] = _failed(index, names[index - 1], last_error[index], more)
                break
            claimed = {o.session_id for o in outcomes.values() if o.session_id}
            found: dict[str, Session] = {}
            for session in sorted(listed, key=_started):
                if session.name in wanted and session.id not in before | claimed:
                    found.setdefault(session.name, session)
            todo = []
            for index in unknown:
                session = found.get(names[index - 1])
                if session is not None:
                    outcomes[index] = ReplicaOutcome(
                        index=index, name=names[index - 1], session_id=session.id, reconciled=True
                    )
                elif round_number == rounds:
                    more = f"and no session named {names[index - 1]} appeared after {rounds} tries"
                    outcomes[index] = _failed(index, names[index - 1], last_error[index], more)
                else:
                    todo.append(index)
            if not todo:
                break
        return [outcomes[index] for index in sorted(outcomes)]

    async def logs(self, session_id: str, offset: int | None = None) -> LogChunk:
        """The session's log, or only what follows byte `offset`.

        The local engine applies the offset itself (`honoured`); from a service that sends the
        whole log, the bytes before `offset` are cut here, so the text means the same either way.
        """
        body, server_offset = await self._log_bytes(session_id, offset)
        cursor = LogCursor(offset or 0)
        new = cursor.advance(body, server_offset)
        return LogChunk(_decode(new), cursor.offset, honoured=bool(cursor.honoured))

    async def read_log(self, session_id: str, cursor: LogCursor) -> bytes:
        """The bytes of the session's log that `cursor` has not seen yet (advancing it): only
        those are asked for where the service honours offsets, else the whole log is diffed."""
        offset = cursor.offset if cursor.honoured is not False else None
        body, server_offset = await self._log_bytes(session_id, offset)
        return cursor.advance(body, server_offset)

    async def log_stream(
        self, sessions: dict[str, int], *, read_timeout: float = 60.0
    ) -> AsyncIterator[LogFrame]:
        """New log bytes of every session in `sessions` (id -> byte offset to start from), as
        the service sends them over one long-lived request (the local engine's `logstream`
        extension, docs/engine.md); a session's last frame has `end` set. Services without the
        extension (Skaha, older engines) answer NotFound or InvalidRequest at once."""
        await self.credentials.refresh_if_due()
        self._check_expiry()
        what = f"POST {LOG_STREAM_PATH}"
        body = json.dumps({"sessions": {_checked_id(k): int(v) for k, v in sessions.items()}})
        timeout = httpx.Timeout(read_timeout, connect=self._http.timeout.connect)
        request = self._http.build_request(
            "POST",
            self._base.join(LOG_STREAM_PATH),
            content=body.encode(),
            headers={"Content-Type": "application/json", "Accept": "application/octet-stream"},
            timeout=timeout,
        )
        try:
            response = await self._http.send(request, stream=True)
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise self._transport_error(exc, what, not isinstance(exc, _NOT_SENT), True) from None
        try:
            if response.status_code != 200:
                reply = await _read_capped(response, _ERROR_CAP, truncate=True)
                raise self._status_error(response.status_code, reply, what, None)
            frames = _FrameReader()
            async for chunk in response.aiter_bytes():
                for frame in frames.feed(chunk):
                    yield frame
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise self._transport_error(exc, what, True, True) from None
        except ValueError:
            raise BadReply(f"{self.credentials.service_name} sent a malformed log stream") from None
        finally:
            await response.aclose()

    async def tail(
        self, session_id: str, poll_interval: float = 2.0, *, max_failures: int = 5
    ) -> AsyncIterator[str]:
        """New log text as it appears, each line once, until the session has ended.

        Text comes in whole lines (a partial last line is held back until its end arrives or the
        session ends). After the session is seen Completed, Failed or gone, the log is read one
        last time and the iterator ends. Raises NotFound if the session is unknown at the start.
        """
        cursor, cutter = LogCursor(), LineCutter()
        first, failures = True, 0
        while True:
            try:
                try:
                    finished = (await self.get_session(session_id)).status.is_terminal
                except NotFound:
                    if first:
                        raise
                    finished = True
                first = False
                data = await self.read_log(session_id, cursor)
            except Unavailable as exc:  # timeouts and bad replies included
                failures += 1
                if failures > max_failures:
                    raise
                log.info("log poll of %s failed (%s); polling again", session_id, exc.code)
                await asyncio.sleep(poll_interval)
                continue
            failures = 0
            text = cutter.take(data, final=finished)
            if text:
                yield text
            if finished:
                return
            await asyncio.sleep(poll_interval)

    async def events(self, session_id: str) -> str:
        """The Kubernetes events table as text ('' when there are none)."""
        reply = await self._send("GET", f"session/{_checked_id(session_id)}", {"view": "events"})
        text = _decode(reply.body)
        return "" if text.strip() == "<none>" else text

    async def renew(self, session_id: str) -> None:
        """Ask for the session's deadline to be extended (repeating it is harmless)."""
        await self._send(
            "POST",
            f"session/{_checked_id(session_id)}",
            form=[("action", "renew")],
            idempotent=True,
        )

    async def delete(self, session_id: str) -> None:
        """Delete a session. Deleting an unknown or already deleted session is not an error."""
        try:
            await self._send("DELETE", f"session/{_checked_id(session_id)}")
        except NotFound:
            pass

    # ---------------------------------------------------------------- platform

    async def images(self, type: str | None = None) -> list[Image]:
        data = await self._get_json("image", {"type": type} if type else None)
        return self._validate_list(data, Image, "image list")

    async def context(self) -> Context:
        return self._validate(await self._get_json("context"), Context, "context")

    async def platform_stats(self) -> PlatformStats:
        data = await self._get_json("session", {"view": "stats"})
        return self._validate(data, PlatformStats, "platform stats")

    async def platform_load(self) -> PlatformLoad:
        """`view=stats` labelled (capacity, allocated, free), for every door to show.

        A 503 means the metrics backend is down (Skaha 1.4 sends no partial figures): that is
        answered at once as "platform metrics unavailable", a warning and not an error, and is
        not retried (a panel polls stats; a later poll is the retry).
        """
        try:
            reply = await self._send("GET", "session", {"view": "stats"}, no_retry=frozenset({503}))
        except Unavailable as exc:
            if exc.status != 503:
                raise
            detail = (exc.message.split(": ", 1)[1:] or [""])[0].removesuffix(": null")
            return PlatformLoad.unavailable(detail)
        try:
            data = json.loads(reply.body)
        except ValueError:
            raise BadReply(
                f"{self.credentials.service_name} sent malformed JSON for stats"
            ) from None
        return self._validate(data, PlatformStats, "platform stats").load()

    async def repositories(self) -> list[str]:
        data = await self._get_json("repository")
        if not isinstance(data, list):
            raise BadReply(
                f"{self.credentials.service_name} sent a repository list that is not one"
            )
        return [str(item) for item in data]

    async def availability(self) -> Availability:
        """VOSI availability, read from `<service>/availability` (outside the /vN prefix)."""
        service_root = re.sub(r"/v\d+(\.\d+)*/?$", "/", str(self._base))
        url = httpx.URL(service_root).join("availability")
        reply = await self._send("GET", url, cap=_XML_CAP)
        try:
            # Small (capped) and from the service we talk to; expat refuses entity expansion bombs.
            root = ElementTree.fromstring(reply.body)  # noqa: S314
        except ElementTree.ParseError:
            raise BadReply(
                f"{self.credentials.service_name} sent unreadable availability XML"
            ) from None
        values = {el.tag.rsplit("}", 1)[-1]: (el.text or "").strip() for el in root.iter()}
        if "available" not in values:
            raise BadReply(f"{self.credentials.service_name} sent availability without a value")
        return Availability(
            available=values["available"].lower() == "true", note=values.get("note") or None
        )

    # ---------------------------------------------------------------- plumbing

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        reply = await self._send("GET", path, params, cap=_JSON_CAP)
        try:
            return json.loads(reply.body)
        except ValueError:
            raise BadReply(
                f"{self.credentials.service_name} sent malformed JSON for {path}"
            ) from None

    def _validate(self, data: Any, model: type[T], what: str) -> T:
        try:
            return model.model_validate(data)  # type: ignore[attr-defined, no-any-return]
        except ValidationError:
            raise BadReply(f"{self.credentials.service_name} sent an unreadable {what}") from None

    def _validate_list(self, data: Any, model: type[T], what: str) -> list[T]:
        if not isinstance(data, list):
            raise BadReply(f"{self.credentials.service_name} sent an {what} that is not a list")
        return [self._validate(item, model, what) for item in data]

    async def _log_bytes(self, session_id: str, offset: int | None) -> tuple[bytes, int | None]:
        params = {"view": "logs"}
        if offset is not None:
            params["offset"] = str(max(0, int(offset)))
        reply = await self._send(
            "GET", f"session/{_checked_id(session_id)}", params, cap=self.max_log_bytes
        )
        header = (reply.headers.get(LOG_OFFSET_HEADER) or "").strip()
        return reply.body, (int(header) if header.isdigit() else None)

    def _check_expiry(self) -> None:
        if self.credentials.is_expired():
            raise AuthError(self.credentials.expired_message())

    async def _send(
        self,
        method: str,
        path: str | httpx.URL,
        params: dict[str, str] | None = None,
        *,
        form: list[tuple[str, str]] | None = None,
        idempotent: bool | None = None,
        cap: int = _JSON_CAP,
        no_retry: frozenset[int] = frozenset(),
    ) -> _Reply:
        """One call with retries where safe; returns the whole (capped) body of a 2xx reply."""
        await self.credentials.refresh_if_due()  # an OIDC token about to expire is renewed
        self._check_expiry()
        idempotent = method in ("GET", "HEAD", "DELETE") if idempotent is None else idempotent
        url = path if isinstance(path, httpx.URL) else self._base.join(path)
        content, headers = None, None
        if form is not None:  # a form body keeps env values and arguments out of URLs and logs
            content = urlencode(form).encode("ascii")
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        attempt, redirects, renewed = 0, 0, False
        what = f"{method} {url.path}"
        while True:
            attempt += 1
            request = self._http.build_request(
                method, url, params=params, content=content, headers=headers
            )
            started = time.monotonic()
            try:
                response = await self._http.send(request, stream=True)
            except (httpx.TransportError, ssl.SSLError) as exc:
                # Connect failures happen before anything is sent: safe to retry for any method.
                # A pool timeout also sent nothing, but waiting again would only queue longer.
                sent = not isinstance(exc, _NOT_SENT)
                safe = (not sent and not isinstance(exc, httpx.PoolTimeout)) or (
                    idempotent and not isinstance(exc, httpx.TimeoutException)
                )
                safe = safe and _tls_error(exc) is None  # a refused handshake stays refused
                if safe and attempt < self.retry.attempts:
                    await self._pause(what, attempt, None, type(exc).__name__)
                    continue
                raise self._transport_error(exc, what, sent, idempotent) from None
            try:
                status = response.status_code
                log.debug("%s -> %d (%.0f ms)", what, status, (time.monotonic() - started) * 1e3)
                if response.is_redirect:
                    target = self._redirect_target(response, what)
                    redirects += 1
                    if not idempotent or redirects > 3:
                        raise RedirectRefused(f"{what} was redirected; not following it")
                    url, params, attempt = target, None, attempt - 1
                    continue
                retry = status in _RETRY_STATUSES and status not in no_retry
                if retry and idempotent and attempt < self.retry.attempts:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    if wait is not None and wait > self.retry.max_retry_after:
                        body = await _read_capped(response, _ERROR_CAP, truncate=True)
                        raise self._status_error(status, body, what, wait)
                    await self._pause(what, attempt, wait, f"HTTP {status}")
                    continue
                if status == 401 and not renewed and self._renewable():
                    # An OIDC token refused before its recorded expiry: renew it once, again.
                    renewed = True
                    await self.credentials.oidc.fresh_token(refused=_bearer(response.request))  # type: ignore[union-attr]
                    attempt -= 1
                    continue
                if status >= 400:
                    body = await _read_capped(response, _ERROR_CAP, truncate=True)
                    wait = _retry_after(response.headers.get("Retry-After"))
                    raise self._status_error(status, body, what, wait, create=not idempotent)
                body = await _read_capped(response, cap)
                return _Reply(status, response.headers, body)
            except _TooLarge:
                raise BadReply(f"the reply to {what} is larger than {cap} bytes") from None
            except (httpx.TransportError, ssl.SSLError) as exc:  # broke while reading the body
                safe = idempotent and not isinstance(exc, httpx.TimeoutException)
                if safe and _tls_error(exc) is None and attempt < self.retry.attempts:
                    await self._pause(what, attempt, None, type(exc).__name__)
                    continue
                raise self._transport_error(exc, what, True, idempotent) from None
            finally:
                await response.aclose()

    def _renewable(self) -> bool:
        oidc = self.credentials.oidc
        return oidc is not None and oidc.can_refresh

    async def _pause(self, what: str, attempt: int, wait: float | None, why: str) -> None:
        delay = wait if wait is not None else self.retry.backoff(attempt)
        log.info("retrying %s in %.2f s after %s (attempt %d)", what, delay, why, attempt + 1)
        await asyncio.sleep(delay)

    def _redirect_target(self, response: httpx.Response, what: str) -> httpx.URL:
        try:
            target = response.url.join(response.headers.get("Location", ""))
        except (httpx.InvalidURL, ValueError):
            raise RedirectRefused(f"{what} was redirected to an unreadable location") from None
        if _origin(target) != _origin(self._base):
            raise RedirectRefused(
                f"{what} was redirected to another host ({target.host}); not following it "
                "with credentials"
            )
        return target

    def _transport_error(
        self, exc: Exception, what: str, sent: bool, idempotent: bool
    ) -> SkahaError:
        service = self.credentials.service_name
        kind = type(exc).__name__
        certificate = self.credentials.certificate
        tls_error = _tls_error(exc)
        # A failed TLS handshake means the service never read the request, even a create.
        if isinstance(tls_error, ssl.SSLCertVerificationError):
            return Unavailable(f"the TLS certificate of {service} could not be verified ({kind})")
        if tls_error is not None and certificate is not None:
            return AuthError(
                f"{service} refused TLS with the certificate from {self.credentials.source} "
                f"({kind}); {self.credentials.renew_hint}"
            )
        if tls_error is not None:
            return Unavailable(f"TLS with {service} failed for {what} ({kind})")
        if not idempotent and sent:
            return CreateOutcomeUnknown(
                f"no reply from {service} to {what} ({kind}); the session may have been created"
            )
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(f"{service} did not answer {what} in time ({kind})")
        if sent:
            # With TLS 1.3 a refused client certificate can look like a reset connection.
            maybe = (
                f"; if it refused the certificate from {self.credentials.source}, "
                f"{self.credentials.renew_hint}"
                if certificate is not None
                else ""
            )
            return Unavailable(f"the connection to {service} broke during {what} ({kind}){maybe}")
        return Unavailable(f"cannot reach {service} for {what} ({kind})")

    def _status_error(
        self, status: int, body: bytes, what: str, retry_after: float | None, create: bool = False
    ) -> SkahaError:
        detail = self._redact(one_line(_decode(body), 200))
        creds = self.credentials
        if status in (401, 403) or (status == 400 and "anonymous" in detail):
            return AuthError(creds.rejected_message(status, detail), status=status)
        said = f"{creds.service_name} answered {what} with HTTP {status}" + (
            f": {detail}" if detail else ""
        )
        if status == 404:
            return NotFound(said, status=status)
        if status < 500 and status != 429:
            return InvalidRequest(detail or said, status=status)
        if create and status >= 500:
            return CreateOutcomeUnknown(said, status=status, retry_after=retry_after)
        return Unavailable(said, status=status, retry_after=retry_after)

    def _redact(self, text: str) -> str:
        # A misbehaving server may echo what it received; never pass a credential on.
        for secret in self.credentials.secret_values():
            text = text.replace(secret, "***")
        return text


async def open_client(
    url: str | None = None,
    token: str | None = None,
    certificate: str | Path | None = None,
    *,
    start_engine: bool = True,
    site: str | None = None,
    **options: Any,
) -> SkahaClient:
    """A client for the service the credentials resolve to (see `canfar_jlab.credentials`);
    `site` picks a server of `~/.canfar/config.yaml` instead of the active one.

    Resolution may start the local engine, so it runs in a worker thread.
    """
    from .credentials import resolve_credentials

    credentials = await asyncio.to_thread(
        resolve_credentials, url, token, certificate, start_engine=start_engine, site=site
    )
    return SkahaClient(credentials, **options)


# --------------------------------------------------------------------------------------------


def _ssl_context(credentials: Credentials) -> ssl.SSLContext:
    """TLS 1.2+ with the usual CA bundle (SSL_CERT_FILE honoured) and the client certificate."""
    context = httpx.create_ssl_context(verify=True, trust_env=True)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if credentials.certificate is not None:
        try:
            context.load_cert_chain(str(credentials.certificate))
        except (OSError, ssl.SSLError):
            raise AuthError(
                f"cannot use the certificate {credentials.certificate} from {credentials.source}: "
                f"it is unreadable or lacks its key; {credentials.renew_hint}"
            ) from None
    return context


@dataclass(frozen=True)
class LogFrame:
    """A piece of one session's log from `log_stream`: `data` starts at byte `offset`; `end`
    is the session's final status on its last frame."""

    session_id: str
    offset: int
    data: bytes = b""
    end: str | None = None


class _FrameReader:
    """Splits the log stream into frames: a JSON header line, then `length` raw bytes."""

    MAX_HEADER = 4096

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> list[LogFrame]:
        self._buffer += chunk
        frames = []
        while True:
            if self._header is None:
                end = self._buffer.find(b"\n")
                if end < 0:
                    if len(self._buffer) > self.MAX_HEADER:
                        raise ValueError("frame header too long")
                    return frames
                header = json.loads(self._buffer[:end])
                del self._buffer[: end + 1]
                if not isinstance(header, dict):
                    raise ValueError("frame header is not an object")
                if not header:
                    continue  # heartbeat
                self._header = header
            length = self._header.get("length", 0)
            if not isinstance(length, int) or length < 0:
                raise ValueError("bad frame length")
            if len(self._buffer) < length:
                return frames
            data = bytes(self._buffer[:length])
            del self._buffer[:length]
            header, self._header = self._header, None
            session_id, offset, end = header.get("session"), header.get("offset"), header.get("end")
            if not isinstance(session_id, str) or not isinstance(offset, int):
                raise ValueError("frame without a session and an offset")
            frames.append(LogFrame(session_id, offset, data, end if isinstance(end, str) else None))


class _TooLarge(Exception):
    pass


def _bearer(request: httpx.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(6):  # httpx wraps httpcore, which wraps the ssl error
        if seen is None or isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _failed(index: int, name: str, error: SkahaError, more: str = "") -> ReplicaOutcome:
    message = f"{error.message} {more}".strip() if more else error.message
    return ReplicaOutcome(index=index, name=name, error=message, error_status=error.status)


def _started(session: Session) -> datetime:
    return session.start_time or datetime.max.replace(tzinfo=timezone.utc)


def _checked_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
        raise InvalidRequest(f"{one_line(str(session_id), 80)!r} is not a session id")
    return session_id


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host, port


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


async def _read_capped(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The body, refusing (or, for error text, cutting) more than `cap` bytes."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            if truncate:
                chunks.append(chunk[: cap - (size - len(chunk))])
                break
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


__all__ = [
    "LOG_OFFSET_HEADER",
    "AuthError",
    "BadReply",
    "CreateOutcomeUnknown",
    "CredentialsError",
    "InvalidRequest",
    "NotFound",
    "RedirectRefused",
    "RetryPolicy",
    "SkahaClient",
    "SkahaError",
    "Unavailable",
    "UpstreamTimeout",
    "open_client",
]
