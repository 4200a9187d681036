"""Creating a run's replica sessions (the one creation path, and `spec_of`: a replica's session
spec), stopping and deleting them; and the bookkeeping launch, re-run, the conductor and the
reduce step share (replica outcomes into run.json, attempts). The lowest of those: it imports
none of them (rerun.py, conductor.py and reduce.py build on it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from ..models import (
    Replica,
    ReplicaAttempt,
    ReplicaOutcome,
    ReplicaStatus,
    Run,
    SessionSpec,
)
from ..skaha import CreateOutcomeUnknown, NotFound, SkahaClient, SkahaError
from .adoption import adopt_by_name
from .archive import archive_log, attempt_log_name
from .sites import run_client, same_site
from .store import OUTPUTS_DIR, LaunchRefused, RunError, RunStore

GIB = 2**30  # a RAM request of N GB is applied as N GiB (models.SessionSpec)
RUN_DIR_ENV = "CANFAR_RUN_DIR"
RUN_OUTPUTS_ENV = "CANFAR_RUN_OUTPUTS"
RUN_NAME_ENV = "CANFAR_RUN_NAME"
TIMEOUT_ENV = "CANFAR_JLAB_TIMEOUT"  # the runner ends the notebook after this many seconds
# How a replica ended by the user is recorded (a retry never re-creates those).
STOPPED_BY_USER = "stopped by the user before it ended"
DELETED_BY_USER = "deleted by the user before it ended"


def run_env(
    env: dict[str, str],
    cores: int | None,
    folder: Path,
    name: str,
    timeout_seconds: int | None = None,
) -> dict[str, str]:
    """What every replica of a run gets besides REPLICA_ID/COUNT: the user's env,
    OMP_NUM_THREADS = cores (unless given), where the run folder and outputs are, and the
    run's --timeout for the runner to enforce."""
    env = dict(env)
    if cores is not None:
        env.setdefault("OMP_NUM_THREADS", str(cores))
    env[RUN_DIR_ENV] = str(folder)
    env[RUN_OUTPUTS_ENV] = str(folder / OUTPUTS_DIR)
    env[RUN_NAME_ENV] = name
    if timeout_seconds is not None:
        env[TIMEOUT_ENV] = str(timeout_seconds)
    return env


def replica_vars(index: int, count: int) -> dict[str, str]:
    """What creating adds to one replica's env (REPLICA_ID/COUNT, as the official client)."""
    return {"REPLICA_ID": str(index), "REPLICA_COUNT": str(count)}


def session_spec(run: Run, replica: Replica | None = None) -> SessionSpec:
    """What the replicas of `run` are created with (with `replica`'s own cores and RAM when it
    has them: a pilot's sizing, a re-run with more memory): the one place a run (and so a
    launch request, through launcher.planned_run) becomes a session spec. ValidationError if
    the service could not take it."""
    cores = cores_of(run, replica)
    return SessionSpec(
        name=run.name,
        image=run.spec.image,
        cores=cores,
        ram=replica.ram if replica is not None and replica.ram else run.spec.ram,
        gpus=run.spec.gpus,
        cmd=run.spec.argv[0],
        args=run.spec.argv[1:],
        env=run_env_of(run, cores),
    )


def cores_of(run: Run, replica: Replica | None = None) -> int | None:
    """The cores a replica asks for: its own (a pilot's sizing, a re-run) else the run's."""
    return replica.cores if replica is not None and replica.cores else run.spec.cores


def replica_env(run: Run, replica: Replica) -> dict[str, str]:
    """The whole env `replica` of `run` gets: its session spec's env (as `session_spec` builds
    it) plus what creating adds (`replica_vars`). What a launch preview shows, so the preview
    cannot drift from what the replicas are created with."""
    env = run_env_of(run, cores_of(run, replica))
    return {**env, **replica_vars(replica.index, run.spec.replicas)}


def spec_of(run: Run, replica: Replica | None = None) -> SessionSpec:
    """What the replicas of `run` are created with, from its run.json."""
    try:
        return session_spec(run, replica)
    except (ValidationError, IndexError):
        raise RunError(f"run.json of {run.name} does not describe a command to run") from None


