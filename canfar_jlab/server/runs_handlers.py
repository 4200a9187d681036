"""Runs over REST: launch a notebook from disk, preview, list, inspect, stop, re-run, delete.

Every route only parses and renders: the work is the run service's (canfar_jlab.runs), the
same the CLI and the magic call. Wherever a run is named, a replica name (`RUN-3`) or a
session id of one of its replicas names it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict
from tornado import web

from ..errors import RunNotFound
from ..models import LaunchRequest
from ..runs import Target
from .base import CanfarHandler, http_error

RUN_NAME = r"(?P<run_name>[a-z0-9][a-z0-9-]{0,62})"


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failed_only: bool = True
    failed: bool = True
    source: Literal["snapshot", "notebook"] = "snapshot"
    more_memory: bool = False  # issue 17: the out-of-memory replicas, with twice their peak


class RunsBase(CanfarHandler):
    auth_resource = "canfar:runs"

    def launch_request(self) -> LaunchRequest:
        """The body as a LaunchRequest whose notebook is an absolute path inside root_dir."""
        request = self.read_json(LaunchRequest)
        notebook = self.confined_notebook(request.notebook)
        update = {"notebook": str(notebook)}
        if request.reduce_notebook:  # issue 17: confined like the notebook itself
            update["reduce_notebook"] = str(self.confined_notebook(request.reduce_notebook))
        return request.model_copy(update=update)

    def confined_notebook(self, relative: str) -> Path:
        """The notebook at `relative` under the server root (base.py: 400/404 otherwise)."""
        return self.notebook_in_root(relative)

    def run_or_404(self, name: str):
        try:
            return self.backend.store.get(name)
        except RunNotFound as exc:
            raise http_error(exc) from None

    async def fresh(self) -> None:
        """Bring the runs up to date with the service (the live hub's shared list, at most
        1 s old: adopting sessions by name, recording ends, archiving logs). Without a
        service the runs are shown as recorded."""
        try:
            await self.upstream_work(self.backend.connect(), self.backend.call_deadline)
            hub = self.backend.hub
            if hub is not None:
                await self.upstream_work(hub.recent(1.0), self.backend.call_deadline)
        except web.HTTPError:
            pass

    async def target(self, name: str) -> Target:
        """The run (or one replica of it) `name` stands for; 404 with one line otherwise."""
        store = self.backend.store
        if store.exists(name):
            return Target(run=store.get(name))
        return await self.runs_call(self.backend.service.resolve(name, sessions=False))

    async def runs_call(self, coroutine):
        """A runs operation with its errors as one-line HTTP errors."""
        try:
            await self.client()  # connected (502 with the reason if not), the live hub started
        except BaseException:
            coroutine.close()
            raise
        return await self.upstream_work(coroutine)  # errors: base.HTTP_STATUS


class RunsHandler(RunsBase):
    SUPPORTED_METHODS = ("GET", "POST")

    @web.authenticated
    @authorized
    async def get(self) -> None:
        runs = await self.upstream_work(self._list())
        self.write_json({"runs": runs})

    async def _list(self) -> list[dict]:
        await self.fresh()
        # A deleted run leaves the list; its folder, logs and outputs stay on disk.
        runs = self.backend.store.list()
        return [self.backend.run_json(run) for run in runs if run.deleted is None]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.launch_request()
        run = await self.runs_call(self.backend.service.launch(request))
        self.backend.nudge()
        self.write_json(self.backend.run_json(run), status=201)


class RunPreviewHandler(RunsBase):
    SUPPORTED_METHODS = ("POST",)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.launch_request()
        result = await self.runs_call(self.backend.service.preview(request))
        self.write_json(result.model_dump(mode="json"))


class RunHandler(RunsBase):
    SUPPORTED_METHODS = ("GET", "DELETE")

    @web.authenticated
    @authorized
    async def get(self, run_name: str) -> None:
        await self.fresh()
        target = await self.target(run_name)
        assert target.run is not None
        self.write_json(self.backend.run_json(self.backend.store.get(target.run.name)))

    @web.authenticated
    @authorized
    async def delete(self, run_name: str) -> None:
        target = await self.target(run_name)
        assert target.run is not None
        service = self.backend.service
        deleted = await self.runs_call(service.delete(target.run.name, target.indices))
        self.backend.nudge()
        self.write_json({"deleted": deleted})


class RunStopHandler(RunsBase):
    """POST runs/NAME/stop: end the run's replicas, keep its record and logs."""

    SUPPORTED_METHODS = ("POST",)

    @web.authenticated
    @authorized
    async def post(self, run_name: str) -> None:
        target = await self.target(run_name)
        assert target.run is not None
        run = await self.runs_call(self.backend.service.stop(target.run.name, target.indices))
        self.backend.nudge()
        self.write_json(self.backend.run_json(run))


class RunRerunHandler(RunsBase):
    SUPPORTED_METHODS = ("POST",)

    @web.authenticated
    @authorized
    async def post(self, run_name: str) -> None:
        body = self.read_json(RerunRequest)
        if not body.failed_only or not body.failed:
            raise web.HTTPError(400, "failed: only re-running failed replicas is supported")
        target = await self.target(run_name)
        assert target.run is not None
        service = self.backend.service
        run = await self.runs_call(
            service.rerun(target.run.name, source=body.source, more_memory=body.more_memory)
        )
        self.backend.nudge()
        self.write_json(self.backend.run_json(run))
