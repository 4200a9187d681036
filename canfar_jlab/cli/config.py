"""`canfar-jlab config get | set | unset`: the user's settings, shared by every door.

`runs-root` is the folder that holds one folder per run. The server extension, the CLI and
the magic all read it (`$CANFAR_JLAB_RUNS` and the server's `runs_root` override it), so a
run launched from any of them is listed by the other two.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..paths import SETTINGS_FILE, config_home, set_user_setting, user_settings
from ..runs.store import RUNS_ENV, RUNS_ROOT_SETTING, default_root
from .common import CliError

SETTINGS = {RUNS_ROOT_SETTING: "the folder that holds one folder per run"}


def register(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser(
        "config",
        help="show or change your settings (runs-root)",
        description=f"Settings in {config_home() / SETTINGS_FILE}: "
        + "; ".join(f"{key}: {what}" for key, what in SETTINGS.items()),
    )
    verbs = config.add_subparsers(dest="config_verb", metavar="VERB", required=True)
    get = verbs.add_parser("get", help="print a setting (all of them without KEY)")
    get.add_argument("key", metavar="KEY", nargs="?", choices=sorted(SETTINGS))
    get.set_defaults(func=get_command)
    put = verbs.add_parser("set", help="change a setting, e.g. set runs-root ~/work/runs")
    put.add_argument("key", metavar="KEY", choices=sorted(SETTINGS))
    put.add_argument("value", metavar="VALUE")
    put.add_argument("--if-unset", action="store_true", help="leave a value already set alone")
    put.set_defaults(func=set_command)
    unset = verbs.add_parser("unset", help="go back to the default")
    unset.add_argument("key", metavar="KEY", choices=sorted(SETTINGS))
    unset.set_defaults(func=unset_command)


def get_command(args: argparse.Namespace) -> int:
    settings = user_settings()
    keys = [args.key] if args.key else sorted(SETTINGS)
    for key in keys:
        if key == RUNS_ROOT_SETTING:
            note = f"  (in use: {default_root()}"
            note += f", from ${RUNS_ENV})" if os.environ.get(RUNS_ENV, "").strip() else ")"
            print(f"{key} = {settings.get(key, '')}{note}")
    return 0


def set_command(args: argparse.Namespace) -> int:
    if args.if_unset and user_settings().get(args.key):
        print(f"{args.key} stays {user_settings()[args.key]}")
        return 0
    value = args.value
    if args.key == RUNS_ROOT_SETTING:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.exists() and not path.is_dir():
            raise CliError(f"runs-root: {path} is not a folder", 2)
        value = os.path.normpath(path)
    where = set_user_setting(args.key, value)
    print(f"{args.key} = {value}  (saved in {where})")
    if args.key == RUNS_ROOT_SETTING and os.environ.get(RUNS_ENV, "").strip():
        print(f"note: ${RUNS_ENV} is set in this shell and overrides it")
    return 0


def unset_command(args: argparse.Namespace) -> int:
    set_user_setting(args.key, None)
    print(f"{args.key} unset")
    return 0
