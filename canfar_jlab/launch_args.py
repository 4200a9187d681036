"""The launch options the front doors share (the CLI and `%canfar`): one set of flags, one
reading of `K=V` pairs, one translation into a LaunchRequest. A line moves between a terminal
and a notebook cell unchanged.

Front-door code only: the core never imports it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .models import LaunchRequest
from .sweep import SweepError, read_rows


class LaunchArgsError(InvalidInput):
    """A malformed option value, described in one line."""


def whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def add_launch_options(
    parser: argparse.ArgumentParser, *, parameters: bool = True, conducted: bool = True
) -> None:
    """-r, --image, --cores, --ram, --gpus, -e K=V, --name (and -p K=V for notebooks; and
    --retries, --timeout, --max-running, --pilot, --reduce for runs: `conducted`)."""
    parser.add_argument(
        "-r",
        "--replicas",
        type=whole_number,
        default=None if parameters else 1,  # notebooks: None lets a sweep's rows decide
        help="number of replicas (default 1, or one per row of a sweep)",
    )
    parser.add_argument(
        "--image",
        help="container image (default: $CANFAR_JLAB_IMAGE, else the image of the CANFAR "
        "session this runs in; on the local engine its first image)",
    )
    parser.add_argument("--cores", type=whole_number, help="cores per replica (default: flexible)")
    parser.add_argument(
        "--ram", type=whole_number, help="RAM per replica in GB (default: flexible)"
    )
    parser.add_argument("--gpus", type=whole_number, help="GPUs per replica")
    parser.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="environment variable for every replica (repeatable)",
    )
    if parameters:
        parser.add_argument(
            "-p",
            "--param",
            action="append",
            default=[],
            metavar="K=V",
            help="override a variable of the cell tagged 'parameters'; V is read as JSON when "
            "it can be (42, 1.5, true, [1,2]), else as text (repeatable); V1,V2,... sweeps: "
            "one replica per value (several such lists: every combination)",
        )
        parser.add_argument(
            "--sweep",
            metavar="FILE",
            help="a .csv (header row of names) or .json (list of objects) file of parameter "
            "rows: replica i runs with row i (the rows set the replica count unless -r)",
        )
    parser.add_argument("--name", help="run name (default: from the notebook's file name)")
    # issue 16: one of several logins in ~/.canfar/config.yaml, recorded in the run
    parser.add_argument(
        "--site",
        metavar="NAME",
        help="a server of ~/.canfar/config.yaml to run on (default: the active one)",
    )
    parser.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass the variable NAME of this environment to every replica, its value never "
        "written to run.json, a preview or a log (repeatable)",
    )
    # issue 17: how the run conducts its replicas
    if not conducted:
        return
    parser.add_argument(
        "--retries",
        type=whole_number,
        default=0,
        metavar="N",
        help="re-create a replica that fails (not stopped, timed out or out of memory) up to "
        "N times, same REPLICA_ID, after 2 s, 4 s, 8 s ... (each attempt's log kept)",
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        metavar="DURATION",
        help="end a replica that runs longer (30s, 90m, 2h, 1d or seconds): TimedOut",
    )
    parser.add_argument(
        "--max-running",
        type=whole_number,
        metavar="K",
        help="at most K replicas of the run created at once; the rest wait in the run",
    )
    parser.add_argument(
        "--pilot",
        action="store_true",
        help="run replica 1 alone first; the others start sized from its peak memory and "
        "CPU (unless --cores/--ram), and not at all if it fails",
    )
    parser.add_argument(
        "--reduce",
        metavar="NOTEBOOK",
        help="a notebook run once after every replica succeeded (copied into the run folder)",
    )


def add_rerun_options(parser: argparse.ArgumentParser) -> None:
    """The flags of `rerun`, shared by the CLI and the magic: which replicas, from what."""
    parser.add_argument(
        "--failed",
        action="store_true",
        help="only the Failed, TimedOut and NotCreated replicas, with their own REPLICA_ID",
    )
    parser.add_argument(
        "--more-memory",
        action="store_true",
        help="only the replicas that ran out of memory, with twice their peak RAM",
    )
    parser.add_argument(
        "--from-notebook",
        action="store_true",
        help="export the notebook as saved now (default: the snapshot taken at launch)",
    )


def duration(text: str) -> int:
    """A --timeout value in seconds."""
    from .runs.conductor import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    """`K=V` strings as a dict; LaunchArgsError naming the flag for anything else."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LaunchArgsError(f"{flag} {item!r}: expected K=V")
        found[key.strip()] = value
    return found


def json_or_text(value: str) -> Any:
    """A `-p` value: JSON when it reads as JSON (numbers, lists, true), else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def launch_request(notebook: str, args: argparse.Namespace) -> LaunchRequest:
    """The LaunchRequest the options ask for (pydantic's ValidationError for bad values)."""
    parameters = pairs(getattr(args, "param", None) or [], "-p")
    values = {key: parameter_value(value) for key, value in parameters.items()}
    swept = any(isinstance(value, SweptValues) for value in values.values())
    given = {} if args.replicas is None else {"replicas": args.replicas}
    rows = None
    if getattr(args, "sweep", None):
        try:
            rows = read_rows(Path(args.sweep).expanduser())
        except SweepError as error:
            raise LaunchArgsError(f"--sweep: {error}") from None
    return LaunchRequest(
        notebook=notebook,
        **given,
        name=args.name,
        image=args.image,
        cores=args.cores,
        ram=args.ram,
        gpus=args.gpus,
        env=pairs(args.env, "-e"),
        # With a sweep, every list value is swept (a list as one value: use a sweep file).
        parameters={
            key: list(value) if isinstance(value, SweptValues) else value
            for key, value in values.items()
        },
        sweep=swept,
        sweep_rows=rows,
        site=getattr(args, "site", None),
        secret_env=list(getattr(args, "secret_env", None) or []),
        retries=getattr(args, "retries", 0) or 0,
        timeout_seconds=getattr(args, "timeout", None),
        max_running=getattr(args, "max_running", None),
        pilot=bool(getattr(args, "pilot", False)),
        reduce_notebook=_reduce_path(getattr(args, "reduce", None)),
    )


def _reduce_path(text: str | None) -> str | None:
    return None if not text else str(Path(text).expanduser())


class SweptValues(list):
    """`-p K=V1,V2,...`: the values a sweep gives K, one per replica."""


def parameter_value(text: str) -> Any:
    """A `-p` value: JSON when it reads as JSON; text with commas a sweep; else the text."""
    try:
        return json.loads(text)  # '"a,b"' is one text, '[1,2]' one list
    except ValueError:
        pass
    if "," in text:
        return SweptValues(json_or_text(part.strip()) for part in text.split(","))
    return text
