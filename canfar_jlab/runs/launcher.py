"""Launching a run: notebook checks, a unique name, the run folder, N replicas; and the verbs
that act on a launched run (run its failed replicas again, delete its sessions).

A refused launch (cells that need a person at a screen, an unreadable notebook, a bad value)
leaves nothing behind: problems are found before the run folder is claimed, and a folder
claimed before a late refusal is removed. Once sessions are being created the run is
recorded, and every replica's outcome, failures included, is written to its run.json.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..export import ExportError, ExportProblem, check_notebook, export_notebook
from ..models import (
    RUN_NAME_MAX,
    LaunchRequest,
    Replica,
    ReplicaAttempt,
    ReplicaOutcome,
    ReplicaStatus,
    Run,
    RunSpec,
    SessionSpec,
    explain,
    replica_names,
)
from ..skaha import CreateOutcomeUnknown, SkahaClient, SkahaError
from .archive import archive_log, attempt_log_name
from .store import (
    LOGS_DIR,
    OUTPUTS_DIR,
    RunError,
    RunNameInUse,
    RunStore,
    check_path_safe,
)

IMAGE_ENV = "CANFAR_JLAB_IMAGE"
PYTHON_ENV = "CANFAR_JLAB_PYTHON"
REMOTE_PYTHON = "python3"  # what a CANFAR image runs the script with, unless PYTHON_ENV says
RUN_DIR_ENV = "CANFAR_RUN_DIR"
RUN_OUTPUTS_ENV = "CANFAR_RUN_OUTPUTS"
RUN_NAME_ENV = "CANFAR_RUN_NAME"
MAX_SUFFIX = 999
_BASE_MAX = RUN_NAME_MAX - 4  # room for "-999"


class LaunchRefused(RunError):
    """Nothing was created. `problems` lists the cells that need a person at a screen."""

    def __init__(self, message: str, problems: list[ExportProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class NothingToRerun(RunError):
    pass


class PreviewReplica(BaseModel):
    index: int
    name: str
    env: dict[str, str]


class Preview(BaseModel):
    """What `launch` would do with a request; nothing is created to find out."""

    name: str
    folder: str
    image: str | None
    problems: list[ExportProblem]
    replicas: list[PreviewReplica]
    argv: list[str]


def service_of(client: SkahaClient) -> str:
    """Which service a run's sessions live in: `local-engine` (whatever port it has today) or
    the Skaha base URL."""
    return "local-engine" if client.credentials.is_local_engine else client.base_url


def replica_python(client: SkahaClient | None) -> str:
    """The interpreter replicas start: this one on the local engine (same machine, same
    environment), `$CANFAR_JLAB_PYTHON` or `python3` from the image on Skaha."""
    if client is None or client.credentials.is_local_engine:
        return sys.executable
    return os.environ.get(PYTHON_ENV, "").strip() or REMOTE_PYTHON


async def resolve_image(image: str | None, client: SkahaClient) -> str:
    """The requested image, else `$CANFAR_JLAB_IMAGE`, else (local engine only) its first image."""
    if image:
        return image
    configured = os.environ.get(IMAGE_ENV, "").strip()
    if configured:
        return configured
    if client.credentials.is_local_engine:
        images = await client.images()
        headless = [each for each in images if not each.types or "headless" in each.types]
        if headless:
            return headless[0].id
        raise LaunchRefused("the local engine lists no image; pass an image explicitly")
    raise LaunchRefused(
        f"choose an image to run on {client.credentials.service_name}: pass one (--image) "
        f"or set {IMAGE_ENV}, e.g. images.canfar.net/skaha/astroml:latest"
    )


def base_name(notebook: Path) -> str:
    """A run name from a notebook's file name: Skaha's rules, room left for a suffix."""
    ascii_stem = unicodedata.normalize("NFKD", notebook.stem).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "-", ascii_stem.lower()).strip("-")
    return name[:_BASE_MAX].strip("-") or "run"


def replica_env(run_env: dict[str, str], index: int, count: int) -> dict[str, str]:
    """A replica's env as Skaha will set it (REPLICA_ID/COUNT as the official client sends)."""
    return {**run_env, "REPLICA_ID": str(index), "REPLICA_COUNT": str(count)}


# ------------------------------------------------------------------ preview and launch


