"""`canfar-jlab run | rerun`, and the run side of `ps`, `logs` and `delete`.

`run NOTEBOOK -r N --follow` launches a run (canfar_jlab.runs), then prints every replica's
log lines prefixed by its replica number (`[3] ...`) on stdout, progress on stderr while it
waits ("3/10 Running, 2 Pending"), and a summary table at the end. Exit codes: 0 every replica
completed; 1 a replica failed or was not created; 2 the launch was refused (bad input, cells
that need a person); 3 credentials; 4 no such run or session; 5 the service failed.
`ps`, `logs` and `delete` (cli/sessions.py) call the helpers below when given a run name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from ..launch_args import LaunchArgsError, add_launch_options, launch_request
from ..models import Run, Session, explain
from ..runs import (
    LaunchRefused,
    NothingToRerun,
    RunError,
    RunNameInUse,
    RunNotFound,
    RunStore,
    delete_run,
    follow_run,
    reconcile,
    rerun_failed,
    service_of,
)
from ..runs.follow import shown_lines
from ..skaha import SkahaClient
from . import CliError
from .sessions import EXIT_FAILURE, EXIT_NOT_FOUND, run_with_client

EXIT_REFUSED = 2
PROGRESS_EVERY = 10.0  # seconds between progress lines when nothing changes
_STATUS_ORDER = (
    "Running",
    "Pending",
    "Terminating",
    "Completed",
    "Failed",
    "Unknown",
    "NotCreated",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a notebook as N batch replicas",
        description="Export NOTEBOOK and run it as N batch replicas; each gets REPLICA_ID "
        "(1..N) and REPLICA_COUNT. The run folder (under $CANFAR_JLAB_RUNS, default "
        "~/canfar-runs) keeps the script, run.json, logs/ and outputs/.",
    )
    run.add_argument("notebook", metavar="NOTEBOOK")
    add_launch_options(run)
    run.add_argument(
        "-f", "--follow", action="store_true", help="print the logs until every replica ends"
    )
    run.add_argument("--json", action="store_true", help="print the run as JSON")
    run.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    run.set_defaults(func=run_command)

    rerun = subparsers.add_parser("rerun", help="run a run's failed replicas again")
    rerun.add_argument("run_name", metavar="RUN")
    rerun.add_argument(
        "--failed",
        action="store_true",
        required=True,
        help="only the Failed and NotCreated replicas, with their own REPLICA_ID",
    )
    rerun.add_argument("-f", "--follow", action="store_true", help="follow them until they end")
    rerun.add_argument("--json", action="store_true", help="print the run as JSON")
    rerun.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    rerun.set_defaults(func=rerun_command)


# ------------------------------------------------------------------ handlers


def run_command(args: argparse.Namespace) -> int:
    try:
        request = launch_request(args.notebook, args)
    except LaunchArgsError as error:
        raise CliError(str(error), EXIT_REFUSED) from None
    except ValidationError as error:
        raise CliError(explain(error), EXIT_REFUSED) from None
    from ..runs.launcher import launch  # the exporter is slow to import: only when launching

    store = RunStore()

    async def work(client: SkahaClient) -> int:
        run = await launch(request, client, store)
        if args.json and not args.follow:
            print(json.dumps(run.model_dump(mode="json"), indent=1))
            return _exit_code(run)
        _say(
            f"run {run.name}: {run.spec.replicas} replica(s) of {Path(run.notebook).name} "
            f"on {client.credentials.service_name}, image {run.spec.image}\n"
            f"folder {run.folder}"
        )
        if run.staged is not None:  # issue 16: the replicas run from CANFAR storage
            _say(f"staged to {run.staged.folder}; outputs stay in {run.staged.outputs}")
        for replica in run.replicas:
            if replica.error:
                _say(f"[{replica.index}] not created: {replica.error}")
        if args.follow:
            run = await _follow(run.name, client, store, args.interval)
        print(run_summary(run) if not args.json else json.dumps(run.model_dump(mode="json")))
        return _exit_code(run) if args.follow else (EXIT_FAILURE if run.state == "failed" else 0)

    return _run(work)


def rerun_command(args: argparse.Namespace) -> int:
    store = RunStore()

    async def work(client: SkahaClient) -> int:
        before = store.get(args.run_name)
        again = [r.index for r in before.replicas if r.status.value in ("Failed", "NotCreated")]
        try:
            run = await rerun_failed(args.run_name, client, store)
        except NothingToRerun as error:
            _say(str(error))
            return 0
        _say(f"run {run.name}: running replica(s) {', '.join(map(str, again))} again")
        for index in again:
            if run.replica(index).error:
                _say(f"[{index}] not created: {run.replica(index).error}")
        if args.follow:
            run = await _follow(run.name, client, store, args.interval, indices=again)
        print(run_summary(run) if not args.json else json.dumps(run.model_dump(mode="json")))
        return _exit_code(run) if args.follow else 0

    return _run(work)


# ------------------------------------------------------------------ used by ps, logs, delete


def find_run(name: str, store: RunStore | None = None) -> Run | None:
    """The run called `name` in the store, or None (then `name` may be a session id)."""
    try:
        return (store or RunStore()).get(name)
    except RunNotFound:
        return None


async def runs_and_sessions(
    client: SkahaClient, include_ended: bool, store: RunStore | None = None
) -> tuple[list[Run], list[Session], dict[str, tuple[str, int]]]:
    """This service's reconciled runs (active ones unless `include_ended`), every session,
    and which run owns which session."""
    store = store or RunStore()
    sessions = await client.list_sessions()
    reconciled = await reconcile(store, sessions, client)
    service = service_of(client)  # runs on another service cannot be checked from here
    runs = [
        run
        for run in reconciled.runs
        if run.service == service and (include_ended or run.state == "active")
    ]
    return runs, sessions, reconciled.owners


def runs_table(runs: Sequence[Run]) -> str:
    """Each run on one line, then its replicas, indented."""
    lines = []
    for run in runs:
        created = run.created.strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"RUN {run.name}  {run.state}  {progress(run)}  created {created} UTC  {run.notebook}"
        )
        lines.append(replicas_table(run, indent="  "))
    return "\n".join(lines)


def replicas_table(run: Run, indent: str = "") -> str:
    rows = [("REPLICA", "NAME", "SESSION", "STATUS", "LOG / ERROR")]
    for replica in run.replicas:
        note = replica.error or replica.log or ""
        rows.append(
            (
                str(replica.index),
                replica.name,
                replica.session_id or "-",
                replica.status.value,
                note,
            )
        )
    return "\n".join(indent + line for line in _table(rows).splitlines())


async def write_run_logs(
    client: SkahaClient,
    run: Run,
    out: TextIO,
    *,
    follow: bool = False,
    interval: float = 2.0,
    store: RunStore | None = None,
) -> None:
    """Every replica's log, each line prefixed by its replica number; or follow them."""
    if follow:
        await follow_run(
            run.name,
            client,
            store or RunStore(),
            on_line=lambda index, line: _line(out, index, line),
            interval=interval,
        )
        return
    for replica in run.replicas:
        if replica.log is not None:
            text = (Path(run.folder) / replica.log).read_text(errors="replace")
        elif replica.session_id is not None:
            text = (await client.logs(replica.session_id)).text
        else:
            continue
        for line in shown_lines(text):
            _line(out, replica.index, line)


