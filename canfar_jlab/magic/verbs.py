"""The work behind each `%canfar` verb, as coroutines that take a connected client.

They run on the magic's private loop (`loop.py`) and hand what is to be shown to `emit`:
a `str` is printed as it is, a view (`views.py`) is displayed. Runs are read and written
through `canfar_jlab.runs` only, in the same RunStore the server extension and the CLI use,
so what is launched here appears in the sidebar and in `canfar-jlab ps`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from ..launch_args import LaunchArgsError, launch_request
from ..models import ReplicaOutcome, Run, Session, SessionSpec, explain
from ..runs import (
    RunStore,
    follow_run,
    launch,
    reconcile,
    rerun_failed,
    resolve_image,
    service_of,
)
from ..runs import delete_run as delete_run_sessions
from ..skaha import InvalidRequest, NotFound, SkahaClient, open_client
from . import views
from .loop import Emit
from .options import UsageError, parse_env

T = TypeVar("T")
_REPLICA = re.compile(r"^(?P<run>[a-z0-9][a-z0-9-]*)-(?P<index>[0-9]+)$")


async def with_client(work: Callable[[SkahaClient], Awaitable[T]]) -> T:
    """Open a client from the usual credentials (env, ~/.canfar/config.yaml, certificate, else
    the local engine, started on demand), run `work`, close it."""
    client = await open_client()
    async with client:
        return await work(client)


# ------------------------------------------------------------------ targets


@dataclass
class Target:
    """What a RUN_OR_SESSION argument names: a run (or one replica of it), or a session."""

    run: Run | None = None
    index: int | None = None
    session: Session | None = None

    def replicas(self) -> list[Any]:
        assert self.run is not None
        return [r for r in self.run.replicas if self.index is None or r.index == self.index]


async def find_target(
    text: str, client: SkahaClient, store: RunStore, *, replicas: bool = True
) -> Target:
    """A run name, `RUN-<i>` (replica i of a run, when `replicas`), or a session id."""
    if store.exists(text):
        return Target(run=same_service(store.get(text), client))
    match = _REPLICA.match(text) if replicas else None
    if match and store.exists(match["run"]):
        run = store.get(match["run"])
        index = int(match["index"])
        if 1 <= index <= len(run.replicas):
            return Target(run=same_service(run, client), index=index)
    try:
        return Target(session=await client.get_session(text))
    except (NotFound, InvalidRequest):
        raise UsageError(
            f"no run named {text[:80]!r} in {store.root} and no session with that id on "
            f"{client.credentials.service_name}"
        ) from None


def same_service(run: Run, client: SkahaClient) -> Run:
    """The run, if its sessions live where the client points (else nothing can reach them)."""
    if run.service != service_of(client) and run.site is None:  # a site run: core switches
        raise UsageError(
            f"run {run.name} lives on {run.service}, but this kernel's credentials point at "
            f"{client.credentials.service_name}"
        )
    return run


async def fresh(client: SkahaClient, store: RunStore) -> tuple[list[Session], list[Run]]:
    """One listing of the service, with every run of this service brought up to date."""
    sessions = await client.list_sessions()
    reconciled = await reconcile(store, sessions, client)
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
    return await launch(request, client, store)


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
    return await follow_run(
        name, client, store, on_line=on_line, indices=indices, interval=interval
    )


def ended(run: Run) -> views.Report:
    return views.Report([views.replicas_table(run)])


async def rerun(name: str, client: SkahaClient, store: RunStore) -> tuple[Run, list[int]]:
    """Run the failed replicas of `name` again; the run and the REPLICA_IDs re-run."""
    tries = {r.index: len(r.attempts) for r in same_service(store.get(name), client).replicas}
    run = await rerun_failed(name, client, store)
    return run, [r.index for r in run.replicas if len(r.attempts) > tries.get(r.index, 0)]


# ------------------------------------------------------------------ reading


async def ps(args: argparse.Namespace, client: SkahaClient, store: RunStore) -> views.Report:
    sessions, runs = await fresh(client, store)
    service = service_of(client)
    if args.run:
        target = await find_target(args.run, client, store, replicas=False)
        if target.run is None:
            raise UsageError(f"no run named {args.run!r} in {store.root}")
        return ended(store.get(target.run.name))
    here = [run for run in runs if run.service == service]
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
    await fresh(client, store)
    run = store.get(target.run.name)
    chosen = [r for r in Target(run=run, index=index or target.index).replicas()]
    for replica in chosen:
        if len(chosen) > 1:
            status = replica.status.value + (f": {replica.error}" if replica.error else "")
            emit(f"==> replica {replica.index} ({replica.name}, {status}) <==\n")
        if replica.log is not None and not replica.log_partial:
            text = _read(Path(run.folder) / replica.log)
        elif replica.session_id is not None:
            try:
                text = (await client.logs(replica.session_id)).text
            except NotFound:
                text = "(the service no longer has this log)\n"
        else:
            text = f"(not created: {replica.error or 'no session'})\n"
        emit(_with_newline(text))


async def events(target: Target, client: SkahaClient, emit: Emit) -> None:
    if target.session is not None:
        emit(_with_newline(await client.events(target.session.id) or "(no events)"))
        return
    for replica in target.replicas():
        emit(f"==> replica {replica.index} ({replica.name}) <==\n")
        if replica.session_id is None:
            emit("(no session)\n")
            continue
        try:
            text = await client.events(replica.session_id)
        except NotFound:
            text = "(the session is gone)"
        emit(_with_newline(text or "(no events)"))


async def delete(targets: list[str], client: SkahaClient, store: RunStore) -> views.Report:
    notes = []
    for text in targets:
        target = await find_target(text, client, store, replicas=False)
        if target.run is not None:
            deleted = await delete_run_sessions(target.run.name, client, store)
            notes.append(
                views.Note(
                    f"deleted run {target.run.name}: {len(deleted)} session(s); "
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


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read {path}: {error.strerror})\n"
