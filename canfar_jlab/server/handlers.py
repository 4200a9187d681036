"""REST handlers under <base_url>/canfar-jlab/ (docs/rest-api.md, docs/openapi.yaml)."""

from __future__ import annotations

import asyncio
import re

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ..credentials import config_sites
from ..errors import SkahaError
from ..statuses import SESSION_ENDED
from ..version import __version__
from .base import CanfarHandler, http_error
from .live import snapshot_message

ROUTE_PREFIX = "canfar-jlab"
SESSION_ID = r"(?P<session_id>[A-Za-z0-9][A-Za-z0-9-]{0,63})"


class ConfigHandler(CanfarHandler):
    """Version handshake and which session service this server talks to (never a credential)."""

    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:config"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            await self.backend.connect()
        except Exception:  # noqa: S110 - the summary carries the one-line reason
            pass
        # `sites`: the servers of ~/.canfar/config.yaml a run may choose (issue 16).
        sites = await asyncio.to_thread(config_sites)
        self.write_json({"version": __version__, "backend": self.backend.summary(), "sites": sites})


class SessionsHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:sessions"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        # Many tabs asking at once share one upstream list (single flight, 1 s cache).
        await self.client()
        hub = self.backend.hub
        snapshot = await self.upstream_work(hub.recent(1.0), self.backend.call_deadline)
        if isinstance(snapshot.failure, SkahaError):
            raise http_error(snapshot.failure)
        if snapshot.error is not None:
            raise web.HTTPError(502, snapshot.error)
        message = snapshot_message(snapshot)
        sessions = message["sessions"]
        if self.get_argument("active", "") in {"1", "true"}:
            sessions = [s for s in sessions if s["status"] not in SESSION_ENDED]
        self.write_json({"sessions": sessions})


class SessionHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET", "DELETE")
    auth_resource = "canfar:sessions"

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        session = await self.upstream(self.backend.get_session(session_id))
        self.write_json(session.model_dump(mode="json", by_alias=True))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        await self.upstream(self.backend.delete_session(session_id))
        self.backend.nudge()
        self.write_json({"deleted": [session_id]})


class SessionLogsHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:logs"

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        raw = self.get_argument("offset", "0")
        if not re.fullmatch(r"\d{1,15}", raw):
            raise web.HTTPError(400, "offset: must be a whole number of bytes")
        offset = int(raw)
        chunk = await self.upstream(self.backend.logs(session_id, offset or None))
        self.write_json({"text": chunk.text, "offset": offset, "next_offset": chunk.next_offset})


class SessionEventsHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:sessions"

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        self.write_json({"text": await self.upstream(self.backend.events(session_id))})


class ImagesHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:images"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        images = await self.upstream(self.backend.images())
        note = ""
        if self.backend.credentials is not None and self.backend.credentials.is_local_engine:
            note = (
                "The local engine has no container runtime: replicas run in its own Python "
                "environment, and the image is only recorded."
            )
        self.write_json(
            {"images": [i.model_dump(mode="json", by_alias=True) for i in images], "note": note}
        )


class ContextHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:images"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        context = await self.upstream(self.backend.context())
        self.write_json(context.model_dump(mode="json", by_alias=True))


class StatsHandler(CanfarHandler):
    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:sessions"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        # A 503 from Skaha comes back as {"available": false, "warning": ...}: not an error.
        load = await self.upstream(self.backend.platform_load())
        self.write_json(load.to_json())


def route_table() -> list[tuple[str, type]]:
    """Every route the extension serves, relative to base_url (ExtensionApp prepends it).

    The auth test enumerates this very list, so a route added here is covered there.
    """
    from .live import LiveHandler
    from .renew_handlers import RunRenewHandler
    from .runs_handlers import (
        RUN_NAME,
        RunHandler,
        RunPreviewHandler,
        RunRerunHandler,
        RunsHandler,
        RunStopHandler,
    )

    def path(*parts: str) -> str:
        return url_path_join("/", ROUTE_PREFIX, *parts)

    return [
        (path("config"), ConfigHandler),
        (path("runs"), RunsHandler),
        (path("runs", "preview"), RunPreviewHandler),
        (path("runs", RUN_NAME), RunHandler),
        (path("runs", RUN_NAME, "rerun"), RunRerunHandler),
        (path("runs", RUN_NAME, "stop"), RunStopHandler),
        (path("runs", RUN_NAME, "renew"), RunRenewHandler),
        (path("sessions"), SessionsHandler),
        (path("sessions", SESSION_ID), SessionHandler),
        (path("sessions", SESSION_ID, "logs"), SessionLogsHandler),
        (path("sessions", SESSION_ID, "events"), SessionEventsHandler),
        (path("images"), ImagesHandler),
        (path("context"), ContextHandler),
        (path("stats"), StatsHandler),
        (path("live"), LiveHandler),
    ]
