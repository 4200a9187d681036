"""Runs over REST: launch a notebook from disk, list, inspect, re-run failed, delete."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict
from tornado import web

from ..models import LaunchRequest
from ..runs import (
    LaunchRefused,
    NothingToRerun,
    RunNameInUse,
    RunNotFound,
    delete_run,
    launch,
    preview,
    rerun_failed,
)
from .base import CanfarHandler

RUN_NAME = r"(?P<run_name>[a-z0-9][a-z0-9-]{0,62})"


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failed_only: bool = True


class RunsBase(CanfarHandler):
    auth_resource = "canfar:runs"

    def launch_request(self) -> LaunchRequest:
        """The body as a LaunchRequest whose notebook is an absolute path inside root_dir."""
        request = self.read_json(LaunchRequest)
        notebook = self.confined_notebook(request.notebook)
        return request.model_copy(update={"notebook": str(notebook)})

    def confined_notebook(self, relative: str) -> Path:
        """The notebook at `relative` under the server root (base.py: 400/404 otherwise)."""
        return self.notebook_in_root(relative)

    def run_or_404(self, name: str):
        try:
            return self.backend.store.get(name)
        except RunNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None

    async def runs_call(self, coroutine):
        """A runs operation with its errors as one-line HTTP errors."""
        try:
            return await self.upstream_work(coroutine)
        except LaunchRefused as exc:
            raise web.HTTPError(400, str(exc)) from None
        except RunNameInUse as exc:
            raise web.HTTPError(409, str(exc)) from None
        except NothingToRerun as exc:
            raise web.HTTPError(409, str(exc)) from None
        except RunNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None


class RunsHandler(RunsBase):
    SUPPORTED_METHODS = ("GET", "POST")

    @web.authenticated
    @authorized
    async def get(self) -> None:
        runs = await self.upstream_work(self._list())
        self.write_json({"runs": runs})

    async def _list(self) -> list[dict]:
        # A deleted run leaves the list; its folder, logs and outputs stay on disk.
        runs = self.backend.store.list()
        return [self.backend.run_json(run) for run in runs if run.deleted is None]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.launch_request()
        client = await self.client()
        run = await self.runs_call(launch(request, client, self.backend.store))
        self.backend.nudge()
        self.write_json(self.backend.run_json(run), status=201)


class RunPreviewHandler(RunsBase):
    SUPPORTED_METHODS = ("POST",)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.launch_request()
        client = await self.client()
        result = await self.runs_call(preview(request, self.backend.store, client))
        self.write_json(result.model_dump(mode="json"))


class RunHandler(RunsBase):
    SUPPORTED_METHODS = ("GET", "DELETE")

    @web.authenticated
    @authorized
    async def get(self, run_name: str) -> None:
        self.write_json(self.backend.run_json(self.run_or_404(run_name)))

    @web.authenticated
    @authorized
    async def delete(self, run_name: str) -> None:
        self.run_or_404(run_name)
        client = await self.client()
        deleted = await self.runs_call(delete_run(run_name, client, self.backend.store))
        self.backend.nudge()
        self.write_json({"deleted": deleted})


class RunRerunHandler(RunsBase):
    SUPPORTED_METHODS = ("POST",)

    @web.authenticated
    @authorized
    async def post(self, run_name: str) -> None:
        body = self.read_json(RerunRequest)
        if not body.failed_only:
            raise web.HTTPError(400, "failed_only: only re-running failed replicas is supported")
        self.run_or_404(run_name)
        client = await self.client()
        run = await self.runs_call(rerun_failed(run_name, client, self.backend.store))
        self.backend.nudge()
        self.write_json(self.backend.run_json(run))
