"""The detached conductor process, `python -m canfar_jlab.runs.conductor_process RUN_FOLDER
[ENGINE_URL]` (started by `conductor.start_conductor`): it reconciles, and so advances, one run
until the run is over, so that a run launched without anyone watching is still conducted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..models import Run
from ..skaha import CredentialsError, SkahaError
from .actions import utc_now
from .conductor import POLL_INTERVAL, UNREACHABLE_FOR, needs_advance
from .connection import Connection
from .reconciler import LOCAL_ENGINE, needs_work, reconcile, service_of
from .sites import site_client
from .store import RunNotFound, RunStore

log = logging.getLogger(__name__)


def over(run: Run) -> bool:
    """Nothing left for the conductor: ended (logs saved), stopped or deleted."""
    if run.deleted is not None or run.stopped is not None:
        return True
    return not needs_work(run) and not needs_advance(run) and not run.reduce_pending


async def conduct(
    name: str, store: RunStore, *, interval: float = POLL_INTERVAL, engine_url: str | None = None
) -> int:
    """Reconcile (and so advance) run `name` until it is over; 0 then, 1 when its service
    cannot be reached."""
    run = store.get(name)
    async with _client_for(run, engine_url) as client:
        if service_of(client) != run.service:
            log.error("run %s lives on %s, not on %s", name, run.service, service_of(client))
            return 1
        failing_since: datetime | None = None
        while True:
            try:
                sessions = await client.list_sessions()
                await reconcile(store, sessions, client)
                failing_since = None
            except CredentialsError as error:  # e.g. the local engine was stopped
                log.error("run %s: %s; whoever looks at the run next conducts it", name, error)
                return 1
            except SkahaError as error:
                failing_since = failing_since or utc_now()
                log.warning("run %s: %s", name, error.message)
                if utc_now() - failing_since > UNREACHABLE_FOR:
                    return 1
            try:
                run = store.get(name)
            except RunNotFound:
                return 0
            if over(run):
                log.info("run %s is %s: conductor done", name, run.state)
                return 0
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def _client_for(run: Run, engine_url: str | None) -> AsyncIterator[Any]:
    """A connection to the service the run lives on (its site, the local engine, or its
    Skaha URL with the usual credentials)."""
    if run.site is not None:
        async with site_client(run.site) as client:
            yield client
        return
    if run.service == LOCAL_ENGINE:
        from ..credentials import Credentials, engine_credentials

        def the_engine(_url: str | None) -> Credentials:
            found = engine_credentials(start=False)
            if engine_url and found.base_url != engine_url:  # another engine (home) than the run's
                raise CredentialsError(f"the local engine at {engine_url} is gone")
            return found

        connection = Connection(resolve=the_engine)
    else:
        connection = Connection(run.service)
    async with connection:
        await connection.connect()
        yield connection


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print(
            "usage: python -m canfar_jlab.runs.conductor_process RUN_FOLDER [ENGINE_URL]",
            file=sys.stderr,
        )
        return 2
    folder = Path(os.path.abspath(args[0]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s conductor[%(process)d] %(message)s")
    store = RunStore(folder.parent)
    try:
        return asyncio.run(conduct(folder.name, store, engine_url=(args[1:] or [None])[0]))
    except RunNotFound as error:
        log.error("%s", error)
        return 1
    except SkahaError as error:
        log.error("cannot reach the session service: %s", error.message)
        return 1


if __name__ == "__main__":
    sys.exit(main())
