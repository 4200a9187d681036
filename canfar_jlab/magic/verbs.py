"""The work behind each `%canfar` verb, as coroutines that take a connected client.

They run on the magic's private loop (`loop.py`) and hand what is to be shown to `emit`:
a `str` is printed as it is, a view (`views.py`) is displayed. Runs are read and written
through the run service (`canfar_jlab.runs.RunService`) only, in the same runs root the server
extension and the CLI use, so what is launched here appears in the sidebar and in
`canfar-jlab ps`. This module only parses and renders.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from ..launch_args import LaunchArgsError, launch_request
from ..logdelta import lines_of
from ..models import ReplicaOutcome, Run, Session, SessionSpec, explain
from ..runs import (
    Connection,
    NoMatch,
    RunService,
    RunStore,
    resolve_image,
    service_of,
)
from ..runs import Target as Target
from ..skaha import SkahaClient
from . import views
from .loop import Emit
from .options import UsageError, parse_env

T = TypeVar("T")


async def with_client(work: Callable[[SkahaClient], Awaitable[T]]) -> T:
    """Open a connection from the usual credentials (env, ~/.canfar/config.yaml, certificate,
    else the local engine, started on demand, found again if it restarts), run `work`, close
    it."""
    async with Connection() as connection:
        await connection.connect()
        return await work(connection)  # type: ignore[arg-type]


# ------------------------------------------------------------------ targets


async def find_target(
    text: str, client: SkahaClient, store: RunStore, *, replicas: bool = True
) -> Target:
    """A run name, `RUN-<i>` (replica i of a run), or a session id."""
    try:
        return await RunService(store, client).resolve(text)
    except NoMatch as error:
        raise UsageError(str(error)) from None


async def fresh(client: SkahaClient, store: RunStore) -> tuple[list[Session], list[Run]]:
    """One listing of the service, with every run of this service brought up to date."""
    sessions, reconciled = await RunService(store, client).refresh()
    return sessions, reconciled.runs


# ------------------------------------------------------------------ launching


async def launch_notebook(
    notebook: Path, args: argparse.Namespace, client: SkahaClient, store: RunStore
) -> Run:
    try:
        request = launch_request(str(notebook), args)
    except LaunchArgsError as error:
        raise UsageError(str(error)) from None
    except ValidationError as error:
        raise UsageError(explain(error)) from None
    return await RunService(store, client).launch(request)


def launched(run: Run, client: SkahaClient, *, following: bool) -> views.Report:
    created = sum(1 for r in run.replicas if r.session_id)
    headline = (
        f"launched run {run.name}: {created} of {len(run.replicas)} replica(s) created on "
        f"{client.credentials.service_name}"
    )
    hint = None if following else f"follow with: %canfar logs {run.name} -f"
    headline += f", image {run.spec.image}"  # issue 16: the default may be the session's own
    if run.staged is not None:  # issue 16: copied to CANFAR storage; outputs stay there
        headline += f"; staged to {run.staged.folder}, outputs in {run.staged.outputs}"
    return views.run_report(run, headline, hint)


def relaunched(
    run: Run, indices: Sequence[int], client: SkahaClient, *, following: bool
) -> views.Report:
    replicas = ", ".join(str(index) for index in indices)
    headline = (
        f"run {run.name}: replica(s) {replicas} relaunched on {client.credentials.service_name}"
    )
    hint = None if following else f"follow with: %canfar logs {run.name} -f"
    return views.run_report(run, headline, hint)


async def run_command(
    command: list[str], args: argparse.Namespace, client: SkahaClient
) -> views.Report:
    """`%canfar run -- CMD ARGS`: N sessions running a command (no run folder: see the docs)."""
    image = await resolve_image(args.image, client)
    env = parse_env(args.env)
    if args.cores is not None:
        env.setdefault("OMP_NUM_THREADS", str(args.cores))
    try:
        spec = SessionSpec(
            name=args.name or command_name(command[0]),
            image=image,
            cores=args.cores,
            ram=args.ram,
            gpus=args.gpus,
            cmd=command[0],
            args=command[1:],
            env=env,
        )
    except ValidationError as error:
        raise UsageError(explain(error)) from None
    outcomes: Sequence[ReplicaOutcome] = await client.create_replicas(spec, args.replicas)
    created = [o for o in outcomes if o.session_id]
    title = (
        f"{len(created)} of {len(outcomes)} session(s) named {spec.name} created on "
        f"{client.credentials.service_name}"
    )
    parts: list[views.Note | views.Table] = [views.outcomes_table(outcomes, title)]
    if created:
        parts.append(views.Note(f"follow with: %canfar logs {created[0].session_id} -f"))
    return views.Report(parts)


def command_name(cmd: str) -> str:
    """A session name from a command: `/usr/bin/python3` -> `python3`."""
    name = re.sub(r"[^a-z0-9]+", "-", Path(cmd).name.lower()).strip("-")[:50].strip("-")
    return name or "job"


# ------------------------------------------------------------------ following


def line_printer(emit: Emit, run: Run, indices: Sequence[int] | None) -> Callable[[int, str], None]:
    """Lines of several replicas get a `[i]` prefix; one replica's lines are printed as is."""
    followed = len(indices) if indices is not None else len(run.replicas)
    if followed == 1:
        return lambda index, line: emit(line + "\n")
    return lambda index, line: emit(f"[{index}] {line}\n")


async def follow(
    name: str,
    client: SkahaClient,
    store: RunStore,
    emit: Emit,
    *,
    interval: float,
    indices: Sequence[int] | None = None,
) -> Run:
    run = store.get(name)
    on_line = line_printer(emit, run, indices)
    return await RunService(store, client).follow(
        name, on_line=on_line, indices=indices, interval=interval
    )


