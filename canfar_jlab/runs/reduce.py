"""The run's reduce step (issue 17): one more session after every replica succeeded.

A run whose notebook has cells tagged ``reduce`` (`RunSpec.reduce` "cells"), or that was
launched with ``--reduce NOTEBOOK`` (`RunSpec.reduce` the notebook's file name in the run
folder), ends with a reduce step: session ``RUN-reduce``, with the run's image, resources,
command line and env (``CANFAR_RUN_OUTPUTS``, ``CANFAR_RUN_DIR``...), ``REPLICA_ID=0``,
``REPLICA_COUNT=N`` and ``CANFAR_JLAB_MODE=reduce``. The runner then works in ``reduce/`` of the
run folder (beside ``replicas/``, whose folders it reads), runs only the reduce cells (with the
parameters cells) or the reduce notebook whole, and reports in ``reduce/status.json``; its
executed notebook is ``reduce/executed.ipynb`` and its archived log ``logs/reduce.log``.

It is recorded as `Run.reduce`, a Replica with index 0 that the reconciler observes like the
others; the run is active until it ends (`Run.reduce_pending`). The conductor starts it when
every replica Completed (`reduce_due`); a re-run of failed replicas sets it Waiting again
(its earlier session kept under `attempts`), and a re-run of a run whose reduce step alone
failed starts it at once.
"""

from __future__ import annotations

from ..kernel_runner import MODE_ENV, REDUCE_MODE, REDUCE_NOTEBOOK_ENV
from ..models import Replica, ReplicaOutcome, ReplicaStatus, Run, SessionSpec
from ..skaha import SkahaClient, SkahaError
from . import lease
from .actions import apply_outcomes, create_replicas_by_index, note_active, spec_of, utc_now
from .sites import run_client, same_site
from .store import RunError, RunStore

CELLS = "cells"  # RunSpec.reduce: the snapshot's cells tagged `reduce`
SUFFIX = "-reduce"
SESSION_NAME_MAX = 63  # Skaha's session names are DNS labels


def reduce_name(run_name: str) -> str:
    """`RUN-reduce` (the run's name shortened when the whole would pass 63 characters)."""
    return f"{run_name[: SESSION_NAME_MAX - len(SUFFIX)].rstrip('-')}{SUFFIX}"


def reduce_due(run: Run) -> bool:
    """The run asks for a reduce step, every replica Completed, and it is not started yet
    (never, or set Waiting again by a re-run)."""
    if not run.reduce_pending:
        return False
    step = run.reduce
    return step is None or (step.session_id is None and step.status is ReplicaStatus.WAITING)


def reduce_spec(run: Run) -> SessionSpec:
    """The replicas' session spec with the reduce step's name and mode."""
    spec = spec_of(run)
    env = {**spec.env, MODE_ENV: REDUCE_MODE}
    if run.spec.reduce not in (None, CELLS):
        env[REDUCE_NOTEBOOK_ENV] = str(run.spec.reduce)
    return spec.model_copy(update={"name": reduce_name(run.name), "env": env})


async def start_reduce(run: Run, client: SkahaClient, store: RunStore) -> Run:
    """Create the run's reduce step session when it is due (`reduce_due`); the run as it is
    then. Safe to call from several processes: run.json is claimed first, so only one
    creates it."""
    if run.spec.reduce is None:
        raise RunError(f"run {run.name} has no reduce step")
    if not same_site(client, run.site):  # issue 16: the run's own site
        async with run_client(run) as there:
            return await start_reduce(run, there, store)
    spec = reduce_spec(run)  # refuse before touching run.json
    name = spec.name
    now = utc_now()
    claimed: list[bool] = []

    def claim(current: Run) -> None:
        claimed.clear()
        if not reduce_due(current) or (current.launcher and lease.is_held(current.launcher)):
            return
        attempts = current.reduce.attempts if current.reduce is not None else []
        current.reduce = Replica(index=0, name=name, submitted=now, attempts=attempts)
        current.launcher = lease.current()
        claimed.append(True)

    run = store.update(run.name, claim)
    if not claimed:
        return run
    note_active(store, run.name)
    try:
        before = {session.id for session in await client.list_sessions()}
        outcomes = await create_replicas_by_index(
            client, spec, {0: name}, run.spec.replicas, before=before
        )
    except SkahaError as error:  # nothing was sent
        outcomes = [ReplicaOutcome(index=0, name=name, error=error.message)]

    def record(current: Run) -> None:
        apply_outcomes(current, outcomes)
        current.launcher = None

    return store.update(run.name, record)