async def delete_run_verbosely(client: SkahaClient, name: str, out: TextIO) -> None:
    store = RunStore()
    deleted = await delete_run(name, client, store)
    shown = ", ".join(deleted) if deleted else "none left"
    out.write(f"deleted run {name}: sessions {shown}; its folder stays: {store.folder(name)}\n")


def run_errors(work: Callable[[], int]) -> int:
    """`work()` with run errors turned into one-line CliErrors."""
    try:
        return work()
    except (LaunchRefused, RunNameInUse) as error:
        raise CliError(str(error), EXIT_REFUSED) from None
    except RunNotFound as error:
        raise CliError(str(error), EXIT_NOT_FOUND) from None
    except RunError as error:
        raise CliError(str(error), EXIT_FAILURE) from None


# ------------------------------------------------------------------ helpers


def progress(run: Run) -> str:
    """`3/10 Running, 2 Pending, 5 Completed`."""
    counts = run.counts
    total = len(run.replicas)
    parts = [f"{counts[s]} {s}" for s in _STATUS_ORDER if counts.get(s)]
    if parts:
        parts[0] = parts[0].replace(" ", f"/{total} ", 1)
    return ", ".join(parts)


def run_summary(run: Run) -> str:
    head = f"run {run.name}: {run.state} ({progress(run)})"
    tail = f"folder {run.folder}\noutputs {Path(run.folder) / 'outputs'}"
    return f"{head}\n{replicas_table(run)}\n{tail}"


async def _follow(
    name: str,
    client: SkahaClient,
    store: RunStore,
    interval: float,
    indices: Sequence[int] | None = None,
) -> Run:
    started = time.monotonic()
    last: dict[str, object] = {"text": None, "at": 0.0}

    def on_progress(run: Run) -> None:
        text = progress(run)
        now = time.monotonic()
        if text != last["text"] or now - float(last["at"]) >= PROGRESS_EVERY:  # type: ignore[arg-type]
            _say(f"[{run.name}] {text} ({now - started:.0f} s)")
            last.update(text=text, at=now)

    return await follow_run(
        name,
        client,
        store,
        on_line=lambda index, line: _line(sys.stdout, index, line),
        on_progress=on_progress,
        indices=indices,
        interval=interval,
    )


def _run(work: Callable[[SkahaClient], Awaitable[int | None]]) -> int:
    def go() -> int:
        try:
            return run_with_client(work)
        except KeyboardInterrupt:
            raise CliError(
                "interrupted; the replicas keep running (`canfar-jlab logs RUN -f` follows "
                "them again)",
                130,
            ) from None

    return run_errors(go)


def _exit_code(run: Run) -> int:
    return 0 if run.state == "completed" else EXIT_FAILURE


def _line(out: TextIO, index: int, line: str) -> None:
    out.write(f"[{index}] {line}\n")
    out.flush()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


__all__ = [
    "delete_run_verbosely",
    "find_run",
    "register",
    "replicas_table",
    "run_errors",
    "runs_and_sessions",
    "runs_table",
    "write_run_logs",
]
