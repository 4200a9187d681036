"""What every canfar-jlab handler shares: authentication, authorization, JSON and errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from ..skaha import SkahaClient, SkahaError

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger(__name__)


class CanfarHandler(ExtensionHandlerMixin, APIHandler):
    """Base for every route. Each verb also carries `@web.authenticated` then `@authorized`.

    Resource names follow jupyter_server's advice, "<extension>:<area>", so a deployment's
    Authorizer can allow reading runs without allowing launching them.
    """

    auth_resource = "canfar:config"

    @property
    def backend(self) -> Backend:
        return self.settings["canfar_jlab_backend"]

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if isinstance(payload, BaseModel):
            self.finish(payload.model_dump_json(by_alias=True))
        else:
            self.finish(json.dumps(payload, default=str))

    def read_json(self, model: type[BaseModel]) -> Any:
        """The request body validated by `model`, or a 400 naming the fields at fault."""
        try:
            raw = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError:
            raise web.HTTPError(400, "the request body is not valid JSON") from None
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise web.HTTPError(400, validation_message(exc)) from None

    async def upstream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the session service, turning its failures into one-line HTTP errors.

        The whole call, retries included, gets one deadline: a slow or dead service costs
        the browser at most that long, and other routes keep answering meanwhile.
        """
        return await self.upstream_work(
            self.backend.call(method, *args, **kwargs), self.backend.call_deadline
        )

    async def upstream_work(self, work: Awaitable[Any], deadline: float | None = None) -> Any:
        """Await `work` (which talks to the session service) with errors as HTTP errors.

        Work that creates sessions gets no deadline: cancelling it half-way would leave
        replicas the run does not know of. Each of its requests has its own timeout instead.
        """
        try:
            if deadline is None:
                return await work
            return await asyncio.wait_for(work, deadline)
        except SkahaError as exc:
            raise http_error(exc) from None
        except asyncio.TimeoutError:
            raise web.HTTPError(
                504, f"the session service did not answer within {deadline:g} s"
            ) from None

    async def client(self) -> SkahaClient:
        """The connected Skaha client (502 with the reason when none can be set up)."""
        return await self.upstream_work(self.backend.connect(), self.backend.call_deadline)


def http_error(exc: SkahaError) -> web.HTTPError:
    """400/404/409 for what the user can fix, 502/504 for what the service did."""
    status = exc.http_status
    if status == 401 or status == 403:
        status = 502  # the service refused our credential: not the Jupyter login's fault
    return web.HTTPError(status, exc.message)


def validation_message(exc: ValidationError) -> str:
    """One line naming each field at fault: 'replicas: must be at least 1; name: ...'."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)
