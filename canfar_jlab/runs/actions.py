"""Acting on a launched run: run its failed replicas again, delete its sessions; and the
bookkeeping launch shares with them (replica outcomes into run.json, a replica's env)."""

from __future__ import annotations

import asyncio
import os
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
from ..skaha import CreateOutcomeUnknown, SkahaClient, SkahaError
from .archive import archive_log, attempt_log_name
from .sites import run_client, same_site
from .store import OUTPUTS_DIR, LaunchRefused, NothingToRerun, RunError, RunStore

RUN_DIR_ENV = "CANFAR_RUN_DIR"
RUN_OUTPUTS_ENV = "CANFAR_RUN_OUTPUTS"
RUN_NAME_ENV = "CANFAR_RUN_NAME"


def run_env(env: dict[str, str], cores: int | None, folder: Path, name: str) -> dict[str, str]:
    """What every replica of a run gets besides REPLICA_ID/COUNT: the user's env,
    OMP_NUM_THREADS = cores (unless given), and where the run folder and outputs are."""
    env = dict(env)
    if cores is not None:
        env.setdefault("OMP_NUM_THREADS", str(cores))
    env[RUN_DIR_ENV] = str(folder)
    env[RUN_OUTPUTS_ENV] = str(folder / OUTPUTS_DIR)
    env[RUN_NAME_ENV] = name
    return env


async def rerun_failed(
    name: str, client: SkahaClient, store: RunStore, *, concurrency: int = 8
) -> Run:
    """Create again only the Failed and NotCreated replicas, each with its own REPLICA_ID and
    session name; their earlier sessions (and archived logs) are kept under `attempts`."""
    run = store.get(name)
    if not same_site(client, run.site):  # issue 16: act on the site the run was launched on
        async with run_client(run) as there:
            return await rerun_failed(name, there, store, concurrency=concurrency)
    indices = [
        r.index
        for r in run.replicas
        if r.status in (ReplicaStatus.FAILED, ReplicaStatus.NOT_CREATED)
    ]
    if not indices:
        raise NothingToRerun(f"run {name} has no Failed or NotCreated replica to run again")
    folder = Path(run.folder)
    if not (folder / run.script).is_file():
        raise RunError(f"the script of run {name} is missing: {folder / run.script}")
    try:
        spec = SessionSpec(
            name=name,
            image=run.spec.image,
            cores=run.spec.cores,
            ram=run.spec.ram,
            gpus=run.spec.gpus,
            cmd=run.spec.argv[0],
            args=run.spec.argv[1:],
            env=run_env_of(run),
        )
    except (ValidationError, IndexError):
        raise RunError(f"run.json of {name} does not describe a command to run again") from None

    now = utc_now()
    chosen: list[int] = []

    def reset(current: Run) -> None:
        chosen.clear()
        for index in indices:
            replica = current.replica(index)
            if replica.status not in (ReplicaStatus.FAILED, ReplicaStatus.NOT_CREATED):
                continue  # another process re-ran it meanwhile
            chosen.append(index)
            _push_attempt(folder, replica)
            replica.session_id = None
            replica.status = ReplicaStatus.PENDING
            replica.error = replica.started = replica.ended = replica.log = None
            replica.log_partial = False
            replica.submitted = now

    store.update(name, reset)
    if not chosen:
        raise NothingToRerun(f"run {name}'s failed replicas are already being run again")
    note_active(store, name)
    names = {index: run.replica(index).name for index in chosen}
    outcomes = await create_replicas_by_index(
        client, spec, names, run.spec.replicas, concurrency=concurrency
    )
    return store.update(name, lambda current: apply_outcomes(current, outcomes))


async def delete_run(name: str, client: SkahaClient, store: RunStore) -> list[str]:
    """Delete the run's sessions (its folder, script, logs and outputs stay).

    Logs not archived yet are saved first (Skaha's and the engine's logs go with the session);
    replicas that had not ended are recorded as Failed, deleted by the user.
    """
    run = store.get(name)
    if not same_site(client, run.site):  # issue 16: act on the site the run was launched on
        async with run_client(run) as there:
            return await delete_run(name, there, store)
    listed = {session.id for session in await client.list_sessions()}
    folder = Path(run.folder)
    archived: dict[int, tuple[str, bool]] = {}
    for replica in run.replicas:
        if replica.session_id in listed and (replica.log is None or replica.log_partial):
            path = await archive_log(client, replica.session_id, folder, replica.index)
            if path is not None:
                archived[replica.index] = (path, not replica.is_ended)
    ids = [r.session_id for r in run.replicas if r.session_id in listed]
    ids += [a.session_id for r in run.replicas for a in r.attempts if a.session_id in listed]
    gate = asyncio.Semaphore(8)

    async def delete(session_id: str) -> None:
        async with gate:
            await client.delete(session_id)

    await asyncio.gather(*(delete(session_id) for session_id in ids if session_id))
    now = utc_now()

    def record(current: Run) -> None:
        current.deleted = now
        for replica in current.replicas:
            done = archived.get(replica.index)
            if done is not None and replica.session_id == run.replica(replica.index).session_id:
                replica.log, replica.log_partial = done
            if replica.session_id in ids and not replica.is_ended:
                replica.status = ReplicaStatus.FAILED
                replica.error = "deleted by the user before it ended"
                replica.ended = now
                replica.log_partial = False  # nothing more will come

    store.update(name, record)
    return [session_id for session_id in ids if session_id]


async def create_replicas_by_index(
    client: SkahaClient,
    spec: SessionSpec,
    names: dict[int, str],
    count: int,
    *,
    concurrency: int = 8,
) -> list[ReplicaOutcome]:
    """Create the replicas `names` ({REPLICA_ID: session name}) of a run of `count`.

    Create is not idempotent on Skaha: a create whose reply was lost is looked for by name
    among sessions that did not exist before, and never sent twice.
    """
    wanted = set(names.values())
    before = {s.id for s in await client.list_sessions() if s.name in wanted}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def create(index: int) -> tuple[int, str | SkahaError]:
        async with gate:
            try:
                env = {"REPLICA_ID": str(index), "REPLICA_COUNT": str(count)}
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
        await asyncio.sleep(client.reconcile_delay)
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


def run_env_of(run: Run) -> dict[str, str]:
    folder = Path(run.staged.folder) if run.staged else Path(run.folder)  # issue 16: staged
    env = run_env(run.spec.env, run.spec.cores, folder, run.name)
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


def _push_attempt(folder: Path, replica: Replica) -> None:
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
            status=replica.status,
            error=replica.error,
            started=replica.started,
            ended=replica.ended,
            log=log,
        )
    )


def _failed_outcome(index: int, name: str, message: str) -> ReplicaOutcome:
    return ReplicaOutcome(index=index, name=name, error=message)


def note_active(store: RunStore, name: str) -> None:
    if store.seen_states is not None:
        store.seen_states[name] = "active"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