def ended(run: Run) -> views.Report:
    return views.Report([views.replicas_table(run)])


async def rerun(
    name: str,
    client: SkahaClient,
    store: RunStore,
    emit: Emit,
    *,
    source: str = "snapshot",
    more_memory: bool = False,
) -> tuple[Run, list[int]]:
    """Run the failed replicas of `name` (or of the run a replica or session belongs to)
    again; the run and the REPLICA_IDs re-run."""
    service = RunService(store, client)
    target = await find_target(name, client, store)
    if target.run is None:
        raise UsageError(f"{name!r} is a session outside any run: nothing to re-run")
    name = target.run.name
    tries = {r.index: len(r.attempts) for r in target.run.replicas}
    if source == "snapshot" and service.notebook_changed(name):
        emit(
            f"note: {target.run.notebook} changed since run {name} was launched; running the "
            "launch snapshot again (--from-notebook runs the notebook as saved now)\n"
        )
    run = await service.rerun(name, source=source, more_memory=more_memory)
    return run, [r.index for r in run.replicas if len(r.attempts) > tries.get(r.index, 0)]


async def stop(targets: list[str], client: SkahaClient, store: RunStore) -> views.Report:
    """End runs' (or single replicas') sessions; their records and logs stay."""
    service = RunService(store, client)
    notes = []
    for text in targets:
        target = await find_target(text, client, store)
        if target.run is None:
            raise UsageError(f"{text!r} is a session outside any run: use %canfar delete")
        run = await service.stop(target.run.name, target.indices)
        which = f"replica {target.index} of run" if target.index else "run"
        notes.append(
            views.Note(f"stopped {which} {run.name} ({run.state}); its logs stay in {run.folder}")
        )
    return views.Report(list(notes))


# ------------------------------------------------------------------ reading


async def ps(args: argparse.Namespace, client: SkahaClient, store: RunStore) -> views.Report:
    service = RunService(store, client)
    sessions, reconciled = await service.refresh()
    runs = reconciled.runs
    service_name = service_of(client)
    if args.run:
        target = await find_target(args.run, client, store)
        if target.run is None:
            assert target.session is not None
            return views.Report([views.sessions_table([target.session], title="Session")])
        return ended(await service.get(target.run.name))  # from its own site (issue 16)
    here = [run for run in runs if run.service == service_name]
    shown = [run for run in here if args.all or run.state == "active"]
    owners = {
        session_id: f"{run.name} #{replica.index}"
        for run in here
        for replica in run.replicas
        for session_id in (replica.session_id, *(a.session_id for a in replica.attempts))
        if session_id
    }
    listed = [s for s in sessions if args.all or s.status.is_active]
    never = datetime.max.replace(tzinfo=timezone.utc)
    listed.sort(key=lambda s: (s.start_time or never, s.name or "", s.id))
    which = "" if args.all else "active "
    parts: list[views.Note | views.Table] = [
        views.runs_table(shown, title=f"Runs ({which}in {store.root})"),
        views.sessions_table(
            listed,
            title=f"Sessions ({which}on {client.credentials.service_name})",
            owners=owners,
        ),
    ]
    elsewhere = len(runs) - len(here)
    if elsewhere:
        parts.append(views.Note(f"{elsewhere} run(s) on other session services are not shown"))
    return views.Report(parts)


async def logs(
    target: Target, client: SkahaClient, store: RunStore, emit: Emit, index: int | None
) -> None:
    """Print a run's (or a replica's, or a session's) log as it is now."""
    if target.session is not None:
        emit(_with_newline((await client.logs(target.session.id)).text))
        return
    assert target.run is not None
    chosen = Target(run=target.run, index=index or target.index)
    shown = await RunService(store, client).logs(chosen)
    for each in shown:
        replica = each.replica
        if len(shown) > 1:
            status = replica.status.value + (f": {replica.error}" if replica.error else "")
            which = f"replica {replica.index}" if replica.index else "reduce step"
            emit(f"==> {which} ({replica.name}, {status}) <==\n")
        if each.source == "none":
            text = f"(not created: {replica.error or 'no session'})\n"
        else:  # a progress bar's states as plain lines
            text = "".join(line + "\n" for line in lines_of(each.text))
        emit(_with_newline(text))


async def events(target: Target, client: SkahaClient, store: RunStore, emit: Emit) -> None:
    shown = await RunService(store, client).events(target)  # from the run's own site
    if target.session is not None:
        emit(_with_newline(shown[0][1] or "(no events)"))
        return
    for replica, text in shown:
        which = f"replica {replica.index}" if replica.index else "reduce step"
        emit(f"==> {which} ({replica.name}) <==\n")
        emit("(no session)\n" if text is None else _with_newline(text or "(no events)"))


async def delete(targets: list[str], client: SkahaClient, store: RunStore) -> views.Report:
    service = RunService(store, client)
    notes = []
    for text in targets:
        target = await find_target(text, client, store)
        if target.run is not None:
            deleted = await service.delete(target.run.name, target.indices)
            which = f"replica {target.index} of run" if target.index else "run"
            notes.append(
                views.Note(
                    f"deleted {which} {target.run.name}: {len(deleted)} session(s); "
                    f"its folder stays: {target.run.folder}"
                )
            )
        else:
            assert target.session is not None
            await client.delete(target.session.id)
            notes.append(views.Note(f"deleted session {target.session.id}"))
    return views.Report(list(notes))


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"
