"""A small Skaha v1 look-alike that misbehaves on request, for testing the client.

It stands in for what cannot run here (the real CANFAR service): it serves real HTTP on
127.0.0.1 from a thread, behaves like Skaha where the client depends on it (form-encoded
create, text/plain ids and errors, whole logs on every read, DELETE always 200) and can be told
to misbehave on the next matching request: be slow, fail with a status, send malformed JSON,
drop the connection mid-body, lose a create's reply after making the session, or redirect.
Every request is recorded with its headers so tests can check what was (not) sent.
"""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import string
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

from fake_http import FakeHandler, FakeServer

# ------------------------------------------------------------------ faults


@dataclass
class Status:
    """Answer with this status (text/plain body) instead of the normal reply."""

    code: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delay:
    """Wait this long before handling the request normally."""

    seconds: float


@dataclass
class Stall:
    """Handle the request normally (a create does create), then wait before replying."""

    seconds: float


@dataclass
class Malformed:
    """Reply 200 with a body that is not JSON."""

    body: bytes = b'{"id": "abc", "status": '


@dataclass
class DropMidBody:
    """Promise a long body, send a little of it, then close the connection."""


@dataclass
class LoseReply:
    """Handle the request normally (a create does create), then close without replying."""


@dataclass
class Redirect:
    location: str
    code: int = 302


@dataclass
class EchoCredentials:
    """A careless server: 401 whose body repeats the Authorization header it received."""


Fault = Status | Delay | Stall | Malformed | DropMidBody | LoseReply | Redirect | EchoCredentials


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    peer: str | None = None  # the client certificate's common name, over TLS


def new_session_id() -> str:
    rest = "".join(random.choices(string.ascii_lowercase + string.digits, k=7))
    return random.choice(string.ascii_lowercase) + rest


