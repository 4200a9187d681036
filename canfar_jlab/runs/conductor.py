"""Conducting a run (issue 17): retries, the timeout backstop, the --max-running cap, the pilot
and the reduce step.

Skaha creates a session and forgets it; it never retries one, caps a user's sessions or sizes
them. A run whose spec asks for any of that is moved on by `advance(run, client, store)`:

- a replica that ended Failed (not stopped or deleted by the user, not out of memory, not
  TimedOut) waits `retry_delay(k)` (2 s, 4 s, 8 s ... at most 60 s) as Waiting, then is created
  again with the same REPLICA_ID and name; the failed attempt (its archived log included) is
  kept in `attempts` with why="retry";
- a replica Running longer than the timeout plus a grace (the runner itself ends the notebook at
  the timeout: this is the backstop) is stopped, its log archived first, and recorded TimedOut;
- at most `max_running` replicas of the run are created and not ended; the rest wait in the
  run (Waiting, with the reason), never Pending on the platform;
- with a pilot, replica 1 runs alone; when it completed, the others are created with the cores
  and RAM its peaks call for (runs/sizing.py) unless the user gave them; when it failed (after
  its retries), nothing else starts;
- when every replica completed and the run has a reduce step, it is started (runs/reduce.py).

Who calls it: `reconcile` (so every door that brings runs up to date also conducts them: the
server's polling, `follow`, `ps`, a run's GET), and a detached conductor process per run,
`python -m canfar_jlab.runs.conductor_process RUN_FOLDER` (runs/conductor_process.py), that
`launch` starts so that a run launched from the CLI without --follow or from the magic is
conducted while nobody watches. The state changes are read-modify-writes of run.json
(RunStore's lock); creating and stopping sessions happen under an exclusive lock on the run
folder's `.conductor.lock`, taken without waiting: whoever holds it does that step, the others
skip it, so no replica is ever created twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..models import Context, Replica, ReplicaStatus, Run, RunSpec
from ..skaha import NotFound, SkahaClient
from . import lease
from .actions import (
    DELETED_BY_USER,
    STOPPED_BY_USER,
    _clear,
    _push_attempt,
    create_missing,
    stop_run,
    utc_now,
)
from .reduce import reduce_due, start_reduce
from .sizing import TooLarge, cores_for, ram_for
from .store import LOGS_DIR, RunNotFound, RunStore

log = logging.getLogger(__name__)

RETRY_FIRST = 2.0  # seconds before the first retry; doubled for each next one
RETRY_MAX = 60.0
TIMEOUT_GRACE = timedelta(seconds=30)  # the runner's own timeout comes first
PILOT_RAM_FACTOR = 1.5
LOCK_FILE = ".conductor.lock"
CONDUCTOR_LOG = f"{LOGS_DIR}/conductor.log"
WAITING_PILOT = "waiting for the pilot"
PILOT_FAILED = "not started: the pilot failed"
POLL_INTERVAL = 1.0
# The conductor process gives up when the service cannot be listed for this long.
UNREACHABLE_FOR = timedelta(minutes=10)


# ------------------------------------------------------------------ durations


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`30s`, `90m`, `2h`, `1d` or plain seconds, as whole seconds (ValueError otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 90m, 2h, 1d, 3600)")
    seconds = round(float(match[1]) * _UNITS[match[2].lower()])
    if seconds < 1:
        raise ValueError(f"{text!r} is shorter than a second")
    return seconds


def duration_text(seconds: int) -> str:
    """The shortest exact way to write `seconds`: 2h, 90m, 30s, 1d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def retry_delay(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1-based): 2, 4, 8 ... at most 60."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** (attempt - 1))


# ------------------------------------------------------------------ what a run needs


def conducts(spec: RunSpec) -> bool:
    """Whether runs of this spec need a conductor at all."""
    return bool(spec.retries or spec.timeout_seconds or spec.max_running or spec.pilot) or bool(
        spec.reduce
    )


