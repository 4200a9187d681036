"""HTTP handlers: the headless subset of Skaha v1 (and v0 as an alias) under `/skaha`."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import sys
import time
from typing import Any

import tornado.iostream
import tornado.web

from ..version import __version__
from .errors import HTTPRefusal, bad_request, not_found
from .manager import SessionManager
from .params import SESSION_TYPES, first, parse_create, quote
from .wire import (
    availability_xml,
    capabilities_xml,
    context_json,
    events_table,
    public_wire_session,
    stats_json,
    wire_session,
)

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
LOG_OFFSET_HEADER = "X-Skaha-Log-Offset"
RUNTIME_HEADER = "X-Canfar-Jlab-Runtime"
RUNTIME_NOTE = (
    "no container runtime: replicas run as local processes in the engine's Python environment "
    f"({sys.executable}); the image is recorded but not pulled"
)
LOG_CHUNK = 256 * 1024
MAX_MESSAGE = 300
_ALL_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")


class EngineHandler(tornado.web.RequestHandler):
    """Bearer-token check, Skaha-style text/plain errors, 405 with `Allow` for other methods."""

    SUPPORTED_METHODS = _ALL_METHODS
    public = False  # VOSI endpoints answer without a token

    def initialize(self, manager: SessionManager, token: str, base_url: str) -> None:
        self.manager = manager
        self.token = token
        self.base_url = base_url

    def set_default_headers(self) -> None:
        self.set_header("Server", f"canfar-jlab-engine/{__version__}")
        self.set_header("Content-Type", TEXT)

    def prepare(self) -> None:
        if self.request.method not in self._allowed():
            raise tornado.web.HTTPError(405)
        if self.public:
            return
        header = self.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode(), self.token.encode()
        ):
            raise HTTPRefusal(401, "authentication required: send the engine's bearer token")
        self.set_header("x-vo-authenticated", self.manager.identity.username)

    def _allowed(self) -> list[str]:
        base = tornado.web.RequestHandler
        return [
            method
            for method in ("GET", "POST", "DELETE")
            if getattr(type(self), method.lower()) is not getattr(base, method.lower())
        ]

    def params(self) -> dict[str, list[str]]:
        """Query string and form body merged (query first), values in order, not stripped."""
        merged: dict[str, list[str]] = {}
        for source in (self.request.query_arguments, self.request.body_arguments):
            for key, values in source.items():
                try:
                    merged.setdefault(key, []).extend(v.decode("utf-8") for v in values)
                except UnicodeDecodeError:
                    raise bad_request(f"Invalid value for '{quote(key)}': not UTF-8") from None
        return merged

    def param(self, key: str) -> str | None:
        return first(self.params(), key)

    def write_json(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json")
        # Compact (Skaha pretty-prints): the C encoder is several times faster for long lists.
        self.finish(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="canfar-jlab-engine"')
        if isinstance(exc, HTTPRefusal):
            message = exc.message
        elif status_code == 405:
            self.set_header("Allow", ", ".join(self._allowed()))
            message = f"unsupported: HTTP {self.request.method}"
        elif status_code >= 500:
            message = f"unexpected exception: {type(exc).__name__ if exc else 'error'}"
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message and not exc.args:
            message = exc.log_message  # tornado's own refusal, e.g. a malformed form body
        else:
            message = self._reason
        if len(message) > MAX_MESSAGE:  # a message never echoes a long input back
            message = message[: MAX_MESSAGE - 3] + "..."
        self.set_header("Content-Type", TEXT)
        self.finish(message.rstrip("\n") + "\n")

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, HTTPRefusal):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, HTTPRefusal | tornado.web.HTTPError):
            return  # an answer, not a fault
        log.error("%s %s failed", self.request.method, self.request.path, exc_info=(typ, value, tb))


class CapabilitiesHandler(EngineHandler):
    public = True

    def get(self, *_: str) -> None:
        self.set_header("Content-Type", "text/xml")
        self.finish(capabilities_xml(self.base_url))


class AvailabilityHandler(EngineHandler):
    public = True

    def get(self, *_: str) -> None:
        running = len(self.manager.list(status="Running"))
        note = f"canfar-jlab local engine {__version__} is accepting requests; {running} running"
        self.set_header("Content-Type", "text/xml")
        self.finish(availability_xml(True, note))


class EngineSessionsHandler(EngineHandler):
    """`/session`: list (with filters), stats, create."""

    def get(self, _version: str) -> None:
        view = (self.param("view") or "").lower()
        if view == "stats":
            cores, ram = self.manager.allocated()
            self.write_json(stats_json(self.manager.config, cores, ram))
            return
        status = self.param("status")
        if view == "interactive":
            self.write_json([])  # no interactive sessions run here
            return
        records = self.manager.list(kind=self.param("type"), status=status)
        if view == "all":
            self.write_json([public_wire_session(rec) for rec in records])
            return
        usage = self.manager.usage(records)
        ident = self.manager.identity
        self.write_json([wire_session(rec, ident, usage.get(rec.id)) for rec in records])

    def post(self, _version: str) -> None:
        config = self.manager.config
        request = parse_create(
            self.params(),
            cores_options=range(1, config.cores + 1),
            memory_options=range(1, config.memory_gb + 1),
            image_hosts=config.image_hosts,
        )
        rec = self.manager.create(request)
        self.finish(rec.id + "\n")

    def delete(self, _version: str) -> None:
        raise bad_request("Cannot kill all sessions.")


class EngineSessionHandler(EngineHandler):
    """`/session/{id}`: one session, its logs or events, renew, delete."""

    def _session_id(self, path: str) -> str:
        parts = path.split("/")
        if len(parts) > 3:
            raise bad_request(f"Invalid request: {quote(path)}")
        if len(parts) > 1:
            raise bad_request("desktop-app sessions are not supported by the local engine")
        return parts[0]

    async def get(self, _version: str, path: str) -> None:
        session_id = self._session_id(path)
        view = (self.param("view") or "").lower()
        if view == "logs":
            await self._logs(session_id)
            return
        rec = self.manager.get(session_id)
        if view == "events":
            if rec is None:
                raise not_found(f"session {quote(session_id)} not found.")
            self.finish(events_table(self.manager.events.get(session_id, [])))
            return
        if rec is None:
            raise not_found(f"session {quote(session_id)} not found")
        usage = self.manager.usage([rec]).get(rec.id)
        self.write_json(wire_session(rec, self.manager.identity, usage))

    async def _logs(self, session_id: str) -> None:
        """The log as it stands now, as Skaha; with `offset=N` (beyond Skaha) only the bytes
        after N, and `X-Skaha-Log-Offset` giving the offset that follows the bytes sent."""
        raw_offset = self.param("offset")
        position = 0
        if raw_offset is not None:
            try:
                position = int(raw_offset)
            except ValueError:
                position = -1
            if not 0 <= position < 2**63:
                raise bad_request(f"Invalid value for 'offset': {quote(raw_offset)}")
        end = self.manager.log_size(session_id)
        if raw_offset is not None:
            self.set_header(LOG_OFFSET_HEADER, str(max(position, end)))
        while position < end:
            chunk = self.manager.read_log(session_id, position, min(LOG_CHUNK, end - position))
            if not chunk:
                break
            position += len(chunk)
            self.write(chunk)
            if position < end:  # stream a large log instead of holding it in memory
                await self.flush()
        self.finish()

    async def post(self, _version: str, path: str) -> None:
        session_id = self._session_id(path)
        action = self.param("action")
        if action is None:
            raise bad_request("Cannot modify an existing session")
        if action.strip().lower() != "renew":
            raise bad_request("unrecognized action")
        self.manager.renew(session_id)
        self.finish()

    async def delete(self, _version: str, path: str) -> None:
        self.manager.delete(self._session_id(path))
        self.finish()


# ---------------------------------------------------------------- streaming log read (beyond Skaha)

STREAM_PATH = "logstream"
STREAM_TICK = 0.1  # seconds between looks at the watched logs
STREAM_QUIET_MAX = 4  # ticks between looks at a log that has been quiet a while
STREAM_HEARTBEAT = 15.0  # an empty frame after this long without news (finds closed peers)
STREAM_MAX_SESSIONS = 10_000


class LogStreamHandler(EngineHandler):
    """`POST v1/logstream` with `{"sessions": {"<id>": <offset>, ...}}`: one long-lived reply
    carrying the new bytes of every listed session's log as they are written (docs/engine.md).

    Frames: a JSON header line, then `length` raw log bytes when it says so:
    `{"session": id, "offset": N, "length": L}` + L bytes; `{"session": id, "end": status,
    "offset": M}` once a session has ended (or is gone) and all its bytes were sent; `{}` as a
    heartbeat. The reply ends when every listed session has ended, or when the client leaves."""

    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True

    def _watch_list(self) -> dict[str, int]:
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past the stack
            raise bad_request("logstream: the body must be JSON") from None
        sessions = body.get("sessions") if isinstance(body, dict) else None
        if not isinstance(sessions, dict) or len(sessions) > STREAM_MAX_SESSIONS:
            raise bad_request(
                f"logstream: 'sessions' must map up to {STREAM_MAX_SESSIONS} ids to offsets"
            )
        for session_id, offset in sessions.items():
            if not _STREAM_ID.fullmatch(session_id):
                raise bad_request(f"logstream: invalid session id {session_id[:64]!r}")
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise bad_request(f"logstream: offset of {session_id} must be a byte count")
        return dict(sessions)

    async def post(self, _version: str) -> None:
        watch = self._watch_list()
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Cache-Control", "no-store")
        quiet_since = time.monotonic()
        # A log that had news is looked at again next tick; a quiet one ever less often (up to
        # STREAM_QUIET_MAX ticks), so a merged view of a big, mostly Pending run costs little.
        skip: dict[str, int] = dict.fromkeys(watch, 0)
        pause: dict[str, int] = dict.fromkeys(watch, 1)
        while watch and not self._gone:
            sent = False
            for session_id, offset in list(watch.items()):
                if skip[session_id] > 0:
                    skip[session_id] -= 1
                    continue
                rec = self.manager.get(session_id)
                # Ended is read before the size: an ended replica writes nothing more.
                ended = "Deleted" if rec is None else rec.status if rec.final else None
                end = self.manager.log_size(session_id)
                while offset < end:
                    data = self.manager.read_log(session_id, offset, min(LOG_CHUNK, end - offset))
                    if not data:
                        break
                    self._frame({"session": session_id, "offset": offset, "length": len(data)})
                    self.write(data)
                    offset += len(data)
                    sent = True
                    if offset < end:  # a long backlog goes out in pieces, not all in memory
                        try:
                            await self.flush()
                        except tornado.iostream.StreamClosedError:
                            return
                news = offset != watch[session_id]
                watch[session_id] = offset
                pause[session_id] = 1 if news else min(STREAM_QUIET_MAX, pause[session_id] * 2)
                skip[session_id] = pause[session_id] - 1
                if ended is not None:
                    self._frame({"session": session_id, "end": ended, "offset": offset})
                    del watch[session_id]
                    sent = True
            now = time.monotonic()
            if not sent and now - quiet_since >= STREAM_HEARTBEAT:
                self._frame({})
                sent = True
            if sent:
                quiet_since = now
                try:
                    await self.flush()
                except tornado.iostream.StreamClosedError:
                    return
            if watch:
                await asyncio.sleep(STREAM_TICK)
        if not self._gone:
            self.finish()

    def _frame(self, header: dict[str, Any]) -> None:
        self.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")


_STREAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


class EngineImagesHandler(EngineHandler):
    def get(self, _version: str) -> None:
        kind = self.param("type")
        if kind is not None and kind.strip().lower() not in SESSION_TYPES:
            raise bad_request(f"unknown type: {quote(kind)}")
        if kind is not None and kind.strip().lower() != "headless":
            self.write_json([])
            return
        seen = dict.fromkeys(self.manager.config.images)
        seen.update(dict.fromkeys(rec.image for rec in self.manager.sessions.values()))
        self.set_header(RUNTIME_HEADER, "none")
        self.write_json(
            [
                {"id": image, "types": ["headless"], "digest": "", "note": RUNTIME_NOTE}
                for image in seen
            ]
        )


class EngineContextHandler(EngineHandler):
    def get(self, _version: str) -> None:
        self.write_json(context_json(self.manager.config))


class RepositoryHandler(EngineHandler):
    def get(self, _version: str) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.manager.config.public_repositories(), separators=(",", ":")))


class NotFoundHandler(EngineHandler):
    def prepare(self) -> None:
        raise not_found(f"not found: {quote(self.request.path)}")


def routes(manager: SessionManager, token: str, base_url: str) -> list[Any]:
    args = {"manager": manager, "token": token, "base_url": base_url}
    version = r"(v[01])"
    return [
        (r"/skaha/capabilities/?", CapabilitiesHandler, args),
        (r"/skaha/availability/?", AvailabilityHandler, args),
        (rf"/skaha/{version}/session/?", EngineSessionsHandler, args),
        (rf"/skaha/{version}/session/(.+)", EngineSessionHandler, args),
        (rf"/skaha/{version}/{STREAM_PATH}/?", LogStreamHandler, args),
        (rf"/skaha/{version}/image/?", EngineImagesHandler, args),
        (rf"/skaha/{version}/context/?", EngineContextHandler, args),
        (rf"/skaha/{version}/repository/?", RepositoryHandler, args),
        (r".*", NotFoundHandler, args),
    ]


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without query strings: create parameters (env values) stay out of logs."""
    request = handler.request
    status = handler.get_status()
    elapsed = 1000.0 * request.request_time()
    if status >= 400:
        level = logging.WARNING
    elif request.method == "GET" or request.path.endswith("/session"):  # list, or create
        level = logging.DEBUG  # polling, or a 1,000-replica launch, would drown the log
    else:
        level = logging.INFO
    log.log(level, "%d %s %s %.1fms", status, request.method, request.path, elapsed)
