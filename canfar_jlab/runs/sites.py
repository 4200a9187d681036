"""Where a run goes: the site it was launched on, and what the Skaha session JupyterLab runs
in tells about the defaults.

A run launched on one site of `~/.canfar/config.yaml` (several logins: CANFAR and other SRCNet
nodes running Skaha) records the site (`Run.site`); stopping, renewing, reading or deleting it
later must reach the same site even after the active login changed.

Inside a Skaha session (`$skaha_sessionid` set), that session's image is the default image of a
run: the replicas get the environment the notebook was written in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..models import Run
from ..skaha import NotFound, SkahaClient, SkahaError, open_client

log = logging.getLogger(__name__)

SESSION_ID_ENV = "skaha_sessionid"
_session_images: dict[tuple[str, str], str | None] = {}  # (service, session id) -> image


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


def own_session_id() -> str | None:
    """The id of the Skaha session this process runs in, if any."""
    return os.environ.get(SESSION_ID_ENV, "").strip() or None


async def session_image(client: SkahaClient) -> str | None:
    """The image of the Skaha session this JupyterLab runs in, read from that service once.

    None on the local engine, outside a session, or when this service does not know the
    session (another site): the caller falls back to its other defaults.
    """
    session_id = own_session_id()
    if session_id is None or client.credentials.is_local_engine:
        return None
    key = (client.base_url, session_id)
    if key not in _session_images:
        try:
            session = await client.get_session(session_id)
        except NotFound:
            _session_images[key] = None
        except SkahaError as error:  # not cached: the next launch asks again
            log.info("could not read this session's image (%s)", error.code)
            return None
        else:
            _session_images[key] = session.image or None
    return _session_images[key]
