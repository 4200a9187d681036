"""The `canfar-jlab` command line.

Each verb group lives in its own module and adds its sub-commands through `register(subparsers)`;
a sub-command sets `func(args) -> int` as its handler. Errors reach the user as one line on
stderr with a non-zero exit code (the one table: `common.EXIT_CODES`), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import CanfarError
from ..version import __version__
from . import config, engine, renew, runs, sessions
from .common import CliError, exit_code

# The modules that contribute verbs, in the order `--help` lists them.
_VERB_MODULES = (engine, sessions, runs, renew, config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canfar-jlab",
        description="Run notebooks as batch replicas on CANFAR or the local engine.",
    )
    parser.add_argument("--version", action="version", version=f"canfar-jlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _VERB_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # nbformat imports jsonschema, which imports rfc3987_syntax when installed (Jupyter's
    # jsonschema[format-nongpl] brings it): it compiles 38 grammars at import, 3.5-12 s
    # before `run` could answer, for an IRI format check nbformat never makes. jsonschema
    # skips that check when the import fails. Only in this process of ours, never in a kernel.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CliError as exc:
        print(f"canfar-jlab: {exc}", file=sys.stderr)
        return exc.code
    except CanfarError as exc:
        print(f"canfar-jlab: {exc.message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("canfar-jlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
