"""What every canfar-jlab handler shares: authentication, authorization, JSON and errors.

`HTTP_STATUS` is the one table from the core's errors (canfar_jlab.errors) to HTTP statuses;
every route turns a `CanfarError` into a one-line JSON error through it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from http.client import responses
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_core.paths import is_hidden
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from ..errors import (
    AuthError,
    CanfarError,
    CreateOutcomeUnknown,
    InvalidInput,
    InvalidRequest,
    LaunchRefused,
    NotFound,
    NothingToRenew,
    NothingToRerun,
    RunError,
    RunNameInUse,
    RunNotFound,
    SkahaError,
    UpstreamTimeout,
)
from ..skaha import SkahaClient

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY = 1024 * 1024  # a launch request is a few KB; parameters are bounded far below this
MAX_DEPTH = 32  # parameters nest at most 16 (models.MAX_PARAMETERS_DEPTH)
MAX_QUOTE = 200  # characters of a client's input an error message may repeat
MAX_MESSAGE = 500

# The core's errors as HTTP statuses; the most specific class listed wins. 4xx for what the
# user can fix, 502/504 for what the session service did. A refused credential is the
# service's refusal of ours, not the Jupyter login's fault: 502, never 401.
HTTP_STATUS: dict[type[CanfarError], int] = {
    InvalidInput: 400,
    InvalidRequest: 400,
    LaunchRefused: 400,
    NotFound: 404,
    RunNotFound: 404,
    RunNameInUse: 409,
    NothingToRerun: 409,
    NothingToRenew: 409,
    RunError: 409,
    AuthError: 502,
    SkahaError: 502,
    UpstreamTimeout: 504,
    CreateOutcomeUnknown: 504,
    CanfarError: 500,
}


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
        """The request body validated by `model`, or a 400 naming the fields at fault.

        Parsed defensively: the size is bounded, then the bytes must be UTF-8 JSON (Python's
        parser also refuses integers of more than 4,300 digits), nesting is bounded before the
        recursive parser could exhaust the stack, and the top level must be an object.
        """
        body = self.request.body or b"{}"
        if len(body) > MAX_BODY:
            raise web.HTTPError(413, f"the request body is larger than {MAX_BODY} bytes")
        if body.count(b"[") + body.count(b"{") > MAX_DEPTH and json_depth(body) > MAX_DEPTH:
            raise web.HTTPError(400, f"invalid JSON: nested deeper than {MAX_DEPTH} levels")
        try:
            raw = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise web.HTTPError(400, "invalid JSON: the request body is not UTF-8 JSON") from None
        if not isinstance(raw, dict):
            raise web.HTTPError(400, "invalid JSON: the request body must be a JSON object")
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise web.HTTPError(400, validation_message(exc)) from None
        except (ValueError, RecursionError) as exc:  # a validator's own refusal
            raise web.HTTPError(400, quote(str(exc))) from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A JSON error whose message is one bounded line, never a traceback."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = responses.get(status_code, "error")
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = error_text(exc)
        elif status_code >= 500 and exc is not None:
            message = "unexpected server error; see the Jupyter server's log"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "reason": None}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):  # an answer, not a fault; the message as data
            self.log.warning(
                "%d %s %s: %s",
                value.status_code,
                self.request.method,
                self.request.path,
                error_text(value),
            )
            return
        super().log_exception(typ, value, tb)

    def notebook_in_root(self, relative: str) -> Path:
        """The notebook at `relative` under the server root, or a 400/404 in one line.

        The check is on the resolved path, so `..`, absolute paths and symlinks that point out
        of the root are all refused, whatever their spelling; hidden files and folders are
        refused as Jupyter's contents manager refuses them (404 unless `allow_hidden`); a
        file system that cannot resolve the path (a symlink loop, a name too long) is a 400.
        """
        if "\\x00" in relative or "\x00" in relative:
            raise web.HTTPError(400, "notebook: not a valid path")
        if len(relative.encode()) > 4096 or any(
            len(part.encode()) > 255 for part in relative.split("/")
        ):
            raise web.HTTPError(400, "notebook: the path or a name in it is too long")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts:
            raise web.HTTPError(400, "notebook: must be a path relative to the server root")
        shown = quote(relative)
        try:
            root = Path(self.settings["server_root_dir"]).expanduser().resolve()
            resolved = (root / pure).resolve(strict=True)
            is_file = resolved.is_file()
        except FileNotFoundError:
            raise web.HTTPError(404, f"notebook: {shown} does not exist") from None
        except (OSError, RuntimeError) as exc:  # loops, names too long, no permission
            reason = getattr(exc, "strerror", None) or "cannot be resolved"
            raise web.HTTPError(400, f"notebook: {shown}: {reason}") from None
        if not resolved.is_relative_to(root):
            raise web.HTTPError(400, "notebook: must stay inside the server root")
        manager = getattr(self, "contents_manager", None)
        if not getattr(manager, "allow_hidden", False) and (
            any(part.startswith(".") for part in pure.parts) or is_hidden(str(resolved), str(root))
        ):
            raise web.HTTPError(404, f"notebook: {shown} does not exist")  # as Jupyter says
        if resolved.suffix != ".ipynb":
            raise web.HTTPError(400, "notebook: must be a .ipynb file")
        if not is_file:
            raise web.HTTPError(404, f"notebook: {shown} does not exist")
        return resolved

    async def upstream(self, work: Awaitable[T]) -> T:
        """A call of the backend (`self.backend.get_session(...)`...), its failures turned
        into one-line HTTP errors.

        The whole call, retries included, gets one deadline: a slow or dead service costs
        the browser at most that long, and other routes keep answering meanwhile.
        """
        return await self.upstream_work(work, self.backend.call_deadline)

    async def upstream_work(self, work: Awaitable[T], deadline: float | None = None) -> T:
        """Await `work` (which talks to the session service) with errors as HTTP errors.

        Work that creates sessions gets no deadline: cancelling it half-way would leave
        replicas the run does not know of. Each of its requests has its own timeout instead.
        """
        try:
            if deadline is None:
                return await work
            return await asyncio.wait_for(work, deadline)
        except CanfarError as exc:
            raise http_error(exc) from None
        except asyncio.TimeoutError:
            raise web.HTTPError(
                504, f"the session service did not answer within {deadline:g} s"
            ) from None

    async def client(self) -> SkahaClient:
        """The connected Skaha client (502 with the reason when none can be set up)."""
        return await self.upstream_work(self.backend.connect(), self.backend.call_deadline)


def http_status(exc: CanfarError) -> int:
    """The status `HTTP_STATUS` gives `exc`'s class or its nearest listed ancestor."""
    for kind in type(exc).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500


def http_error(exc: CanfarError) -> web.HTTPError:
    """`exc` as a one-line HTTP error with its status from `HTTP_STATUS`."""
    return web.HTTPError(http_status(exc), quote(str(exc), MAX_MESSAGE))


def validation_message(exc: ValidationError) -> str:
    """One line naming each field at fault: 'replicas: must be at least 1; name: ...'."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(quote(str(p), 40) for p in error.get("loc", ())) or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return quote("; ".join(parts), MAX_MESSAGE)


def quote(text: str, limit: int = MAX_QUOTE) -> str:
    """At most `limit` characters of `text` (what a client sent), for a message."""
    return text if len(text) <= limit else text[:limit] + "..."


def error_text(exc: web.HTTPError) -> str:
    """An HTTPError's message, formatted as tornado would, bounded in length."""
    message = exc.log_message or ""
    if exc.args:
        try:
            message = message % exc.args
        except (TypeError, ValueError):
            pass
    return quote(message, MAX_MESSAGE)


def json_depth(body: bytes) -> int:
    """How deep brackets nest in `body` (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
