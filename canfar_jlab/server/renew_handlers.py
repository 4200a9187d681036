"""REST `POST canfar-jlab/runs/NAME/renew` (issue 16): renew a run's live replicas."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from ..runs.renew import renew_run
from ..runs.sites import run_client
from .runs_handlers import RunsBase


class RenewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: float | None = Field(default=None, gt=0, le=24 * 366)


class RunRenewHandler(RunsBase):
    SUPPORTED_METHODS = ("POST",)

    @web.authenticated
    @authorized
    async def post(self, run_name: str) -> None:
        body = self.read_json(RenewRequest)
        run = self.run_or_404(run_name)
        client = await self.client() if run.site is None else None
        report = await self.upstream_work(self._renew(run, client, body.hours))
        self.backend.nudge()
        self.write_json(report.model_dump(mode="json"))

    async def _renew(self, run, client, hours):
        async with run_client(run, client) as there:
            return await renew_run(run, there, hours)
