"""Running a launched run's failed replicas again (`rerun_failed`), its reduce step alone, or
the replicas that ran out of memory with twice their peak (`memory_plan`). Built on the
creation path (actions), the conductor and the reduce step."""

from __future__ import annotations

from pathlib import Path

from ..models import Replica, ReplicaStatus, Run
from ..skaha import SkahaClient
from . import conductor, lease
from .actions import GIB, _clear, _push_attempt, create_missing, note_active, spec_of, utc_now
from .reduce import start_reduce
from .sites import run_client, same_site
from .sizing import GB, TooLarge, ram_for, round_up
from .store import NothingToRerun, RunError, RunStore


async def rerun_failed(
    name: str,
    client: SkahaClient,
    store: RunStore,
    *,
    concurrency: int = 8,
    source: str = "snapshot",
    more_memory: bool = False,
) -> Run:
    """Create again only the Failed, TimedOut and NotCreated replicas, each with its own
    REPLICA_ID and session name; their earlier sessions (and archived logs) are kept under
    `attempts`. The run's reduce step runs again after them (at once, when it alone failed).

    `source` "snapshot" runs the script exported at launch; "notebook" exports the notebook as
    it is now on disk into the run folder first. A replica whose session exists (adopted by
    name) is never created a second time. `more_memory`: only the replicas that ran out of
    memory, as fixed sessions with twice their peak (`memory_plan`).
    """
    run = store.get(name)
    if not same_site(client, run.site):  # issue 16: act on the site the run was launched on
        async with run_client(run) as there:
            return await rerun_failed(
                name,
                there,
                store,
                concurrency=concurrency,
                source=source,
                more_memory=more_memory,
            )
    sizes: dict[int, tuple[int, int]] = {}
    if more_memory:
        sizes = await memory_plan(run, client)
        indices = sorted(sizes)
    else:
        indices = [r.index for r in run.replicas if _rerunnable(r)]
    if not indices:
        if run.reduce is not None and _rerunnable(run.reduce):
            return await _rerun_reduce(run, client, store)
        raise NothingToRerun(f"run {name} has no Failed or NotCreated replica to run again")
    folder = Path(run.folder)
    if source == "notebook":
        from .snapshot import reexport  # the exporter is slow to import

        await reexport(run, client, store)
        run = store.get(name)
    elif source != "snapshot":
        raise RunError(f"source: must be 'snapshot' or 'notebook', not {source!r}")
    if not (folder / run.script).is_file():
        raise RunError(f"the script of run {name} is missing: {folder / run.script}")
    spec_of(run)  # refuse before touching run.json

    # With a cap or a pilot, they wait in the run and the conductor creates them in turn.
    in_turn = bool(run.spec.max_running or run.spec.pilot)
    now = utc_now()
    chosen: list[int] = []

    def reset(current: Run) -> None:
        chosen.clear()
        if current.launcher and lease.is_held(current.launcher):
            return  # another process is creating this run's sessions right now
        for index in indices:
            replica = current.replica(index)
            if not _rerunnable(replica):
                continue  # another process re-ran it meanwhile
            chosen.append(index)
            _push_attempt(folder, replica, "more-memory" if index in sizes else "rerun")
            _clear(replica)
            replica.submitted = now
            if index in sizes:  # a fixed session with twice its peak memory
                replica.cores, replica.ram = sizes[index]
            if in_turn:
                pilot_first = run.spec.pilot and index != 1 and 1 in indices
                replica.status, replica.submitted = ReplicaStatus.WAITING, None
                replica.reason = conductor.WAITING_PILOT if pilot_first else "waiting in run"
        if chosen:
            current.launcher = None if in_turn else lease.current()
            current.stopped = current.deleted = None
            if in_turn and 1 in chosen:
                current.sizing = None  # the pilot runs again: it sizes the rest again
            step = current.reduce
            if step is not None:  # it runs again once they all succeed
                if step.session_id is not None or step.is_ended:
                    _push_attempt(folder, step, "rerun")
                _clear(current.reduce)
                current.reduce.status = ReplicaStatus.WAITING
                current.reduce.reason = "waiting for the replicas to succeed"

    store.update(name, reset)
    if not chosen:
        raise NothingToRerun(f"run {name}'s failed replicas are already being run again")
    note_active(store, name)
    if in_turn:
        run = await conductor.advance(store.get(name), client, store)
    else:
        run = await create_missing(name, chosen, client, store, concurrency=concurrency)
    if conductor.conducts(run.spec):  # retried, capped... while nobody watches
        conductor.start_conductor(folder, client)
    return run


def _rerunnable(replica: Replica) -> bool:
    ended_badly = (ReplicaStatus.FAILED, ReplicaStatus.NOT_CREATED, ReplicaStatus.TIMED_OUT)
    return replica.status in ended_badly or (
        replica.status is ReplicaStatus.UNKNOWN and replica.ended is not None
    )


async def _rerun_reduce(run: Run, client: SkahaClient, store: RunStore) -> Run:
    """Every replica succeeded and only the reduce step failed: run it again now."""

    folder = Path(run.folder)

    def reset(current: Run) -> None:
        step = current.reduce
        if step is None or not _rerunnable(step):
            return  # re-run by another process meanwhile
        _push_attempt(folder, step, "rerun")
        _clear(step)
        step.status = ReplicaStatus.WAITING
        current.stopped = current.deleted = None

    run = store.update(run.name, reset)
    note_active(store, run.name)
    return await start_reduce(run, client, store)


async def memory_plan(run: Run, client: SkahaClient) -> dict[int, tuple[int, int]]:
    """{index: (cores, ram GB)} for each replica that ran out of memory: RAM twice its peak
    (a replica killed at its limit needed more than the limit, so the limit counts as its
    peak when its last report saw less), rounded up to the service's options. NothingToRerun
    when none ran out of memory; sizing.TooLarge when the service offers too little."""
    victims = [r for r in run.replicas if r.oom and r.status is ReplicaStatus.FAILED]
    if not victims:
        raise NothingToRerun(f"run {run.name} has no replica that ran out of memory")
    context = await client.context()
    plan: dict[int, tuple[int, int]] = {}
    for replica in victims:
        limit = replica.ram or run.spec.ram
        peak = max(replica.peak_rss_bytes or 0, (limit or 0) * GIB)
        if not peak:
            raise RunError(f"replica {replica.index} of {run.name} reported no memory use")
        try:
            ram = ram_for(peak, 2, context)
        except TooLarge:
            largest = max(context.memory_gb.options or [0])
            raise TooLarge(
                f"replica {replica.index} of {run.name} needs {2 * peak / GB:.3g} GB "
                f"(twice its peak of {peak / GB:.3g} GB), but the largest RAM "
                f"{client.credentials.service_name} offers is {largest} GB"
            ) from None
        cores = replica.cores or run.spec.cores
        if cores is None:  # a flexible run: the service's default, as a fixed request
            cores = round_up(context.cores.default or 1, context.cores.options, "cores")
        plan[replica.index] = (cores, ram)
    return plan
