"""`canfar-jlab run | rerun | stop`, and the run side of `ps`, `logs` and `delete`.

`run NOTEBOOK -r N --follow` launches a run (canfar_jlab.runs), then prints every replica's
log lines prefixed by its replica number (`[3] ...`) on stdout, progress on stderr while it
waits ("3/10 Running, 2 Pending"), and a summary table at the end. Exit codes: 0 every replica
completed; 1 a replica failed or was not created; 2 the launch was refused (bad input, cells
that need a person); 3 credentials; 4 no such run or session; 5 the service failed.
`ps`, `logs` and `delete` (cli/sessions.py) call the helpers below when given a run name.
Every verb that takes a run also takes a replica name (`RUN-3`) or a session id. The work is
the run service's (canfar_jlab.runs.RunService), the same the server and the magic call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from ..launch_args import LaunchArgsError, add_launch_options, add_rerun_options, launch_request
from ..logdelta import lines_of
from ..models import Run, explain
from ..runs import (
    LaunchRefused,
    NothingToRerun,
    RunService,
    Target,
)
from ..runs.sizing import TooLarge
from ..statuses import SHOWN_ORDER
from .common import EXIT_FAILURE, EXIT_REFUSED, CliError, run_with_service, write_session_log

PROGRESS_EVERY = 10.0  # seconds between progress lines when nothing changes
_FILES_SHOWN = 5  # new files listed per replica; the rest counted (run.json has them all)


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
    add_rerun_options(rerun)
    rerun.add_argument("-f", "--follow", action="store_true", help="follow them until they end")
    rerun.add_argument("--json", action="store_true", help="print the run as JSON")
    rerun.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    rerun.set_defaults(func=rerun_command)

    stop = subparsers.add_parser(
        "stop",
        help="stop a run's replicas (or one replica: RUN-3); its record and logs stay",
    )
    stop.add_argument("targets", metavar="RUN", nargs="+")
    stop.add_argument("--json", action="store_true", help="print the run(s) as JSON")
    stop.set_defaults(func=stop_command)


# ------------------------------------------------------------------ handlers


def run_command(args: argparse.Namespace) -> int:
    try:
        request = launch_request(args.notebook, args)
    except LaunchArgsError as error:
        raise CliError(str(error), EXIT_REFUSED) from None
    except ValidationError as error:
        raise CliError(explain(error), EXIT_REFUSED) from None

    async def work(service: RunService) -> int:
        try:
            run = await service.launch(request)
        except LaunchRefused as error:  # issue 12: every problem, each on its own line
            if args.json:
                print(json.dumps([p.model_dump(mode="json") for p in error.problems], indent=1))
            raise CliError("\n".join(error.lines()), EXIT_REFUSED) from None
        for warning in run.warnings:
            _say(warning)
        if args.json and not args.follow:
            print(json.dumps(run_json(run), indent=1))
            return _exit_code(run)
        _say(
            f"run {run.name}: {run.spec.replicas} replica(s) of {Path(run.notebook).name} "
            f"on {service.service_name}, image {run.spec.image}\n"
            f"folder {run.folder}"
        )
        if run.staged is not None:  # issue 16: the replicas run from CANFAR storage
            _say(f"staged to {run.staged.folder}; outputs stay in {run.staged.outputs}")
        for replica in run.replicas:
            if replica.error:
                _say(f"[{replica.index}] not created: {replica.error}")
        if args.follow:
            run = await _follow(service, run.name, args.interval)
        print(run_summary(run) if not args.json else json.dumps(run_json(run)))
        return _exit_code(run) if args.follow else (EXIT_FAILURE if run.state == "failed" else 0)

    return run_with_service(work)


def rerun_command(args: argparse.Namespace) -> int:
    source = "notebook" if args.from_notebook else "snapshot"
    if not (args.failed or args.more_memory):
        raise CliError("rerun: add --failed or --more-memory (which replicas to run again)", 2)

    async def work(service: RunService) -> int:
        name = (await resolve_run(service, args.run_name)).name
        before = service.store.get(name)
        if source == "snapshot" and service.notebook_changed(name):
            _say(
                f"note: {before.notebook} changed since run {name} was launched; running the "
                "launch snapshot again (--from-notebook runs the notebook as saved now)"
            )
        try:
            run = await service.rerun(name, source=source, more_memory=args.more_memory)
        except TooLarge as error:  # more memory than the service offers: refused
            raise CliError(str(error), EXIT_REFUSED) from None
        except NothingToRerun as error:
            if args.more_memory:  # asked for something that cannot be done: refused
                raise CliError(str(error), EXIT_REFUSED) from None
            _say(str(error))
            return 0
        again = [
            r.index for r in run.replicas if len(r.attempts) > len(before.replica(r.index).attempts)
        ]
        what = "the notebook as saved now" if source == "notebook" else "the launch snapshot"
        if args.more_memory:
            what += ", with more memory: " + ", ".join(
                f"{index}: {run.replica(index).ram} GB" for index in again
            )
        if not again and run.reduce is not None:
            _say(f"run {run.name}: running its reduce step again ({what})")
        else:
            _say(f"run {run.name}: running replica(s) {', '.join(map(str, again))} again ({what})")
        for index in again:
            if run.replica(index).error:
                _say(f"[{index}] not created: {run.replica(index).error}")
        if args.follow:
            run = await _follow(service, run.name, args.interval, indices=again)
        print(run_summary(run) if not args.json else json.dumps(run_json(run)))
        return _exit_code(run) if args.follow else 0

    return run_with_service(work)


def stop_command(args: argparse.Namespace) -> int:
    async def work(service: RunService) -> int:
        stopped = []
        for text in args.targets:
            target = await service.resolve(text, sessions=False)
            assert target.run is not None
            run = await service.stop(target.run.name, target.indices)
            stopped.append(run)
            if not args.json:
                which = f"replica {target.index} of run" if target.index else "run"
                print(
                    f"stopped {which} {run.name}: {progress(run)}; its record and logs stay "
                    f"in {run.folder}"
                )
        if args.json:
            print(json.dumps([run_json(run) for run in stopped], indent=1))
        return 0

    return run_with_service(work)


# ------------------------------------------------------------------ used by ps, logs, delete


async def resolve_run(service: RunService, text: str) -> Run:
    """The run that `text` (run, replica or session of a run) names."""
    target = await service.resolve(text, sessions=False)
    assert target.run is not None
    return target.run


def run_json(run: Run) -> dict:
    """A run as `ps --json`, REST and run.json give it."""
    return run.model_dump(mode="json")


def runs_table(runs: Sequence[Run]) -> str:
    """Each run on one line, then its replicas, indented."""
    lines = []
    for run in runs:
        created = run.created.strftime("%Y-%m-%d %H:%M")
        took = f"  took {_duration(run.duration_seconds)}" if run.duration_seconds else ""
        lines.append(
            f"RUN {run.name}  {run.state}  {progress(run)}  created {created} UTC{took}  "
            f"{run.notebook}"
        )
        lines.append(replicas_table(run, indent="  "))
        made = replica_outputs(run, indent="  ")
        if made:
            lines.append(made)
    return "\n".join(lines)


def replicas_table(run: Run, indent: str = "") -> str:
    rows = [
        ("REPLICA", "NAME", "SESSION", "STATUS", "TRIES", "TIME", "CELL", "PEAK RSS", "LOG / ERROR")
    ]
    for replica in run.steps:  # the reduce step last, once it exists (issue 17)
        note = replica.error or replica.reason or replica.log or ""
        took = (
            _duration((replica.ended - replica.started).total_seconds())
            if replica.started and replica.ended
            else "-"
        )
        cell = replica.cell or {}
        where = f"{cell.get('index')}/{cell.get('total')}" if cell.get("index") else "-"
        rows.append(
            (
                str(replica.index or "reduce"),
                replica.name,
                replica.session_id or "-",
                replica.status.value + (" (OOM?)" if replica.oom else ""),
                str(replica.attempt_count),
                took,
                where,
                _bytes(replica.peak_rss_bytes),
                note,
            )
        )
    return "\n".join(indent + line for line in _table(rows).splitlines())


async def write_target_logs(
    service: RunService,
    target: Target,
    out: TextIO,
    *,
    follow: bool = False,
    interval: float = 2.0,
) -> None:
    """A run's (or one replica's) logs, each line prefixed by its replica number; or follow
    them until they end. A bare session's log as it is."""
    if target.session is not None:
        await write_session_log(
            await service.client(), target.session.id, out, follow=follow, interval=interval
        )
        return
    assert target.run is not None
    if follow:
        await service.follow(
            target.run.name,
            on_line=lambda index, line: _line(out, index, line),
            indices=target.indices,
            interval=interval,
        )
        return
    for shown in await service.logs(target):
        for line in lines_of(shown.text):
            _line(out, shown.replica.index, line)


