"""The verbs and options of `%canfar` / `%%canfar`, parsed with argparse.

The launch options are the CLI's (`-r`, `--image`, `--cores`, `--ram`, `--gpus`, `-e K=V`,
`--name`), so a line moves between a notebook and a terminal unchanged. argparse normally
prints and exits on a bad line; in a kernel that would be a SystemExit traceback, so the
parsers here raise `UsageError` (one line) instead, and `-h` raises `HelpShown` after printing.
"""

from __future__ import annotations

import argparse
import shlex
from typing import NoReturn

from ..launch_args import (
    LaunchArgsError,
    add_launch_options,
    add_rerun_options,
    pairs,
    whole_number,
)

LAUNCH_VERBS = ("batch", "run")
VERBS = (
    "batch",
    "run",
    "ps",
    "logs",
    "stats",
    "events",
    "stop",
    "delete",
    "rerun",
    "renew",
    "images",
    "context",
    "help",
)


class UsageError(ValueError):
    """A line the magic cannot read; the message is one line."""


class HelpShown(Exception):
    """`-h` printed a verb's help; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError(f"{self.prog}: {(message or 'invalid arguments').strip()}")
        raise HelpShown()


def add_follow_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help=f"show {what} in the cell as it comes until every replica has ended",
    )


def build_parsers() -> dict[str, _Parser]:
    parsers: dict[str, _Parser] = {}

    def new(verb: str, description: str) -> _Parser:
        parser = _Parser(prog=f"%canfar {verb}", description=description, add_help=True)
        parsers[verb] = parser
        return parser

    batch = new("batch", "Run a notebook (default: this one, as last saved) as a batch run.")
    batch.add_argument("notebook", nargs="?", metavar="NOTEBOOK", help="path to a .ipynb")
    add_launch_options(batch)
    add_follow_option(batch, "the replicas' logs")

    run = new("run", "Run any command as replicas: %canfar run [options] -- CMD ARGS")
    add_launch_options(run, parameters=False, conducted=False)  # sessions, not a run

    cell = new("cell", "Run this cell's code as a batch run: %%canfar [options]")
    add_launch_options(cell, parameters=False)
    cell.add_argument(
        "--setup",
        "--with-history",
        dest="setup",
        action="store_true",
        help="prepend the imports, def/class and literal assignments run so far in this kernel",
    )
    add_follow_option(cell, "the replicas' logs")

    ps = new("ps", "List runs and sessions (Pending and Running ones unless --all).")
    ps.add_argument("run", nargs="?", metavar="RUN", help="show this run's replicas")
    ps.add_argument("-a", "--all", action="store_true", help="include ended runs and sessions")

    logs = new("logs", "Show the log of a run (all replicas) or of one session.")
    logs.add_argument("target", metavar="RUN_OR_REPLICA_OR_SESSION")
    logs.add_argument(
        "-i", "--replica", type=whole_number, help="only this replica (REPLICA_ID) of a run"
    )
    add_follow_option(logs, "new lines")

    new("stats", "Show the platform's load and capacity.")

    events = new("events", "Show the scheduling events of a session (or a run's replicas).")
    events.add_argument("target", metavar="RUN_OR_SESSION")

    stop = new("stop", "Stop a run's replicas (or one: RUN-3); its record and logs stay.")
    stop.add_argument("targets", metavar="RUN", nargs="+")

    delete = new("delete", "Delete a run's sessions (its folder stays) or sessions by id.")
    delete.add_argument("targets", metavar="RUN_OR_SESSION", nargs="+")

    rerun = new("rerun", "Run the failed replicas of a run again, with their REPLICA_ID.")
    rerun.add_argument("run", metavar="RUN")
    add_rerun_options(rerun)
    add_follow_option(rerun, "the replicas' logs")

    renew = new("renew", "Extend the deadline of a run's live replicas (Skaha's renew).")
    renew.add_argument("run", metavar="RUN")
    renew.add_argument("--hours", type=float, help="renew only those with less than H hours left")

    images = new("images", "List the images sessions can use.")
    images.add_argument("--type", help="only images of this type (e.g. headless)")

    new("context", "Show the cores, RAM and GPUs a session may ask for.")
    return parsers


def split_line(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as error:  # an unclosed quote
        raise UsageError(f"cannot read the line: {error}") from None


def split_command(tokens: list[str]) -> tuple[list[str], list[str]]:
    """`run` options before `--`, the command after it."""
    if "--" not in tokens:
        raise UsageError("%canfar run: put the command after --, e.g. %canfar run -r 2 -- CMD ARGS")
    cut = tokens.index("--")
    command = tokens[cut + 1 :]
    if not command:
        raise UsageError("%canfar run: no command after --")
    return tokens[:cut], command


def parse_env(items: list[str]) -> dict[str, str]:
    """`-e K=V` pairs, with a bad one as a UsageError."""
    try:
        return pairs(items, "-e")
    except LaunchArgsError as error:
        raise UsageError(str(error)) from None
