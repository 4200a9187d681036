"""`canfar-jlab renew RUN [--hours H]`: extend the deadline of every live replica of a run
(Skaha's renew action), on the site the run was launched on."""

from __future__ import annotations

import argparse
import asyncio
import json

from ..runs import RunStore
from ..runs.renew import renew_run
from ..runs.sites import run_client
from .common import EXIT_FAILURE


def register(subparsers: argparse._SubParsersAction) -> None:
    renew = subparsers.add_parser(
        "renew", help="extend the deadline of a run's live replicas (Skaha's renew)"
    )
    renew.add_argument("run_name", metavar="RUN")
    renew.add_argument(
        "--hours",
        type=float,
        help="renew only replicas with less than H hours left, and say if H is not reached",
    )
    renew.add_argument("--json", action="store_true", help="print the report as JSON")
    renew.set_defaults(func=renew_command)


def renew_command(args: argparse.Namespace) -> int:
    run = RunStore().get(args.run_name)  # errors: common.EXIT_CODES, through main

    async def work():
        async with run_client(run) as client:
            return await renew_run(run, client, args.hours)

    report = asyncio.run(work())
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=1))
    else:
        print("\n".join([f"run {report.run}:", *report.lines()]))
    return EXIT_FAILURE if report.failed else 0