def needs_advance(run: Run) -> bool:
    """A run that `advance` may still change."""
    if run.deleted is not None or run.stopped is not None or not conducts(run.spec):
        return False
    return run.state == "active" or retry_pending(run)


def retry_pending(run: Run) -> bool:
    """A replica ended Failed that will be tried again (the run is not over)."""
    return any(_will_retry(run, replica) for replica in run.replicas)


def first_wave(spec: RunSpec) -> list[int]:
    """The replicas a launch creates at once; the others wait in the run."""
    count = spec.replicas
    if spec.pilot:
        return [1]
    if spec.max_running:
        return list(range(1, min(count, spec.max_running) + 1))
    return list(range(1, count + 1))


def waiting_reason(spec: RunSpec, occupied: int) -> str:
    """Why a replica is Waiting at launch: the pilot, else the cap."""
    return WAITING_PILOT if spec.pilot else cap_reason(spec.max_running or 0, occupied)


def cap_reason(cap: int, occupied: int) -> str:
    return f"waiting in run: {occupied} of {cap} running"


def _retries_used(replica: Replica) -> int:
    used = 0
    for attempt in reversed(replica.attempts):  # since the last re-run by the user
        if attempt.why != "retry":
            break
        used += 1
    return used


def _will_retry(run: Run, replica: Replica) -> bool:
    return (
        replica.status is ReplicaStatus.FAILED
        and not replica.oom
        and replica.error not in (STOPPED_BY_USER, DELETED_BY_USER)
        and _retries_used(replica) < run.spec.retries
        and run.stopped is None
        and run.deleted is None
    )


def _log_settled(replica: Replica) -> bool:
    return (
        replica.session_id is None
        or replica.log_lost
        or (replica.log is not None and not replica.log_partial)
    )


def _pilot_holds(run: Run, replica: Replica) -> bool:
    """Replica `replica` waits for the pilot (replica 1) to complete and size the run."""
    if not run.spec.pilot or replica.index == 1:
        return False
    if run.replica(1).status is not ReplicaStatus.COMPLETED:
        return True
    return run.sizing is None


def _late(run: Run, replica: Replica, now: datetime) -> bool:
    timeout = run.spec.timeout_seconds
    if timeout is None or replica.session_id is None or replica.is_ended:
        return False
    if replica.status is not ReplicaStatus.RUNNING or replica.started is None:
        return False
    return now - replica.started > timedelta(seconds=timeout) + TIMEOUT_GRACE


def _ready(run: Run, now: datetime) -> list[int]:
    """Waiting replicas whose turn has come but for the cap, in REPLICA_ID order."""
    return [
        replica.index
        for replica in run.replicas
        if replica.status is ReplicaStatus.WAITING
        and (replica.retry_at is None or replica.retry_at <= now)
        and not _pilot_holds(run, replica)
    ]


def _due(run: Run, now: datetime, live: set[str] | None) -> list[int]:
    """Waiting replicas that may be created now; `live`: the ids of sessions the service
    lists as not ended (what the cap counts: a replica winding down still holds its place)."""
    ready = _ready(run, now)
    if run.spec.max_running and live is not None:
        ready = ready[: max(0, run.spec.max_running - _held(run, live))]
    return ready


def _held(run: Run, live: set[str]) -> int:
    """The run's places taken: its live sessions (an earlier attempt's still winding down
    included), and creates under way."""
    ids = {
        session_id
        for r in run.replicas
        for session_id in (r.session_id, *(a.session_id for a in r.attempts))
        if session_id
    }
    creating = sum(
        1 for r in run.replicas if r.session_id is None and r.status is ReplicaStatus.PENDING
    )
    return len(ids & live) + creating


def _needs_sizing(run: Run) -> bool:
    return (
        run.spec.pilot
        and run.sizing is None
        and run.replica(1).status is ReplicaStatus.COMPLETED
        and any(r.status is ReplicaStatus.WAITING for r in run.replicas[1:])
    )


