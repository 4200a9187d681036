"""The live channel: one websocket per browser tab, fed by the shared LiveHub.

Protocol in docs/rest-api.md. Everything a tab receives comes from the hub's shared watchers,
so ten tabs on one run cost the session service what one tab costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from http.client import responses
from typing import Any
from urllib.parse import urlsplit

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web, websocket

from ..live import LiveHub, LogDelta, LogEnd, Snapshot
from ..runs import session_json
from ..skaha import SkahaError

_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
# A merged log view of the largest run (256 replicas) and a few more fit under the cap.
MAX_LOG_SUBSCRIPTIONS = 1024


MAX_MESSAGE_BYTES = 4096  # a request is a few dozen bytes


def _request(message: str | bytes) -> dict[str, Any] | None:
    """A client message as a JSON object, or None for anything else (too long, not UTF-8,
    not JSON, nested; never an exception)."""
    if len(message) > MAX_MESSAGE_BYTES:
        return None
    try:
        request = json.loads(message)
    except (ValueError, RecursionError):
        return None
    return request if isinstance(request, dict) else None


def snapshot_message(snapshot: Snapshot) -> dict[str, Any]:
    """The `sessions` message: every session (tagged with its run) and every run."""
    owners = snapshot.extra.get("owners", {})
    sessions = [session_json(session, owners) for session in snapshot.sessions]
    message = {
        "type": "sessions",
        "t": snapshot.t,
        "sessions": sessions,
        "runs": snapshot.extra.get("runs", []),
    }
    if snapshot.error:
        message["error"] = snapshot.error
    return message


class LiveHandler(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """`<base_url>/canfar-jlab/live`: status, usage and log deltas pushed to the browser."""

    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:live"

    def check_origin(self, origin: str | None = None) -> bool:
        # CANFAR starts JupyterLab with allow_origin="*", which turns Jupyter's own check off;
        # a cross-site page could then open this socket with the user's cookie. So the Origin
        # must be absent (non-browser clients) or this very host, whatever allow_origin says.
        origin = origin if origin is not None else self.request.headers.get("Origin")
        if not origin:
            return True
        return urlsplit(origin).netloc.lower() == self.request.host.lower()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A plain one-line refusal (405, 403, 400). Jupyter's HTML error page would carry the
        API token of a caller who put it in the URL, and for a verb other than GET it fails
        to render at all (a traceback in the log)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = responses.get(status_code, "error")
        if isinstance(exc, web.HTTPError) and exc.log_message and not exc.args:
            message = exc.log_message[:200]
        if status_code == 405:
            self.set_header("Allow", "GET")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message + "\n")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):  # a refusal, not a fault: one line, no URL
            self.log.warning("%d %s live channel refused", value.status_code, self.request.method)
            return
        super().log_exception(typ, value, tb)

    async def pre_get(self) -> None:
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", self.auth_resource)
        )
        if not authorized:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self.check_origin():
            raise web.HTTPError(403, "cross-origin request refused")
        await self.pre_get()
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    # ----------------------------------------------------------------- the socket

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().open(*args, **kwargs)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def on_message(self, message: str | bytes) -> None:
        """One request; anything malformed gets an error message and the socket stays open."""
        request = _request(message)
        if request is None:
            self._send({"type": "error", "message": "messages must be JSON objects"})
            return
        op, topic = request.get("op"), request.get("topic")
        if not isinstance(op, str) or not isinstance(topic, str):
            self._send({"type": "error", "message": "op and topic must be strings"})
            return
        if topic == "sessions" and op == "subscribe":
            self._start("sessions", self._pump_sessions())
        elif topic == "sessions" and op == "unsubscribe":
            self._cancel("sessions")
        elif topic == "logs":
            session_id = request.get("session")
            if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
                self._send({"type": "error", "message": "logs: a session id is required"})
                return
            key = f"logs:{session_id}"
            if op == "unsubscribe":
                self._cancel(key)
                return
            offset = request.get("offset", 0)
            if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**53:
                self._send({"type": "error", "message": "logs: offset must be a byte count"})
                return
            subscribed = sum(1 for each in self._tasks if each.startswith("logs:"))
            if key not in self._tasks and subscribed >= MAX_LOG_SUBSCRIPTIONS:
                self._send({"type": "error", "message": "too many log subscriptions"})
                return
            self._cancel(key)
            self._start(key, self._pump_logs(session_id, offset))
        else:
            self._send({"type": "error", "message": f"unknown request {op[:40]!r} {topic[:40]!r}"})

    def on_close(self) -> None:
        for key in list(getattr(self, "_tasks", {})):
            self._cancel(key)

    # ----------------------------------------------------------------- pumps

    def _start(self, key: str, pump: Any) -> None:
        if key in self._tasks and not self._tasks[key].done():
            pump.close()
            return
        self._tasks[key] = asyncio.create_task(self._guard(pump), name=f"canfar-live-{key}")

    def _cancel(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def _guard(self, pump: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError, websocket.WebSocketClosedError):
            try:
                await pump
            except SkahaError as exc:
                self._send({"type": "error", "message": exc.message})

    async def _hub(self) -> LiveHub:
        backend = self.settings["canfar_jlab_backend"]
        await backend.connect()
        return backend.hub

    async def _pump_sessions(self) -> None:
        hub = await self._hub()
        first = True
        async for snapshot in hub.snapshots():
            await self.write_message(json.dumps(snapshot_message(snapshot), default=str))
            # A run's end is news only to tabs that were watching when it ended: the snapshot
            # a tab gets on subscribing may carry ends that happened before it came.
            if not first:
                for run in snapshot.extra.get("ended", []):
                    await self.write_message(json.dumps({"type": "run_ended", "run": run}))
            first = False

    async def _pump_logs(self, session_id: str, offset: int) -> None:
        hub = await self._hub()
        owners = hub.snapshot.extra.get("owners", {}) if hub.snapshot else {}
        run, replica = owners.get(session_id, (None, None))
        async for item in hub.logs(session_id, offset):
            if isinstance(item, LogDelta):
                message = {
                    "type": "log",
                    "session": session_id,
                    "run": run,
                    "replica": replica,
                    "offset": item.offset,
                    "next_offset": item.next_offset,
                    "text": item.text,
                }
            elif isinstance(item, LogEnd):
                message = {"type": "log_end", "session": session_id, "status": item.status}
            # Awaiting the write is the backpressure: a slow tab slows only its own pump.
            await self.write_message(json.dumps(message))

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(websocket.WebSocketClosedError):
            self.write_message(json.dumps(message))
