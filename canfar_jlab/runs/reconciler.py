"""Keeping run.json in step with the session service.

`reconcile` is called with every session of one listing (the server extension's poll, the
CLI's `--follow` loop, `ps`): it records each replica's status, saves the log of each replica
that has ended into the run folder (once), notices sessions the service has forgotten, and
says which runs have just ended. It only touches runs of the service the client speaks to,
and only writes a run.json when something in it changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..models import Replica, ReplicaStatus, Run, Session
from ..skaha import NotFound, SkahaClient, SkahaError
from ..statuses import SESSION_ENDED, TIMED_OUT
from . import lease
from .adoption import INTERRUPTED, adopt_by_name, awaiting_adoption, may_adopt
from .archive import archive_log
from .conductor import advance, needs_advance, retry_pending
from .reports import facts, killed, oom_error, oom_line, report_for
from .store import RunNotFound, RunStore

log = logging.getLogger(__name__)

# A replica still without a session this long after its create was sent: that launch died.
INTERRUPTED_AFTER = timedelta(minutes=10)
# Its launcher is gone: on Skaha, wait this long for a lagging listing before NotCreated.
LISTING_LAG = timedelta(seconds=30)
LOCAL_ENGINE = "local-engine"
# A run seen for the first time already ended is announced if it ended this recently.
RECENT_END = timedelta(minutes=1)
_TERMINAL = frozenset(ReplicaStatus(value) for value in (*SESSION_ENDED, TIMED_OUT))


def service_of(client: SkahaClient) -> str:
    """Which service a run's sessions live in: `local-engine` (whatever port it has today) or
    the Skaha base URL."""
    return LOCAL_ENGINE if client.credentials.is_local_engine else client.base_url


@dataclass
class Reconciled:
    """`runs`: every run in the store (newest first); `owners`: session id -> (run name,
    replica index) for this service's runs; `ended`: runs that ended since the last call on
    this store (each reported once)."""

    runs: list[Run]
    owners: dict[str, tuple[str, int]] = field(default_factory=dict)
    ended: list[Run] = field(default_factory=list)


async def reconcile(store: RunStore, sessions: list[Session], client: SkahaClient) -> Reconciled:
    """Bring every run of `client`'s service up to date with `sessions` (one full listing)."""
    service = service_of(client)
    listed = {session.id: session for session in sessions}
    runs = []
    for run in store.list():
        if run.service == service and (needs_work(run) or may_adopt(run)):
            changes = await _observe(run, listed, client)
            if changes:
                try:
                    run = store.update(run.name, lambda current, c=changes: _apply(current, c))
                except RunNotFound:
                    continue  # deleted from disk meanwhile
        runs.append(run)
    # Issue 17: retries, caps, pilots, and the reduce step once every replica succeeded.
    runs = [await _conduct(run, client, store) if run.service == service else run for run in runs]
    owners = {
        session_id: (run.name, replica.index)
        for run in runs
        if run.service == service
        for replica in run.steps
        for session_id in (replica.session_id, *(a.session_id for a in replica.attempts))
        if session_id
    }
    return Reconciled(runs=runs, owners=owners, ended=_newly_ended(store, runs))


async def _conduct(run: Run, client: SkahaClient, store: RunStore) -> Run:
    """Issue 17: a run with retries, a timeout, a cap, a pilot or a reduce step is moved on
    by whoever reconciles it."""

    if not needs_advance(run):
        return run
    try:
        return await advance(run, client, store)
    except RunNotFound:
        return run
    except SkahaError as error:  # the next reconcile tries again
        log.info("cannot advance run %s now: %s", run.name, error.message)
        return store.get(run.name)


def needs_work(run: Run) -> bool:
    """True while a replica may still change or has a log still to be saved, or the run's
    reduce step is still to come."""
    return run.reduce_pending or any(_replica_needs_work(replica) for replica in run.steps)