async def create_missing(
    name: str,
    indices: Sequence[int],
    client: SkahaClient,
    store: RunStore,
    *,
    concurrency: int = 8,
) -> Run:
    """The one way replicas are created, for a launch and for a re-run.

    run.json already names every replica and holds this process's launch lease. Sessions that
    already carry a replica's name (a create whose reply was lost, a launcher that died after
    its create) are adopted instead of created again; the rest are created, each once. The
    lease is released when every outcome is recorded.
    """
    run = store.get(name)
    spec = spec_of(run)
    listed = await client.list_sessions()
    by_id = {session.id: session for session in listed}
    adopted: dict[int, str] = {}
    for index in indices:
        replica = run.replica(index)
        if replica.session_id is None:
            found = adopt_by_name(run, replica, by_id)
            if found is not None:
                adopted[index] = found.id
                by_id.pop(found.id)
    names = {
        index: run.replica(index).name
        for index in indices
        if run.replica(index).session_id is None and index not in adopted
    }
    outcomes = [
        ReplicaOutcome(index=index, name=run.replica(index).name, session_id=sid, reconciled=True)
        for index, sid in adopted.items()
    ]
    # Replicas with resources of their own (a pilot's sizing) are created with those.
    groups: dict[tuple[int | None, int | None], dict[int, str]] = {}
    for index, session_name in names.items():
        replica = run.replica(index)
        groups.setdefault((replica.cores, replica.ram), {})[index] = session_name
    for (cores, ram), group in groups.items():
        own = spec if cores is None and ram is None else spec_of(run, run.replica(min(group)))
        try:
            outcomes += await create_replicas_by_index(
                client,
                own,
                group,
                run.spec.replicas,
                before={s.id for s in listed},
                concurrency=concurrency,
            )
        except SkahaError as error:  # raised before any create was sent
            outcomes += [
                ReplicaOutcome(index=i, name=n, error=error.message) for i, n in group.items()
            ]

    def record(current: Run) -> None:
        apply_outcomes(current, outcomes)
        current.launcher = None

    return store.update(name, record)


def _clear(replica: Replica) -> None:
    """Forget the last attempt's outcome; keep who the replica is (its parameters, its own
    resources) and its earlier attempts."""
    fresh = Replica(
        index=replica.index,
        name=replica.name,
        attempts=replica.attempts,
        parameters=replica.parameters,
        cores=replica.cores,
        ram=replica.ram,
    )
    for field_name in Replica.model_fields:
        setattr(replica, field_name, getattr(fresh, field_name))


async def stop_run(
    name: str,
    client: SkahaClient,
    store: RunStore,
    indices: Collection[int] | None = None,
    *,
    timed_out: str | None = None,
) -> Run:
    """End the run's replicas (all, or `indices`) that are still going, keeping the record and
    the logs: each log is archived first, then the session deleted; a whole run's state
    becomes "stopped". `timed_out` (the run's conductor): record them TimedOut with it."""
    return await _end_sessions(
        name, client, store, stopping=True, indices=indices, timed_out=timed_out
    )


async def delete_run(
    name: str, client: SkahaClient, store: RunStore, indices: Collection[int] | None = None
) -> list[str]:
    """Delete the run's sessions (all, or those of `indices`; its folder, script, logs and
    outputs stay) and mark a whole run deleted for every door. Logs not archived yet are
    saved first; replicas that had not ended are recorded as Failed, deleted by the user."""
    ended: list[str] = []
    await _end_sessions(name, client, store, stopping=False, indices=indices, ended=ended)
    return ended


async def _end_sessions(
    name: str,
    client: SkahaClient,
    store: RunStore,
    *,
    stopping: bool,
    indices: Collection[int] | None = None,
    ended: list[str] | None = None,
    timed_out: str | None = None,
) -> Run:
    run = store.get(name)
    if not same_site(client, run.site):  # issue 16: act on the site the run was launched on
        async with run_client(run) as there:
            return await _end_sessions(
                name,
                there,
                store,
                stopping=stopping,
                indices=indices,
                ended=ended,
                timed_out=timed_out,
            )
    listed = {session.id for session in await client.list_sessions()}
    folder = Path(run.folder)
    archived: dict[int, tuple[str, bool]] = {}
    chosen = [r for r in run.steps if indices is None or r.index in indices]
    for replica in chosen:
        if replica.session_id in listed and (replica.log is None or replica.log_partial):
            path = await archive_log(client, replica.session_id, folder, replica.index)
            if path is not None:
                archived[replica.index] = (path, not replica.is_ended)
    ids = [r.session_id for r in chosen if r.session_id in listed]
    if not stopping:
        ids += [a.session_id for r in chosen for a in r.attempts if a.session_id in listed]
    if ended is not None:
        ended.extend(session_id for session_id in ids if session_id)
    gate = asyncio.Semaphore(8)

    async def end(session_id: str) -> None:
        async with gate:
            try:
                await client.delete(session_id)
            except NotFound:
                pass  # ended and forgotten meanwhile

    await asyncio.gather(*(end(session_id) for session_id in ids if session_id))
    now = utc_now()
    verb = "stopped" if stopping else "deleted"

    def record(current: Run) -> None:
        if timed_out is not None:
            pass  # the run goes on; only these replicas ended
        elif indices is None and stopping:
            if current.state == "active":  # stopping an ended run changes nothing
                current.stopped = now
        elif indices is None:
            current.deleted = now
        for replica in current.steps:
            if indices is not None and replica.index not in indices:
                continue
            done = archived.get(replica.index)
            if done is not None and replica.session_id == run.replica(replica.index).session_id:
                replica.log, replica.log_partial = done
            if replica.session_id in ids and not replica.is_ended:
                replica.status = ReplicaStatus.FAILED
                replica.error = STOPPED_BY_USER if stopping else DELETED_BY_USER
                if timed_out is not None:
                    replica.status, replica.error = ReplicaStatus.TIMED_OUT, timed_out
                replica.ended = now
                replica.log_partial = False  # nothing more will come
            elif replica.session_id is None and not replica.is_ended:
                replica.status = ReplicaStatus.NOT_CREATED
                replica.error = f"{verb} by the user before it was created"
                replica.ended = now

    return store.update(name, record)