# ------------------------------------------------------------------ advancing


async def advance(run: Run, client: SkahaClient, store: RunStore) -> Run:
    """Move `run` on as its spec asks (module docstring); return it as recorded now."""
    name = run.name
    context = await client.context() if _needs_sizing(run) else None
    now = utc_now()
    if _unsettled(run, context):  # run.json is locked and re-read only for a change
        run = store.update(name, lambda current: _settle(current, now, context))
    if not needs_advance(run):
        return run
    with _exclusive(Path(run.folder)) as mine:
        if not mine:
            return run  # another process (server, follow, conductor) is doing this step
        late = [r.index for r in run.steps if _late(run, r, now)]  # the reduce step too
        if late:
            assert run.spec.timeout_seconds is not None
            why = f"timed out after {duration_text(run.spec.timeout_seconds)}"
            run = await stop_run(name, client, store, late, timed_out=why)
        run = await _create_due(name, client, store)

        if reduce_due(run):  # every replica succeeded (a re-run sets it Waiting again)
            run = await start_reduce(run, client, store)
    return run


def _settle(run: Run, now: datetime, context: Context | None) -> None:
    """The state changes that need no service: failed replicas to Waiting for their retry,
    the pilot's sizing, the rest of a failed pilot's run NotCreated."""
    folder = Path(run.folder)
    for replica in run.replicas:
        if _will_retry(run, replica) and _log_settled(replica):
            number = _retries_used(replica) + 1
            _push_attempt(folder, replica, "retry")
            _clear(replica)
            replica.status = ReplicaStatus.WAITING
            replica.retry_at = now + timedelta(seconds=retry_delay(number))
            replica.reason = f"retry {number} of {run.spec.retries} at {replica.retry_at:%H:%M:%S}Z"
    if run.spec.pilot:
        pilot = run.replica(1)
        if context is not None and _needs_sizing(run):
            _size(run, pilot, context)
        elif pilot.is_failed and not _will_retry(run, pilot):
            for replica in run.replicas[1:]:
                if replica.status is ReplicaStatus.WAITING:
                    replica.status = ReplicaStatus.NOT_CREATED
                    replica.error = PILOT_FAILED
                    replica.reason = replica.retry_at = None
                    replica.ended = now


def _unsettled(run: Run, context: Context | None) -> bool:
    """Whether `_settle` has anything to change (it moves logs: no dry run)."""
    if any(_will_retry(run, r) and _log_settled(r) for r in run.replicas):
        return True
    if not run.spec.pilot:
        return False
    if context is not None and _needs_sizing(run):
        return True
    pilot = run.replica(1)
    waiting = any(r.status is ReplicaStatus.WAITING for r in run.replicas[1:])
    return waiting and pilot.is_failed and not _will_retry(run, pilot)


def _size(run: Run, pilot: Replica, context: Context) -> None:
    """The rest of the run gets the cores and RAM the pilot's peaks call for (the user's own
    choices kept); recorded in run.sizing."""
    peak, cpu = pilot.peak_rss_bytes, pilot.cpu_seconds
    wall = (pilot.ended - pilot.started).total_seconds() if pilot.started and pilot.ended else None
    ram = run.spec.ram
    if ram is None and peak:
        options = context.memory_gb.options
        ram = _fitting(lambda: ram_for(peak, PILOT_RAM_FACTOR, context), options, run)
    cores = run.spec.cores
    if cores is None and cpu is not None and wall:
        cores = _fitting(lambda: cores_for(cpu, wall, context), context.cores.options, run)
    run.sizing = {
        "cores": cores,
        "ram": ram,
        "peak_rss_bytes": peak,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
    }
    for replica in run.replicas[1:]:
        if replica.status is ReplicaStatus.WAITING:
            replica.cores = cores if run.spec.cores is None else None
            replica.ram = ram if run.spec.ram is None else None