def busy(store: RunStore, client: SkahaClient | None = None) -> bool:
    """Any run whose replicas have not all ended or whose logs are not all saved: the server
    keeps polling for those even when nobody is looking. With `client`, only runs of its
    service count (a run on CANFAR cannot progress through the local engine)."""
    service = service_of(client) if client is not None else None
    return any(needs_work(run) for run in store.list() if service is None or run.service == service)


def _replica_needs_work(replica: Replica) -> bool:
    if not replica.is_ended:
        return True
    if replica.session_id is None or replica.log_lost:
        return False
    return replica.log is None or replica.log_partial


async def _observe(run: Run, listed: dict[str, Session], client: SkahaClient) -> dict[Any, Any]:
    """What changed for each replica, as {index: {field: value}} including the session id the
    observation is about (so a replica re-run meanwhile is not overwritten)."""
    now = datetime.now(timezone.utc)
    held = lease.is_held(run.launcher) if run.launcher else False
    changes: dict[Any, Any] = {}
    for replica in run.steps:  # the replicas, and the reduce step once it exists
        update: dict[str, Any] = {}
        session_id = replica.session_id
        if replica.status is ReplicaStatus.WAITING:
            continue  # held back by the run (issue 17): no session to observe yet
        if awaiting_adoption(replica):
            found = adopt_by_name(run, replica, listed)
            if found is not None:
                reset = {"status": ReplicaStatus.PENDING, "error": None, "ended": None}
                adopted = replica.model_copy(update={"session_id": found.id, **reset})
                update = {"adopt": found.id, **reset}
                update.update(await _observe_session(run, adopted, found, client, now))
            elif replica.status is ReplicaStatus.PENDING:
                submitted = replica.submitted or run.created
                waited = now - submitted
                gone = held is False and (run.service == LOCAL_ENGINE or waited > LISTING_LAG)
                if gone or waited > INTERRUPTED_AFTER:
                    update = {
                        "status": ReplicaStatus.NOT_CREATED,
                        "error": INTERRUPTED,
                        "ended": now,
                    }
        elif _replica_needs_work(replica):
            assert session_id is not None
            update = await _observe_session(run, replica, listed.get(session_id), client, now)
        if update:
            changes[replica.index] = {"session_id": session_id, **update}
    if run.launcher and held is False:
        changes["launcher"] = None
    return changes


async def _observe_session(
    run: Run, replica: Replica, session: Session | None, client: SkahaClient, now: datetime
) -> dict[str, Any]:
    assert replica.session_id is not None
    folder = Path(run.folder)
    update: dict[str, Any] = {}
    if session is None:  # not in the listing: confirm before believing it is gone
        try:
            session = await client.get_session(replica.session_id)
        except NotFound:
            return _gone(run, replica, client, now)
        except SkahaError:
            return {}
    status = ReplicaStatus.of(session.status)
    if not replica.is_ended and status is not replica.status:
        update["status"] = status
    if session.start_time is not None and session.start_time != replica.started:
        update["started"] = session.start_time
    finished = status in _TERMINAL
    report = report_for(folder, replica)
    if report is not None:
        update.update(facts(folder, replica, report, replica.ram or run.spec.ram))
        if finished and not report.finished:
            update.update(killed(replica, report, replica.ram or run.spec.ram))
    elif status is ReplicaStatus.PENDING and getattr(session, "status_message", None):
        update["reason"] = session.status_message  # type: ignore[attr-defined]
    ended = replica.is_ended or finished or update.get("status") in _TERMINAL
    if ended and replica.ended is None and update.get("ended") is None:
        update["ended"] = now
    # The log is archived once the session itself has ended (a replica whose report says it
    # finished may still be writing its last lines).
    if (finished or replica.is_ended) and (replica.log is None or replica.log_partial):
        saved = await archive_log(client, replica.session_id, folder, replica.index)
        if saved is not None:
            update.update(log=saved, log_partial=False)
            final = update.get("status", replica.status)
            line = _failure_line(folder / saved) if final is ReplicaStatus.FAILED else None
            killer = oom_line(line) if final is ReplicaStatus.FAILED else None
            if final is ReplicaStatus.FAILED and (report is None or not report.finished):
                killer = killer or await _oom_event(client, replica.session_id)
            if killer:  # the service says it killed it for its memory: beats a guess
                update.update(error=oom_error(killer), oom=True)
                line = None
            if line and update.get("error", replica.error) is None:  # line: only when Failed
                update["error"] = line
    return update