class FakeSkaha(FakeServer):
    """Run with `with FakeSkaha(token) as fake:`; `fake.url` is the /skaha/v1 base."""

    def __init__(
        self,
        token: str | None = None,
        *,
        honour_offset: bool = False,
        tls: ssl.SSLContext | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        self.token = token
        self.accept = accept  # e.g. FakeOidc.valid: which bearer tokens are current
        self.honour_offset = honour_offset
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.sessions: dict[str, dict] = {}
        self.logs: dict[str, bytes] = defaultdict(bytes)
        self.events: dict[str, str] = {}  # a session's events table (default: "<none>")
        self.creates = 0
        self.stats: dict = SKAHA_14_STATS  # or LEGACY_STATS; a Status(503) fault for metrics down
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        # Called with (session_id, read_count) before each log read is served.
        self.on_log_read: Callable[[str, int], None] | None = None
        self._log_reads: dict[str, int] = defaultdict(int)
        self._serve(_handler_for(self), tls)

    # -------------------------------------------------------------- control

    @property
    def url(self) -> str:
        return f"{self.root}/skaha/v1"

    def fail_next(self, route: str, *faults: Fault) -> None:
        """Queue faults for the next requests on `route`, e.g. "GET session", "POST session",
        "GET session/*", "GET logs", "GET events", "DELETE session/*", "GET image",
        "GET context", "GET stats", "GET availability", "GET repository"."""
        with self.lock:
            self.faults[route].extend(faults)

    def add_session(self, name: str, status: str = "Running", **fields: object) -> str:
        session_id = new_session_id()
        with self.lock:
            self.sessions[session_id] = {
                "id": session_id,
                "userid": "tester",
                "runAsUID": "1000",
                "runAsGID": "1000",
                "supplementalGroups": [1000],
                "image": "images.canfar.net/skaha/base:1",
                "type": "headless",
                "status": status,
                "name": name.lower(),
                "startTime": _now(),
                "connectURL": "",
                "requestedGPUCores": "0",
                "isFixedResources": False,
                **fields,
            }
        return session_id

    def set_status(self, session_id: str, status: str) -> None:
        with self.lock:
            self.sessions[session_id]["status"] = status

    def append_log(self, session_id: str, text: str | bytes) -> None:
        with self.lock:
            self.logs[session_id] += text.encode() if isinstance(text, str) else text

    def replace_log(self, session_id: str, text: str | bytes) -> None:
        """The log as a restarted container (it starts again) or a rotation (its head cut
        off) leaves it: from now on the service sends this instead."""
        with self.lock:
            self.logs[session_id] = text.encode() if isinstance(text, str) else text

    def recorded(self, method: str | None = None, path_suffix: str = "") -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.endswith(path_suffix)
            ]

    def sessions_named(self, name: str) -> list[dict]:
        with self.lock:
            return [s for s in self.sessions.values() if s.get("name") == name]

    # -------------------------------------------------------------- behaviour

    def take_fault(self, route: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(route)
            return queue.popleft() if queue else None

    def create(self, params: list[tuple[str, str]]) -> tuple[int, str]:
        values = dict(params)
        if not values.get("image"):
            return 400, "Missing parameter 'image'"
        name = values.get("name", "")
        if not name.strip():
            return 400, "Missing parameter 'name'"
        if not re.fullmatch(r"[A-Za-z0-9\-]+", name):
            return 400, "name can only contain alpha-numeric chars and '-'"
        env = [value for key, value in params if key == "env"]
        session_id = self.add_session(
            name,
            image=values["image"],
            type=values.get("type") or "headless",
            env=env,
            args=values.get("args"),
            cmd=values.get("cmd"),
        )
        with self.lock:
            self.creates += 1
        return 200, session_id + "\n"

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _now() -> str:
    # Java's OffsetDateTime.toString() drops zero seconds; keep minutes only, as Skaha may.
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _route(method: str, parts: list[str], query: dict[str, str]) -> str:
    if parts == ["availability"]:
        return f"{method} availability"
    if len(parts) < 2 or parts[0] != "v1":
        return f"{method} ?"
    rest = parts[1:]
    if rest == ["session"]:
        return f"{method} stats" if query.get("view") == "stats" else f"{method} session"
    if len(rest) == 2 and rest[0] == "session":
        view = query.get("view")
        if method == "GET" and view in ("logs", "events"):
            return f"GET {view}"
        return f"{method} session/*"
    return f"{method} {'/'.join(rest)}"


def _handler_for(fake: FakeSkaha) -> type[FakeHandler]:
    class Handler(FakeHandler):
        disable_nagle_algorithm = True  # headers and body go in two writes
        server_header = "OpenCADC/cadc-rest"

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        # ---------------------------------------------------------------- core

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query = parse_qsl(split.query, keep_blank_values=True)
            peer = _peer_name(self.connection)
            with fake.lock:
                fake.requests.append(
                    Recorded(method, split.path, query, dict(self.headers.items()), body, peer)
                )
            params = list(query)
            if self.headers.get("Content-Type", "").startswith("application/x-www-form"):
                params += parse_qsl(body.decode(), keep_blank_values=True)
            parts = [p for p in split.path.split("/") if p]
            if not parts or parts[0] != "skaha":
                return self._text(404, "not found")
            route = _route(method, parts[1:], dict(params))
            fault = fake.take_fault(route)
            if isinstance(fault, Delay):
                fake.wait(fault.seconds)
                fault = None
            if isinstance(fault, EchoCredentials):
                return self._text(401, f"rejected {self.headers.get('Authorization')}")
            sent = self.headers.get("Authorization") or ""
            if fake.accept is not None:
                if not (sent.startswith("Bearer ") and fake.accept(sent[7:])):
                    return self._text(401, "invalid or expired token")
            elif fake.token is not None and sent != f"Bearer {fake.token}":
                return self._text(401, "invalid or expired token")
            if isinstance(fault, Status):
                return self._text(fault.code, fault.body, fault.headers)
            if isinstance(fault, Malformed):
                return self.reply(200, "application/json", fault.body)
            if isinstance(fault, Redirect):
                return self.reply(fault.code, "text/plain", b"", {"Location": fault.location})
            if isinstance(fault, DropMidBody):
                return self._drop_mid_body()
            status, content_type, payload, headers = self._answer(method, parts[1:], params)
            if isinstance(fault, LoseReply):
                self._close_now()
                return None
            if isinstance(fault, Stall):
                fake.wait(fault.seconds)
            return self.reply(status, content_type, payload, headers)

        def _answer(
            self, method: str, parts: list[str], params: list[tuple[str, str]]
        ) -> tuple[int, str, bytes, dict[str, str]]:
            query = dict(params)
            plain = "text/plain"
            if parts == ["availability"]:
                xml = (
                    '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
                    "<vosi:available>true</vosi:available><vosi:note>fake skaha is up</vosi:note>"
                    "</vosi:availability>"
                )
                return 200, "text/xml", xml.encode(), {}
            rest = parts[1:]
            if rest == ["session"] and method == "GET":
                if query.get("view") == "stats":
                    return self._json(fake.stats)
                if query.get("view") == "interactive":  # Skaha 1.1.4+: type is ignored
                    query = {"status": query.get("status", "")}
                    interactive = True
                else:
                    interactive = False
                with fake.lock:
                    found = [
                        {k: v for k, v in s.items() if k not in ("env", "args", "cmd")}
                        for s in fake.sessions.values()
                        if _matches(s, query) and not (interactive and s["type"] == "headless")
                    ]
                return self._json(found)
            if rest == ["session"] and method == "POST":
                code, text = fake.create(params)
                return code, plain, text.encode(), {}
            if rest == ["session"] and method == "DELETE":
                return 400, plain, b"Cannot kill all sessions.\n", {}
            if len(rest) == 2 and rest[0] == "session":
                return self._one_session(method, rest[1], query)
            if rest == ["image"]:
                return self._json(_IMAGES)
            if rest == ["context"]:
                return self._json(_CONTEXT)
            if rest == ["repository"]:
                return self._json(["images.canfar.net"])
            return 404, plain, b"not found\n", {}

        def _one_session(
            self, method: str, session_id: str, query: dict[str, str]
        ) -> tuple[int, str, bytes, dict[str, str]]:
            plain = "text/plain"
            with fake.lock:
                session = fake.sessions.get(session_id)
            if method == "DELETE":
                with fake.lock:
                    fake.sessions.pop(session_id, None)
                return 200, plain, b"", {}
            if method == "POST":
                if query.get("action", "").lower() != "renew":
                    return 400, plain, b"unrecognized action\n", {}
                if session is None:
                    return (
                        400,
                        plain,
                        f"No active job for user with session {session_id}\n".encode(),
                        {},
                    )
                return 200, plain, b"", {}
            view = query.get("view")
            if view == "logs":
                with fake.lock:
                    fake._log_reads[session_id] += 1
                    count = fake._log_reads[session_id]
                if fake.on_log_read is not None:
                    fake.on_log_read(session_id, count)
                with fake.lock:
                    data = fake.logs.get(session_id, b"")
                if fake.honour_offset and "offset" in query:
                    start = min(int(query["offset"]), len(data))
                    return 200, plain, data[start:], {"X-Skaha-Log-Offset": str(len(data))}
                return 200, plain, data, {}
            if session is None:
                dot = "." if view == "events" else ""
                return 404, plain, f"session {session_id} not found{dot}\n".encode(), {}
            if view == "events":
                with fake.lock:
                    table = fake.events.get(session_id, "<none>\n")
                return 200, plain, table.encode(), {}
            with fake.lock:
                shown = {k: v for k, v in session.items() if k not in ("env", "args", "cmd")}
            return self._json(shown)

        # ---------------------------------------------------------------- replies

        def _json(self, data: object) -> tuple[int, str, bytes, dict[str, str]]:
            return 200, "application/json", json.dumps(data, indent=2).encode(), {}

        def _text(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
            self.reply(code, "text/plain", (text + "\n").encode() if text else b"", headers)

        def _drop_mid_body(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b'[{"id": "abcdefgh", "status": "Run')
            self.wfile.flush()
            self._close_now()

        def _close_now(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler


def _peer_name(connection: socket.socket) -> str | None:
    if not isinstance(connection, ssl.SSLSocket):
        return None
    cert = connection.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def _matches(session: dict, query: dict[str, str]) -> bool:
    for key in ("type", "status"):
        wanted = query.get(key)
        if wanted and str(session.get(key, "")).lower() != wanted.lower():
            return False
    return True


# Skaha 1.4's metrics service: capacity and allocation, per-session ceilings, no instances/gpu.
SKAHA_14_STATS = {
    "cores": {
        "requestedCPUCores": 12.0,
        "cpuCoresAvailable": 96.0,
        "maxCPUCores": {"cpuCores": 8.0, "withRam": "32Gi"},
    },
    "ram": {
        "requestedRAM": "48.5G",
        "ramAvailable": "512G",
        "maxRAM": {"ram": "32Gi", "withCPUCores": 8.0},
    },
}

# Skaha before 1.1.4 (v0 era): an instances block, and max* is the largest node.
LEGACY_STATS = {
    "instances": {"session": 3, "desktopApp": 1, "headless": 7, "total": 11},
    "cores": {
        "requestedCPUCores": 20.5,
        "cpuCoresAvailable": 64.0,
        "maxCPUCores": {"cpuCores": 32.0, "withRam": "125.8G"},
    },
    "ram": {
        "requestedRAM": "80G",
        "ramAvailable": "251.6G",
        "maxRAM": {"ram": "125.8G", "withCPUCores": 32.0},
    },
}

# What the metrics backend being down looks like (skaha-api.md §7, §10).
METRICS_DOWN = "temporarily unavailable: null"

_IMAGES = [
    {
        "id": "images.canfar.net/skaha/astroml:latest",
        "types": ["notebook", "headless"],
        "digest": "sha256:0123",
    },
    {"id": "images.canfar.net/skaha/base:1", "types": ["headless"], "digest": "sha256:4567"},
]

_CONTEXT = {
    "cores": {"default": 2, "defaultRequest": 1, "defaultLimit": 8, "options": [1, 2, 4, 8]},
    "memoryGB": {"default": 8, "defaultRequest": 4, "defaultLimit": 32, "options": [1, 2, 4, 8]},
    "gpus": {"options": [1, 2]},
    "maxInteractiveSessions": "5",
}