# ------------------------------------------------------------------ helpers


def progress(run: Run) -> str:
    """`3/10 Running, 2 Pending, 5 Completed`."""
    counts = run.counts
    total = len(run.replicas)
    parts = [f"{counts[s]} {s}" for s in SHOWN_ORDER if counts.get(s)]
    if parts:
        parts[0] = parts[0].replace(" ", f"/{total} ", 1)
    return ", ".join(parts)


def run_summary(run: Run) -> str:
    head = f"run {run.name}: {run.state} ({progress(run)})"
    tail = f"folder {run.folder}\noutputs {Path(run.folder) / 'outputs'}"
    made = replica_outputs(run)
    return f"{head}\n{replicas_table(run)}\n{tail}" + (f"\n{made}" if made else "")


def replica_outputs(run: Run, indent: str = "") -> str:
    """Per replica, its executed notebook and the files it created (relative to the run
    folder), one line each: `replica 2: executed replicas/2/executed.ipynb; files replicas/2/a.fits`
    (not `[2] ...`, which is a replica's log line)."""
    lines = []
    for replica in run.steps:  # the reduce step last
        parts = []
        if replica.executed_notebook:
            parts.append(f"executed {replica.executed_notebook}")
        if replica.files:
            shown = ", ".join(replica.files[:_FILES_SHOWN])
            more = len(replica.files) - _FILES_SHOWN
            parts.append(f"files {shown}" + (f" (+{more} more)" if more > 0 else ""))
        if parts:
            which = f"replica {replica.index}" if replica.index else "reduce step"
            lines.append(f"{indent}{which}: " + "; ".join(parts))
    return "\n".join(lines)


async def _follow(
    service: RunService,
    name: str,
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

    return await service.follow(
        name,
        on_line=lambda index, line: _line(sys.stdout, index, line),
        on_progress=on_progress,
        indices=indices,
        interval=interval,
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _exit_code(run: Run) -> int:
    return 0 if run.state == "completed" else EXIT_FAILURE


def _line(out: TextIO, index: int, line: str) -> None:
    out.write(f"[{index or 'reduce'}] {line}\n")  # 0: the reduce step
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
    "register",
    "replicas_table",
    "resolve_run",
    "run_json",
    "runs_table",
    "write_target_logs",
]