async def _oom_event(client: SkahaClient, session_id: str) -> str | None:
    """The event saying the service killed the session for its memory (Kubernetes'
    OOMKilled, exit code 137), asked once for a replica killed from outside."""
    try:
        return oom_line(await client.events(session_id))
    except SkahaError:
        return None


def _gone(run: Run, replica: Replica, client: SkahaClient, now: datetime) -> dict[str, Any]:
    """The service no longer knows the session (Skaha forgets finished ones after an hour;
    a session deleted from outside). The replica's own report, if any, still says how it
    ended."""
    update: dict[str, Any] = {"log_lost": replica.log is None or replica.log_partial}
    folder = Path(run.folder)
    report = report_for(folder, replica)
    if report is not None:
        update.update(facts(folder, replica, report, replica.ram or run.spec.ram))
        if not report.finished and not replica.is_ended:
            update.update(killed(replica, report, replica.ram or run.spec.ram))
        return update
    if not replica.is_ended:
        update.update(
            status=ReplicaStatus.UNKNOWN,
            ended=now,
            error=(
                f"its session is gone from {client.credentials.service_name} "
                "before it was seen to end"
            ),
        )
    return update


def _apply(run: Run, changes: dict[Any, Any]) -> None:
    if "launcher" in changes:
        if run.launcher and lease.is_held(run.launcher) is False:
            run.launcher = None
    for index, update in changes.items():
        if index == "launcher" or (index == 0 and run.reduce is None):
            continue
        replica = run.replica(index)
        if replica.session_id != update["session_id"]:
            continue  # re-run or recorded by someone else meanwhile
        adopt = update.get("adopt")
        if adopt is not None:
            if not awaiting_adoption(replica):
                continue
            replica.session_id = adopt
        elif update.get("status") is ReplicaStatus.NOT_CREATED and not awaiting_adoption(replica):
            continue
        if update.get("status") is not None and replica.is_ended and adopt is None:
            final = {"status", "error", "ended", "exit_code", "oom"}
            if replica.exit_code is not None or update.get("exit_code") is None:
                update = {k: v for k, v in update.items() if k not in final}
        for name, value in update.items():
            if name not in ("session_id", "adopt"):
                setattr(replica, name, value)


def _failure_line(path: Path) -> str | None:
    """The line that says why a replica failed: the runner's summary, else the last line."""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, 2)
            stream.seek(max(0, stream.tell() - 16384))
            lines = stream.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    lines = [line.strip() for line in lines if line.strip()]
    summary = [line for line in lines if line.startswith("canfar-jlab: stopped at")]
    chosen = summary[-1] if summary else (lines[-1] if lines else None)
    return chosen[:300] if chosen else None


def _newly_ended(store: RunStore, runs: list[Run]) -> list[Run]:

    states = {run.name: "active" if retry_pending(run) else run.state for run in runs}
    previous, store.seen_states = store.seen_states, states
    if previous is None:
        return []  # the first look: what ended before it is not news
    now = datetime.now(timezone.utc)
    ended = []
    for run in runs:
        if states[run.name] == "active":
            continue
        before = previous.get(run.name)
        if before == "active":
            ended.append(run)
        elif before is None:
            last = max((r.ended for r in run.replicas if r.ended), default=None)
            if last is not None and now - last < RECENT_END:
                ended.append(run)
    return ended


def session_json(session: Session, owners: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """A session as Skaha's JSON, plus `run` and `replica` when a run owns it (`owners` as
    `Reconciled.owners` gives it): how every front door shows sessions."""
    data = session.model_dump(mode="json", by_alias=True, exclude_none=True)
    owner = owners.get(session.id)
    if owner is not None:
        data["run"], data["replica"] = owner
    return data
