"""Launching a run: notebook checks, a unique name, the run folder, N replicas.

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
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import sweep as sweeps
from ..errors import LaunchRefused, RunError, RunNameInUse
from ..export import (
    RUNNER_NAME,
    SNAPSHOT_NAME,
    ExportError,
    ExportProblem,
    errors,
    export_notebook,
    missing_kernel,
    reduce_cells,
)
from ..models import (
    RUN_NAME_MAX,
    LaunchRequest,
    Replica,
    ReplicaStatus,
    Run,
    RunSpec,
    SessionSpec,
    StagedRun,
    explain,
    replica_names,
)
from ..skaha import SkahaClient
from . import lease
from .actions import (
    create_missing,
    note_active,
    replica_env,
    secret_values,
    session_spec,
    utc_now,
)
from .conductor import conducts, first_wave, start_conductor, waiting_reason
from .reconciler import service_of
from .sites import same_site, session_image, site_client
from .snapshot import check_problems as _problems
from .snapshot import headline as _headline
from .snapshot import notebook_path as _notebook_path
from .snapshot import refusal as _refusal
from .snapshot import replica_python
from .snapshot import script_name as _script_name
from .staging import plan_staging, stage, staged_preview
from .store import LOGS_DIR, OUTPUTS_DIR, RunStore, check_path_safe

IMAGE_ENV = "CANFAR_JLAB_IMAGE"
MAX_SUFFIX = 999
SECRET_SHOWN = "(secret)"  # noqa: S105 - what a preview shows for a --secret-env value
_BASE_MAX = RUN_NAME_MAX - 4  # room for "-999"


class PreviewReplica(BaseModel):
    index: int
    name: str
    env: dict[str, str]
    parameters: dict[str, Any] | None = None  # this replica's sweep row (over the run's)
    waiting: str | None = None  # issue 17: not created at launch, and why


class Preview(BaseModel):
    """What `launch` would do with a request; nothing is created to find out."""

    name: str
    folder: str
    image: str | None
    problems: list[ExportProblem]
    replicas: list[PreviewReplica]
    argv: list[str]
    # Issue 17: how the run would be conducted.
    retries: int = 0
    timeout_seconds: int | None = None
    max_running: int | None = None
    pilot: bool = False
    reduce: str | None = None  # the --reduce notebook's file name in the run folder
    sweep: list[dict[str, Any]] | None = None
    staged_folder: str | None = None  # issue 16: the /arc folder the run would be copied to
    reduce_cells: list[int] = []  # issue 17: code cells tagged reduce (run once, after all)


async def resolve_image(image: str | None, client: SkahaClient) -> str:
    """The requested image, else `$CANFAR_JLAB_IMAGE`, else the image of the Skaha session this
    JupyterLab runs in, else (local engine only) its first image."""
    if image:
        return image
    configured = os.environ.get(IMAGE_ENV, "").strip()
    if configured:
        return configured
    own = await session_image(client)  # issue 16: JupyterLab's own session on CANFAR
    if own:
        return own
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


# ------------------------------------------------------------------ preview and launch


async def preview(
    request: LaunchRequest, store: RunStore, client: SkahaClient | None = None
) -> Preview:
    """Problems, replica names and env, and the command line, as `launch` would make them.

    With a client, the name accounts for live sessions and the image default is resolved.
    Raises LaunchRefused for an unreadable notebook or bad parameters, RunNameInUse for an
    explicit name that is taken.
    """
    if client is not None and not same_site(client, request.site):  # issue 16: --site
        async with site_client(request.site) as there:
            return await preview(request, store, there)
    notebook = _notebook_path(request.notebook)
    request, rows = _with_sweep(request)
    problems = await asyncio.to_thread(_problems, notebook, request.parameters, rows)
    active = await _active_session_names(client) if client is not None else set()
    name = _choose_name(store, notebook, request, active)
    folder = store.root / name
    image = request.image
    if client is not None:
        try:
            image = await resolve_image(request.image, client)
        except LaunchRefused:
            image = None  # the UI asks for one
    conduct = _conduct_spec(request)
    script = _script_name(notebook)
    # The run record launch would write; each replica's env is then the one creating gives it.
    run = planned_run(
        request,
        conduct,
        name=name,
        folder=folder,
        notebook=notebook,
        image=image or "",
        argv=[replica_python(client), str(folder / RUNNER_NAME), str(folder / script)],
        script=script,
        service=service_of(client) if client is not None else "",
        rows=rows,
        now=utc_now(),
    )
    secret = set(request.secret_env)  # their values go to the replicas only
    shown = Preview(
        name=name,
        folder=str(folder),
        image=image,
        problems=problems,
        replicas=[
            PreviewReplica(
                index=replica.index,
                name=replica.name,
                env={
                    key: SECRET_SHOWN if key in secret else value
                    for key, value in replica_env(run, replica).items()
                },
                parameters=replica.parameters,
                waiting=replica.reason if replica.status is ReplicaStatus.WAITING else None,
            )
            for replica in run.replicas
        ],
        retries=conduct.retries,
        timeout_seconds=conduct.timeout_seconds,
        max_running=conduct.max_running,
        pilot=conduct.pilot,
        reduce=conduct.reduce,
        sweep=rows,
        reduce_cells=await asyncio.to_thread(reduce_cells, notebook),
        argv=run.spec.argv,
    )
    plan = await plan_staging(client, store.root) if client is not None else None
    return staged_preview(shown, folder, plan.folder(name)) if plan else shown


async def launch(
    request: LaunchRequest, client: SkahaClient, store: RunStore, *, concurrency: int = 8
) -> Run:
    """Export the notebook into a new run folder and create its replicas; return the Run.

    Raises LaunchRefused (nothing created) when a cell needs a person at a screen, the
    notebook cannot be read, or a value cannot be sent to Skaha; RunNameInUse for a taken
    explicit name; SkahaError when the service cannot even be listed. Once creating starts,
    failures are recorded per replica (NotCreated with the reason) instead of raised.
    """
    if not same_site(client, request.site):  # issue 16: --site, recorded in the run
        async with site_client(request.site) as there:
            return await launch(request, there, store, concurrency=concurrency)
    notebook = _notebook_path(request.notebook)
    request, rows = _with_sweep(request)
    problems = await asyncio.to_thread(_problems, notebook, request.parameters, rows)
    if errors(problems):
        raise LaunchRefused(_refusal(notebook, errors(problems)), problems, _headline(notebook))
    if client.credentials.is_local_engine:  # its replicas run here: the kernel must be here
        missing = await asyncio.to_thread(missing_kernel, notebook)
        if missing:
            raise LaunchRefused(f"cannot run {missing}")
    secret_values(request.secret_env)  # a missing one is refused before the folder is claimed
    conduct = _conduct_spec(request)  # a missing --reduce notebook is refused here too
    try:
        check_path_safe("runs folder", store.root)
    except RunError as error:
        raise LaunchRefused(str(error)) from None
    image = await resolve_image(request.image, client)
    plan = await plan_staging(client, store.root)  # issue 16: refused here when impossible
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
            request, client, notebook, folder, name, image, rows
        )
        staged = None
        if request.reduce_notebook:  # issue 17: the reduce step's own notebook
            shutil.copyfile(_notebook_path(request.reduce_notebook), folder / conduct.reduce)
        if plan is not None:  # copy it where the replicas can read it
            spec, staged = await stage(plan, client, folder, name, spec)
        run = planned_run(
            request,
            conduct,
            name=name,
            folder=folder,
            notebook=notebook,
            image=image,
            argv=[spec.cmd or "", *spec.args],
            script=exported_script,
            service=service_of(client),
            rows=rows,
            now=utc_now(),
            site=client.credentials.site,
            checksum=checksum,
            staged=staged,
            warnings=[str(p) for p in problems if p.severity == "warning"],
        )
        session_spec(run)  # a value the service cannot take is refused now, not at creating
    except (
        LaunchRefused,
        ExportError,
        ValidationError,
        OSError,
        ValueError,
        RecursionError,
    ) as error:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, LaunchRefused):
            raise
        if isinstance(error, ValidationError):
            raise LaunchRefused(f"cannot launch {notebook.name}: {explain(error)}") from None
        if isinstance(error, OSError):
            raise LaunchRefused(f"cannot prepare {folder}: {error.strerror or error}") from None
        raise LaunchRefused(str(error)) from None

    run.launcher = lease.current()
    if run.spec.reduce is None and reduce_cells(folder / SNAPSHOT_NAME):
        run.spec.reduce = "cells"  # issue 17: its reduce cells run once all replicas succeed
    store.write(run)  # every replica's name, and this launch's lease, before the first create
    note_active(store, name)
    first = first_wave(conduct)
    run = await create_missing(name, first, client, store, concurrency=concurrency)
    if conducts(run.spec):  # retried, capped, piloted... even when nobody watches
        start_conductor(folder, client)
    return run


async def _prepare(
    request: LaunchRequest,
    client: SkahaClient,
    notebook: Path,
    folder: Path,
    name: str,
    image: str,
    rows: list[dict[str, Any]] | None = None,
) -> tuple[SessionSpec, str, str]:
    exported = await asyncio.to_thread(
        export_notebook,
        notebook,
        folder,
        parameters=request.parameters or None,
        python=replica_python(client),
        script_name=_script_name(notebook),
        sweep=rows,
    )
    if not exported.ok:  # the notebook changed since it was checked
        failing = errors(exported.problems)
        raise LaunchRefused(_refusal(notebook, failing), exported.problems, _headline(notebook))
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
    )  # only its command is kept (run.spec.argv): the env is session_spec's
    return spec, exported.script_path.name, exported.checksum


# ------------------------------------------------------------------ helpers


def planned_run(
    request: LaunchRequest,
    conduct: RunSpec,
    *,
    name: str,
    folder: Path,
    notebook: Path,
    image: str,
    argv: list[str],
    script: str,
    service: str,
    rows: list[dict[str, Any]] | None,
    now: datetime,
    site: str | None = None,
    checksum: str = "",
    staged: StagedRun | None = None,
    warnings: list[str] | None = None,
) -> Run:
    """The run record a launch request becomes: what `launch` writes and `preview` shows (each
    replica's session spec is then `actions.session_spec`'s). The first wave is submitted
    `now`; a replica held back by a pilot or a cap waits in the run, with the reason."""
    first = first_wave(conduct)
    waiting = waiting_reason(conduct, len(first))
    return Run(
        name=name,
        notebook=str(notebook),
        notebook_sha256=checksum,
        created=now,
        folder=str(folder),
        script=script,
        service=service,
        site=site,
        staged=staged,
        warnings=warnings or [],
        spec=RunSpec(
            image=image,
            cores=request.cores,
            ram=request.ram,
            gpus=request.gpus,
            env=dict(request.env),
            replicas=request.replicas,
            parameters=dict(request.parameters),
            sweep=rows,
            secret_env=list(request.secret_env),
            argv=argv,
            retries=conduct.retries,
            timeout_seconds=conduct.timeout_seconds,
            max_running=conduct.max_running,
            pilot=conduct.pilot,
            reduce=conduct.reduce,
        ),
        replicas=[
            Replica(index=i, name=n, submitted=now, parameters=rows[i - 1] if rows else None)
            if i in first
            else Replica(  # issue 17: held back by a pilot or a cap; the conductor creates it
                index=i,
                name=n,
                status=ReplicaStatus.WAITING,
                reason=waiting,
                parameters=rows[i - 1] if rows else None,
            )
            for i, n in enumerate(replica_names(name, request.replicas), start=1)
        ],
    )


def _with_sweep(request: LaunchRequest) -> tuple[LaunchRequest, list[dict[str, Any]] | None]:
    """The request with its fixed parameters and replica count, and its sweep rows (or None)."""
    try:
        fixed, rows = sweeps.plan(request.parameters, request.sweep, request.sweep_rows)
    except sweeps.SweepError as error:
        raise LaunchRefused(str(error)) from None
    if rows is None:
        return request, None
    replicas = request.replicas if "replicas" in request.model_fields_set else len(rows)
    if replicas > len(rows):
        raise LaunchRefused(f"{replicas} replicas asked for, but the sweep has {len(rows)} rows")
    try:
        changed = request.model_copy(update={"parameters": fixed, "replicas": replicas})
        return LaunchRequest.model_validate(changed.model_dump()), rows
    except ValidationError as error:
        raise LaunchRefused(f"cannot sweep: {explain(error)}") from None


async def _active_session_names(client: SkahaClient | None) -> set[str]:
    if client is None:
        return set()
    sessions = await client.list_sessions()
    return {s.name for s in sessions if s.name and s.status.is_live}


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


def _conduct_spec(request: LaunchRequest) -> RunSpec:
    """Issue 17's options of the request as RunSpec fields (image and argv left empty);
    `reduce` is the file name the --reduce notebook gets in the run folder."""
    reduce = None
    if request.reduce_notebook:
        path = _notebook_path(request.reduce_notebook)
        if path.suffix != ".ipynb":
            raise LaunchRefused(f"--reduce: {path.name} is not a notebook (.ipynb)")
        reduce = f"reduce-{path.name}" if path.name == SNAPSHOT_NAME else path.name
    return RunSpec(
        image="",
        replicas=request.replicas,
        retries=request.retries,
        timeout_seconds=request.timeout_seconds,
        max_running=request.max_running,
        pilot=request.pilot,
        reduce=reduce,
    )
