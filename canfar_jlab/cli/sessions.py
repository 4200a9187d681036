"""`canfar-jlab ps | logs | images | stats | delete`: the session service's read verbs.

`ps`, `logs` and `delete` know runs too (canfar_jlab.runs, helpers in cli/runs.py): `ps` lists
the runs with their replicas, then the sessions outside runs; `logs` and `delete` take a run
name as well as a session id.

The work is in small async functions that take a `SkahaClient`; the handlers only open a
client (cli/common.py), call one and print; failures exit with the code of the one table,
`common.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from ..models import Image, PlatformLoad, Session
from ..runs import RunService, session_json
from ..skaha import SkahaClient
from .common import run_with_client, run_with_service
from .runs import run_json, runs_table, write_target_logs


def register(subparsers: argparse._SubParsersAction) -> None:
    ps = subparsers.add_parser("ps", help="list runs and sessions (active ones unless --all)")
    ps.add_argument(
        "run", metavar="RUN", nargs="?", help="only this run (or replica RUN-3, or session id)"
    )
    ps.add_argument("-a", "--all", action="store_true", help="include finished runs and sessions")
    ps.add_argument(
        "--json",
        action="store_true",
        help="print JSON: the sessions (Skaha's fields, plus run and replica when a run owns "
        "one), or the runs with --runs or RUN",
    )
    ps.add_argument("--runs", action="store_true", help="only runs (with --json: Run objects)")
    ps.set_defaults(func=ps_command)

    logs = subparsers.add_parser(
        "logs", help="print a session's log, or every replica's log of a run ([i] prefixed)"
    )
    logs.add_argument("session_id", metavar="RUN_OR_REPLICA_OR_SESSION")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the session ends")
    logs.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls with -f (default 2)"
    )
    logs.set_defaults(func=logs_command)

    images = subparsers.add_parser("images", help="list the images sessions can use")
    images.add_argument("--type", help="only images of this session type (e.g. headless)")
    images.add_argument("--json", action="store_true", help="print JSON")
    images.set_defaults(func=images_command)

    stats = subparsers.add_parser("stats", help="show the platform's load and capacity")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=stats_command)

    delete = subparsers.add_parser(
        "delete", help="delete sessions, or a run's sessions (its folder stays)"
    )
    delete.add_argument("session_ids", metavar="RUN_OR_REPLICA_OR_SESSION", nargs="+")
    delete.set_defaults(func=delete_command)


# ------------------------------------------------------------------ reusable session logic


def oldest_first(sessions: Sequence[Session]) -> list[Session]:
    never = datetime.max.replace(tzinfo=timezone.utc)
    return sorted(sessions, key=lambda s: (s.start_time or never, s.name or "", s.id))


def sessions_table(sessions: Sequence[Session]) -> str:
    rows = [("ID", "NAME", "STATUS", "TYPE", "STARTED (UTC)", "CPU", "RAM GB", "IMAGE")]
    for s in sessions:
        started = s.start_time.strftime("%Y-%m-%d %H:%M") if s.start_time else "-"
        rows.append(
            (
                s.id,
                s.name or "-",
                s.status.value,
                s.type or "-",
                started,
                _figure(s.cores_in_use),
                _figure(s.ram_in_use_gb),
                s.image or "-",
            )
        )
    return _table(rows)


def sessions_json(sessions: Sequence[Session]) -> str:
    return json.dumps([s.model_dump(mode="json", exclude_none=True) for s in sessions], indent=2)


def images_table(images: Sequence[Image]) -> str:
    rows = [("IMAGE", "TYPES")]
    rows += [(image.id, ",".join(sorted(image.types)) or "-") for image in images]
    return _table(rows)


def stats_text(load: PlatformLoad) -> str:
    """`cores: 12 allocated of 96 capacity (84 free at most)`, one line per resource."""
    if not load.available:
        return f"warning: {load.warning}"
    width = max((len(row[0]) for row in load.rows()), default=0) + 1
    lines = [
        f"{(label + ':').ljust(width)} {allocated} allocated of {capacity} capacity "
        f"({free} free at most)"
        for label, allocated, capacity, free in load.rows()
    ]
    more = load.session_max_text()
    return "\n".join([*lines, more] if more else lines)


# ------------------------------------------------------------------ handlers


def ps_command(args: argparse.Namespace) -> int:
    async def work(service: RunService) -> int:
        if args.run:
            await service.refresh()
            target = await service.resolve(args.run)
            if target.session is not None:
                shown = [target.session]
                print(sessions_json(shown) if args.json else sessions_table(shown))
                return 0
            assert target.run is not None
            run = await service.get(target.run.name)  # from the site it runs on (issue 16)
            print(json.dumps(run_json(run), indent=2) if args.json else runs_table([run]))
            return 0
        sessions, reconciled = await service.refresh()
        runs = await service.runs(include_ended=args.all, reconciled=reconciled)
        owners = reconciled.owners
        shown = oldest_first([s for s in sessions if args.all or s.status.is_active])
        if args.json and args.runs:
            print(json.dumps([run_json(run) for run in runs], indent=2))
        elif args.json:
            print(json.dumps([session_json(s, owners) for s in shown], indent=2))
        else:
            # The sessions outside runs follow the runs, as a table of their own: none, no
            # table (an empty header under the runs read as a missing list); no runs and no
            # sessions, the bare header says "nothing", as `docker ps` does.
            loose = [s for s in shown if s.id not in owners]
            tables = [runs_table(runs)] if runs else []
            if not args.runs and (loose or not runs):
                tables.append(sessions_table(loose))
            if tables:
                print("\n\n".join(tables))
        return 0

    return run_with_service(work)


def logs_command(args: argparse.Namespace) -> int:
    async def work(service: RunService) -> int:
        target = await service.resolve(args.session_id)
        await write_target_logs(
            service, target, sys.stdout, follow=args.follow, interval=args.interval
        )
        return 0

    return run_with_service(work)


def images_command(args: argparse.Namespace) -> int:
    async def work(client: SkahaClient) -> int:
        images = await client.images(args.type)
        if args.json:
            print(json.dumps([image.model_dump(mode="json") for image in images], indent=2))
        else:
            print(images_table(images))
        return 0

    return run_with_client(work)


def stats_command(args: argparse.Namespace) -> int:
    async def work(client: SkahaClient) -> int:
        load = await client.platform_load()
        if args.json:
            print(json.dumps(load.to_json(), indent=2))
        elif load.available:
            print(stats_text(load))
        else:  # metrics down: a warning, not a failure
            print(stats_text(load), file=sys.stderr)
        return 0

    return run_with_client(work)


def delete_command(args: argparse.Namespace) -> int:
    async def work(service: RunService) -> int:
        for text in args.session_ids:
            target = await service.resolve(text)
            if target.run is not None:
                deleted = await service.delete(target.run.name, target.indices)
                shown = ", ".join(deleted) if deleted else "none left"
                which = f"replica {target.index} of run" if target.index else "run"
                print(
                    f"deleted {which} {target.run.name}: sessions {shown}; its folder stays: "
                    f"{target.run.folder}"
                )
                continue
            assert target.session is not None
            await (await service.client()).delete(target.session.id)
            print(f"deleted {target.session.id}")
        return 0

    return run_with_service(work)


# ------------------------------------------------------------------ helpers


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
