"""`canfar-jlab engine start|stop|status`: run the local engine as a background daemon."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import CliError

# Settings `start` can pass to a newly started engine (docs/engine.md lists them all).
_START_OPTIONS = (
    ("--port", "port", int, "port on 127.0.0.1 (default: a free one)"),
    ("--cores", "cores", int, "cores replicas may use together (default: this machine's)"),
    ("--memory", "memory_gb", int, "GB of RAM replicas may request together (default: all)"),
    ("--log-cap", "log_cap", str, "bytes kept per replica log, e.g. 64MiB"),
    ("--retention", "retention", str, "how long finished sessions are kept, e.g. 7d"),
    ("--grace-period", "grace_period", str, "SIGTERM to SIGKILL on delete, e.g. 30s"),
    ("--workdir", "workdir", str, "HOME and working directory of replicas (default: ~)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    engine = subparsers.add_parser(
        "engine",
        help="start, stop or inspect the local engine",
        description="The local engine: a Skaha-compatible session service on 127.0.0.1 that "
        "runs headless replicas as local processes.",
    )
    verbs = engine.add_subparsers(dest="engine_command", metavar="ACTION", required=True)

    start = verbs.add_parser("start", help="start the engine in the background (if needed)")
    _common(start)
    for flag, dest, kind, text in _START_OPTIONS:
        start.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    start.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for it")
    start.add_argument(
        "--foreground", action="store_true", help="run in this terminal instead (logs to stderr)"
    )
    start.set_defaults(func=_start)

    stop = verbs.add_parser("stop", help="stop the engine (replicas keep running by default)")
    _common(stop)
    stop.add_argument(
        "--kill-replicas",
        action="store_true",
        help="delete every active session first, stopping its replica",
    )
    stop.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for it")
    stop.set_defaults(func=_stop)

    status = verbs.add_parser("status", help="is the engine running, and where")
    _common(status)
    status.set_defaults(func=_status)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="data directory (default: $CANFAR_JLAB_HOME or $XDG_DATA_HOME/canfar-jlab)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _home(args: argparse.Namespace) -> Path:
    from ..paths import data_home

    return (args.home or data_home()).expanduser().resolve()


def _describe(info: Any, home: Path) -> dict[str, Any]:
    from ..engine.layout import EngineLayout

    layout = EngineLayout(home)
    if info is None:
        return {
            "state": "stopped",
            "url": None,
            "pid": None,
            "token_file": str(layout.token_file),
            "home": str(home),
            "log_file": str(layout.log_file),
        }
    return {
        "state": info.state,
        "url": info.url,
        "pid": info.pid,
        "token_file": str(info.token_file),
        "home": str(home),
        "log_file": str(layout.log_file),
    }


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _start(args: argparse.Namespace) -> int:
    from ..engine import control

    home = _home(args)
    settings = {dest: getattr(args, dest) for _, dest, _, _ in _START_OPTIONS}
    settings = {key: value for key, value in settings.items() if value is not None}
    if args.foreground:
        from ..engine import daemon

        argv = ["--home", str(home)]
        if settings:
            argv += ["--overrides", json.dumps(settings)]
        return daemon.main(argv)
    running = control.engine_status(home)
    try:
        info = control.ensure_engine(home, timeout=args.timeout, config=settings or None)
    except control.EngineError as exc:
        raise CliError(str(exc)) from None
    data = _describe(info, home)
    if running is not None and running.pid == info.pid:
        note = "already running"
        if settings:
            note += " (options apply to a new engine: stop it first to change them)"
    else:
        note = "started"
    data["note"] = note
    _print(args, data, f"engine {note}: {info.url} (pid {info.pid})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from ..engine import control

    home = _home(args)
    try:
        stopped = control.stop_engine(
            home, timeout=args.timeout, terminate_replicas=args.kill_replicas
        )
    except control.EngineError as exc:
        raise CliError(str(exc)) from None
    data = _describe(None, home)
    data["note"] = "stopped" if stopped else "was not running"
    _print(args, data, f"engine {data['note']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..engine import control

    home = _home(args)
    info = control.engine_status(home)
    data = _describe(info, home)
    if info is None:
        _print(args, data, "engine not running")
        return 3  # LSB: program is not running
    _print(
        args, data, f"engine {info.state}: {info.url} (pid {info.pid}, token in {info.token_file})"
    )
    return 0