async def preview(
    request: LaunchRequest, store: RunStore, client: SkahaClient | None = None
) -> Preview:
    """Problems, replica names and env, and the command line, as `launch` would make them.

    With a client, the name accounts for live sessions and the image default is resolved.
    Raises LaunchRefused for an unreadable notebook or bad parameters, RunNameInUse for an
    explicit name that is taken.
    """
    notebook = _notebook_path(request.notebook)
    problems = await asyncio.to_thread(_problems, notebook, request.parameters)
    active = await _active_session_names(client) if client is not None else set()
    name = _choose_name(store, notebook, request, active)
    folder = store.root / name
    image = None
    if client is not None:
        try:
            image = await resolve_image(request.image, client)
        except LaunchRefused:
            image = None
    else:
        image = request.image
    env = _run_env(request, folder, name)
    names = replica_names(name, request.replicas)
    return Preview(
        name=name,
        folder=str(folder),
        image=image,
        problems=problems,
        replicas=[
            PreviewReplica(index=i, name=n, env=replica_env(env, i, request.replicas))
            for i, n in enumerate(names, start=1)
        ],
        argv=[
            replica_python(client),
            str(folder / "canfar_runner.py"),
            str(folder / _script_name(notebook)),
        ],
    )


async def launch(
    request: LaunchRequest, client: SkahaClient, store: RunStore, *, concurrency: int = 8
) -> Run:
    """Export the notebook into a new run folder and create its replicas; return the Run.

    Raises LaunchRefused (nothing created) when a cell needs a person at a screen, the
    notebook cannot be read, or a value cannot be sent to Skaha; RunNameInUse for a taken
    explicit name; SkahaError when the service cannot even be listed. Once creating starts,
    failures are recorded per replica (NotCreated with the reason) instead of raised.
    """
    notebook = _notebook_path(request.notebook)
    problems = await asyncio.to_thread(_problems, notebook, request.parameters)
    if problems:
        raise LaunchRefused(_refusal(notebook, problems), problems)
    try:
        check_path_safe("runs folder", store.root)
    except RunError as error:
        raise LaunchRefused(str(error)) from None
    image = await resolve_image(request.image, client)
    active = await _active_session_names(client)

    name = _choose_name(store, notebook, request, active)
    while True:
        try:
            folder = store.claim(name)
            break
        except RunNameInUse:
            if request.name is not None:
                raise
            name = _choose_name(store, notebook, request, active)  # another launch won the race

    try:
        spec, exported_script, checksum = await _prepare(
            request, client, notebook, folder, name, image
        )
    except (LaunchRefused, ExportError, ValidationError, OSError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, LaunchRefused):
            raise
        if isinstance(error, ValidationError):
            raise LaunchRefused(f"cannot launch {notebook.name}: {explain(error)}") from None
        if isinstance(error, OSError):
            raise LaunchRefused(f"cannot prepare {folder}: {error.strerror or error}") from None
        raise LaunchRefused(str(error)) from None

    now = _now()
    run = Run(
        name=name,
        notebook=str(notebook),
        notebook_sha256=checksum,
        created=now,
        folder=str(folder),
        script=exported_script,
        service=service_of(client),
        spec=RunSpec(
            image=image,
            cores=request.cores,
            ram=request.ram,
            gpus=request.gpus,
            env=dict(request.env),
            replicas=request.replicas,
            parameters=dict(request.parameters),
            argv=[spec.cmd or "", *spec.args],
        ),
        replicas=[
            Replica(index=i, name=n, submitted=now)
            for i, n in enumerate(replica_names(name, request.replicas), start=1)
        ],
    )
    store.write(run)
    _note_active(store, name)
    try:
        outcomes = await client.create_replicas(spec, request.replicas, concurrency=concurrency)
    except SkahaError as error:  # raised before any create was sent
        outcomes = [
            ReplicaOutcome(index=r.index, name=r.name, error=error.message) for r in run.replicas
        ]
    return store.update(name, lambda run: _apply_outcomes(run, outcomes))


async def _prepare(
    request: LaunchRequest,
    client: SkahaClient,
    notebook: Path,
    folder: Path,
    name: str,
    image: str,
) -> tuple[SessionSpec, str, str]:
    exported = await asyncio.to_thread(
        export_notebook,
        notebook,
        folder,
        parameters=request.parameters or None,
        python=replica_python(client),
        script_name=_script_name(notebook),
    )
    if exported.problems:  # the notebook changed since it was checked
        raise LaunchRefused(_refusal(notebook, exported.problems), exported.problems)
    (folder / LOGS_DIR).mkdir()
    (folder / OUTPUTS_DIR).mkdir()
    spec = SessionSpec(
        name=name,
        image=image,
        cores=request.cores,
        ram=request.ram,
        gpus=request.gpus,
        cmd=exported.argv[0],
        args=exported.argv[1:],
        env=_run_env(request, folder, name),
    )
    return spec, exported.script_path.name, exported.checksum


# ------------------------------------------------------------------ acting on a run