def _fitting(size: Any, options: list[int], run: Run) -> int:
    """The sized value; the largest option the service offers when even that is too small
    (the run goes on; its warnings say so)."""
    try:
        return size()
    except TooLarge as error:
        run.warnings.append(f"pilot sizing: {error}; using the largest")
        return max(options)


async def _create_due(name: str, client: SkahaClient, store: RunStore) -> Run:
    """Create the Waiting replicas that may start now, through the one creation path."""
    now = utc_now()
    claimed: list[int] = []
    run = store.get(name)
    if not _ready(run, now):
        return run
    live = None
    if run.spec.max_running:
        live = {s.id for s in await client.list_sessions() if not s.status.is_terminal}

    def claim(current: Run) -> None:
        claimed.clear()
        if current.launcher and lease.is_held(current.launcher) is not False:
            return  # a launch or re-run is creating this run's sessions right now
        if current.stopped is not None or current.deleted is not None:
            return
        for index in _due(current, now, live):
            replica = current.replica(index)
            replica.status = ReplicaStatus.PENDING
            replica.reason = replica.retry_at = None
            replica.submitted = now
            claimed.append(index)
        if claimed:
            current.launcher = lease.current()
        if live is not None and current.spec.max_running:  # what the rest wait for now
            taken = _held(current, live)
            for replica in current.replicas:
                if replica.status is ReplicaStatus.WAITING and not _pilot_holds(current, replica):
                    if replica.retry_at is None or replica.retry_at <= now:
                        replica.reason = cap_reason(current.spec.max_running, taken)

    run = store.update(name, claim)
    if not claimed:
        return run
    log.info("run %s: creating replica(s) %s", name, ", ".join(map(str, claimed)))
    try:
        run = await create_missing(name, claimed, client, store)
    except BaseException:

        def release(current: Run) -> None:  # nothing was sent: they wait again
            for index in claimed:
                replica = current.replica(index)
                if replica.session_id is None and replica.status is ReplicaStatus.PENDING:
                    replica.status = ReplicaStatus.WAITING
            current.launcher = None

        store.update(name, release)
        raise
    if run.stopped is not None or run.deleted is not None:
        await _end_unrecorded(run, claimed, client, now)
    return run


async def _end_unrecorded(
    run: Run, indices: list[int], client: SkahaClient, since: datetime
) -> None:
    """The run was stopped or deleted while these replicas were being created: sessions of
    theirs that it did not record are ended, not left running unseen."""
    known = {
        session_id
        for replica in run.replicas
        for session_id in (replica.session_id, *(a.session_id for a in replica.attempts))
        if session_id
    }
    names = {run.replica(index).name for index in indices}
    slack = timedelta(seconds=5)
    for session in await client.list_sessions():
        recent = session.start_time is None or session.start_time >= since - slack
        if session.name in names and session.id not in known and recent:
            with contextlib.suppress(NotFound):
                await client.delete(session.id)


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[bool]:
    """True while this process holds the run's conductor lock; False when another does."""
    try:
        descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise RunNotFound(f"no run folder {folder}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # closing releases the lock


# ------------------------------------------------------------------ the conductor process


def start_conductor(folder: Path, client: SkahaClient) -> None:
    """Start `python -m canfar_jlab.runs.conductor_process FOLDER [ENGINE_URL]` detached from this
    process (its own session: it outlives a CLI that exits or a kernel that restarts); its
    output goes to the run's logs/conductor.log. On the local engine, the URL of the engine
    `client` speaks to (no secret): the conductor conducts on that engine or not at all."""
    engine = [client.base_url] if client.credentials.is_local_engine else []
    path = folder / CONDUCTOR_LOG
    path.parent.mkdir(exist_ok=True)
    with open(path, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "canfar_jlab.runs.conductor_process", str(folder), *engine],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            start_new_session=True,
            close_fds=True,
        )
    # Reaped when it exits, so a long-lived server keeps no zombie.
    threading.Thread(target=process.wait, name=f"conductor-{folder.name}", daemon=True).start()
