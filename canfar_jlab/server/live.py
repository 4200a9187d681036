"""The live channel: one websocket per browser tab, fed by the shared LiveHub.

Protocol in docs/rest-api.md. Everything a tab receives comes from the hub's shared watchers,
so ten tabs on one run cost the session service what one tab costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SessionsState:
    """What a `sessions` message shows, keyed for comparison: sessions by id, runs by name."""

    sessions: dict[str, dict[str, Any]]
    runs: dict[str, dict[str, Any]]


_last_state: tuple[Snapshot, SessionsState] | None = None


def sessions_state(snapshot: Snapshot) -> SessionsState:
    """The snapshot as JSON-ready dicts, built once per snapshot for every tab."""
    global _last_state
    if _last_state is not None and _last_state[0] is snapshot:
        return _last_state[1]
    owners = snapshot.extra.get("owners", {})
    state = SessionsState(
        {session.id: session_json(session, owners) for session in snapshot.sessions},
        {run["name"]: run for run in snapshot.extra.get("runs", [])},
    )
    _last_state = (snapshot, state)
    return state


def snapshot_message(snapshot: Snapshot, state: SessionsState | None = None) -> dict[str, Any]:
    """The `sessions` message: every session (tagged with its run) and every run."""
    state = state or sessions_state(snapshot)
    message = {
        "type": "sessions",
        "t": snapshot.t,
        "sessions": list(state.sessions.values()),
        "runs": list(state.runs.values()),
    }
    if snapshot.error:
        message["error"] = snapshot.error
    return message


def delta_message(
    before: SessionsState, after: SessionsState, snapshot: Snapshot
) -> dict[str, Any]:
    """The `sessions_delta` message: only what changed since `before` (what this tab was sent).

    - `sessions`: a session new to the tab whole; a known one as `id` plus its changed fields
      (a field that disappeared comes as null).
    - `removed`: ids of sessions no longer listed.
    - `runs`: a run new to the tab whole; a known one as `name` plus its changed fields, its
      changed replicas in `replica_changes` (each `index` plus changed fields, or whole if new).
    - `runs_removed`: names of runs no longer listed.
    - `error`: the service's error now, or null.
    """
    sessions = [
        change
        for sid, session in after.sessions.items()
        if (change := _changes(before.sessions.get(sid), session, "id")) is not None
    ]
    runs = []
    for name, run in after.runs.items():
        old = before.runs.get(name)
        if old is None:
            runs.append(run)
            continue
        change = _changes(_without_replicas(old), _without_replicas(run), "name") or {"name": name}
        old_replicas = {r.get("index"): r for r in old.get("replicas", [])}
        replicas = []
        for replica in run.get("replicas", []):
            previous = old_replicas.get(replica.get("index"))
            if (replica_change := _changes(previous, replica, "index")) is not None:
                replicas.append(replica_change)
        if replicas:
            change["replica_changes"] = replicas
        if len(change) > 1:
            runs.append(change)
    return {
        "type": "sessions_delta",
        "t": snapshot.t,
        "sessions": sessions,
        "removed": [sid for sid in before.sessions if sid not in after.sessions],
        "runs": runs,
        "runs_removed": [name for name in before.runs if name not in after.runs],
        "error": snapshot.error,
    }


def _changes(old: dict[str, Any] | None, new: dict[str, Any], key: str) -> dict[str, Any] | None:
    """`new` whole if `old` is None; else `key` and the fields that differ; None if none do."""
    if old is None:
        return new
    if old == new:
        return None
    change = {k: v for k, v in new.items() if k not in old or old[k] != v}
    change.update({k: None for k in old if k not in new})
    change[key] = new.get(key)
    return change


def _without_replicas(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "replicas"}


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
            self._start("sessions", self._pump_sessions(request.get("deltas") is True))
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
            if op == "visible":  # the tab now shows (or hides) this log
                self._set_visible(session_id, request.get("visible") is not False)
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
            visible = request.get("visible") is not False
            self._start(key, self._pump_logs(session_id, offset, visible))
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

    async def _pump_sessions(self, deltas: bool = False) -> None:
        """Every snapshot whole, or (`deltas`) the first whole and then only what changed."""
        hub = await self._hub()
        first = True
        sent: SessionsState | None = None
        async for snapshot in hub.snapshots():
            state = sessions_state(snapshot)
            if deltas and sent is not None:
                message = delta_message(sent, state, snapshot)
            else:
                message = snapshot_message(snapshot, state)
            sent = state
            await self.write_message(json.dumps(message, default=str))
            # A run's end is news only to tabs that were watching when it ended: the snapshot
            # a tab gets on subscribing may carry ends that happened before it came.
            if not first:
                for run in snapshot.extra.get("ended", []):
                    await self.write_message(json.dumps({"type": "run_ended", "run": run}))
            first = False

    def _set_visible(self, session_id: str, visible: bool) -> None:
        backend = self.settings["canfar_jlab_backend"]
        if backend.hub is not None:
            backend.hub.set_visible(session_id, self, visible)

    async def _pump_logs(self, session_id: str, offset: int, visible: bool = True) -> None:
        hub = await self._hub()
        owners = hub.snapshot.extra.get("owners", {}) if hub.snapshot else {}
        run, replica = owners.get(session_id, (None, None))
        async for item in hub.logs(session_id, offset, viewer=self, visible=visible):
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
