"""Which session service a run's later actions talk to: the site it was launched on.

A run launched on one site of `~/.canfar/config.yaml` (several logins: CANFAR and other SRCNet
nodes running Skaha) records the site (`Run.site`); stopping, renewing, reading or deleting it
later must reach the same site even after the active login changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..models import Run
from ..skaha import SkahaClient, open_client


def same_site(client: SkahaClient, site: str | None) -> bool:
    return site is None or client.credentials.site == site


@asynccontextmanager
async def site_client(
    site: str | None, current: SkahaClient | None = None
) -> AsyncIterator[SkahaClient]:
    """`current` when it already talks to `site` (any client will do for no site), else a
    client opened for `site` and closed afterwards."""
    if current is not None and same_site(current, site):
        yield current
        return
    client = await open_client(site=site)
    async with client:
        yield client


def run_client(run: Run, current: SkahaClient | None = None):
    """`async with run_client(run, client) as c`: a client for the site `run` was launched on."""
    return site_client(run.site, current)