async def rerun_failed(
    name: str, client: SkahaClient, store: RunStore, *, concurrency: int = 8
) -> Run:
    """Create again only the Failed and NotCreated replicas, each with its own REPLICA_ID and
    session name; their earlier sessions (and archived logs) are kept under `attempts`."""
    run = store.get(name)
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
            env=_env_of(run),
        )
    except (ValidationError, IndexError):
        raise RunError(f"run.json of {name} does not describe a command to run again") from None

    now = _now()

    def reset(current: Run) -> None:
        for index in indices:
            replica = current.replica(index)
            if replica.status not in (ReplicaStatus.FAILED, ReplicaStatus.NOT_CREATED):
                continue  # another process re-ran it meanwhile
            _push_attempt(folder, replica)
            replica.session_id = None
            replica.status = ReplicaStatus.PENDING
            replica.error = replica.started = replica.ended = replica.log = None
            replica.log_partial = False
            replica.submitted = now

    store.update(name, reset)
    _note_active(store, name)
    names = {index: run.replica(index).name for index in indices}
    outcomes = await create_replicas_by_index(
        client, spec, names, run.spec.replicas, concurrency=concurrency
    )
    return store.update(name, lambda current: _apply_outcomes(current, outcomes))


async def delete_run(name: str, client: SkahaClient, store: RunStore) -> list[str]:
    """Delete the run's sessions (its folder, script, logs and outputs stay).

    Logs not archived yet are saved first (Skaha's and the engine's logs go with the session);
    replicas that had not ended are recorded as Failed, deleted by the user.
    """
    run = store.get(name)
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
    now = _now()

    def record(current: Run) -> None:
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


# ------------------------------------------------------------------ helpers


def _notebook_path(notebook: str) -> Path:
    path = Path(os.path.abspath(Path(notebook).expanduser()))
    if not path.is_file():
        raise LaunchRefused(f"no notebook at {path}")
    return path


def _problems(notebook: Path, parameters: dict[str, object]) -> list[ExportProblem]:
    try:
        return check_notebook(notebook, parameters=parameters or None)
    except ExportError as error:
        raise LaunchRefused(str(error)) from None


def _refusal(notebook: Path, problems: list[ExportProblem]) -> str:
    more = len(problems) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"cannot run {notebook.name} as batch: {problems[0]}{tail}"


def _script_name(notebook: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", notebook.stem).strip("._-")
    stem = stem if stem and stem != "canfar_runner" else "notebook"
    return f"{stem}.py"


async def _active_session_names(client: SkahaClient | None) -> set[str]:
    if client is None:
        return set()
    sessions = await client.list_sessions()
    return {s.name for s in sessions if s.name and s.status.value in _LIVE}


_LIVE = ("Pending", "Running", "Terminating")


def _choose_name(store: RunStore, notebook: Path, request: LaunchRequest, active: set[str]) -> str:
    def free(candidate: str) -> bool:
        names = {candidate, *replica_names(candidate, request.replicas)}
        return not store.exists(candidate) and not (names & active)

    if request.name is not None:
        if not free(request.name):
            raise RunNameInUse(
                f"the run name {request.name!r} is in use (a run folder or live sessions)"
            )
        return request.name
    base = base_name(notebook)
    for suffix in range(1, MAX_SUFFIX + 1):
        candidate = base if suffix == 1 else f"{base}-{suffix}"
        if free(candidate):
            return candidate
    raise RunNameInUse(f"no free run name left for {base!r}; pass a name")


def _run_env(request: LaunchRequest, folder: Path, name: str) -> dict[str, str]:
    env = dict(request.env)
    if request.cores is not None:
        env.setdefault("OMP_NUM_THREADS", str(request.cores))
    env[RUN_DIR_ENV] = str(folder)
    env[RUN_OUTPUTS_ENV] = str(folder / OUTPUTS_DIR)
    env[RUN_NAME_ENV] = name
    return env


def _env_of(run: Run) -> dict[str, str]:
    env = dict(run.spec.env)
    if run.spec.cores is not None:
        env.setdefault("OMP_NUM_THREADS", str(run.spec.cores))
    env[RUN_DIR_ENV] = run.folder
    env[RUN_OUTPUTS_ENV] = str(Path(run.folder) / OUTPUTS_DIR)
    env[RUN_NAME_ENV] = run.name
    return env


def _apply_outcomes(run: Run, outcomes: list[ReplicaOutcome]) -> None:
    now = _now()
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


def _note_active(store: RunStore, name: str) -> None:
    if store.seen_states is not None:
        store.seen_states[name] = "active"


def _now() -> datetime:
    return datetime.now(timezone.utc)