async def create_replicas_by_index(
    client: SkahaClient,
    spec: SessionSpec,
    names: dict[int, str],
    count: int,
    *,
    before: set[str] | None = None,
    concurrency: int = 8,
) -> list[ReplicaOutcome]:
    """Create the replicas `names` ({REPLICA_ID: session name}) of a run of `count`.

    Create is not idempotent on Skaha: a create whose reply was lost is looked for by name
    among sessions that did not exist before (`before`: ids listed before creating), and
    never sent twice.
    """
    wanted = set(names.values())
    if before is None:
        before = {s.id for s in await client.list_sessions() if s.name in wanted}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def create(index: int) -> tuple[int, str | SkahaError]:
        async with gate:
            try:
                env = replica_vars(index, count)
                return index, await client.create_session(spec, name=names[index], env=env)
            except SkahaError as error:
                return index, error

    outcomes: dict[int, ReplicaOutcome] = {}
    unknown: dict[int, SkahaError] = {}
    for index, result in await asyncio.gather(*(create(index) for index in names)):
        if isinstance(result, str):
            outcomes[index] = ReplicaOutcome(index=index, name=names[index], session_id=result)
        elif isinstance(result, CreateOutcomeUnknown):
            unknown[index] = result
        else:
            outcomes[index] = _failed_outcome(index, names[index], result.message)
    if unknown:
        await asyncio.sleep(getattr(client, "reconcile_delay", 1.0))
        claimed = before | {o.session_id for o in outcomes.values() if o.session_id}
        try:
            listed = await client.list_sessions()
        except SkahaError as error:
            listed, note = [], f"and listing sessions to check failed: {error.message}"
        else:
            note = "and no session of that name appeared"
        for index, error in unknown.items():
            found = next(
                (s for s in listed if s.name == names[index] and s.id not in claimed), None
            )
            if found is not None:
                claimed.add(found.id)
                outcomes[index] = ReplicaOutcome(
                    index=index, name=names[index], session_id=found.id, reconciled=True
                )
            else:
                outcomes[index] = _failed_outcome(index, names[index], f"{error.message} {note}")
    return [outcomes[index] for index in sorted(outcomes)]


def run_env_of(run: Run, cores: int | None = None) -> dict[str, str]:
    """The env every replica of `run` is created with (the one place it is built)."""
    folder = Path(run.staged.folder) if run.staged else Path(run.folder)  # issue 16: staged
    cores = cores or run.spec.cores
    env = run_env(run.spec.env, cores, folder, run.name, run.spec.timeout_seconds)
    return {**env, **secret_values(run.spec.secret_env)}  # read again: run.json has no values


def secret_values(names: list[str]) -> dict[str, str]:
    """`--secret-env` values, read from this process's environment at launch; they go to the
    replicas only, never to run.json, a preview, a response or a log."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise LaunchRefused(
            f"secret env {', '.join(missing)}: not set in the launching environment"
        )
    return {name: os.environ[name] for name in names}


def apply_outcomes(run: Run, outcomes: list[ReplicaOutcome]) -> None:
    now = utc_now()
    for outcome in outcomes:
        replica = run.replica(outcome.index)
        if replica.session_id is not None or replica.status is not ReplicaStatus.PENDING:
            continue  # already recorded (another process reconciled it meanwhile)
        if outcome.session_id is not None:
            replica.session_id = outcome.session_id
        else:
            replica.status = ReplicaStatus.NOT_CREATED
            replica.error = outcome.error or "not created"
            replica.ended = now


def _push_attempt(folder: Path, replica: Replica, why: str | None = None) -> None:
    log = replica.log
    if log is not None:
        target = attempt_log_name(replica.index, len(replica.attempts) + 1)
        try:
            os.replace(folder / log, folder / target)
            log = target
        except OSError:
            log = None
    replica.attempts.append(
        ReplicaAttempt(
            session_id=replica.session_id,
            why=why,
            oom=replica.oom,
            cores=replica.cores,
            ram=replica.ram,
            status=replica.status,
            error=replica.error,
            started=replica.started,
            ended=replica.ended,
            log=log,
            exit_code=replica.exit_code,
            peak_rss_bytes=replica.peak_rss_bytes,
            cpu_seconds=replica.cpu_seconds,
        )
    )


def _failed_outcome(index: int, name: str, message: str) -> ReplicaOutcome:
    return ReplicaOutcome(index=index, name=name, error=message)


def note_active(store: RunStore, name: str) -> None:
    if store.seen_states is not None:
        store.seen_states[name] = "active"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
