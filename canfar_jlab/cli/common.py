"""What every verb shares: the one table from the core's errors to exit codes, and opening a
connection (or the run service on it) with failures turned into that exit code.

`main` (cli/__init__) catches any `CanfarError` a verb lets through and exits with
`exit_code(error)`; a verb raises `CliError` only for what is the CLI's own (a bad flag
combination, an interrupted follow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import (
    AuthError,
    CanfarError,
    InvalidInput,
    LaunchRefused,
    NotFound,
    RunNameInUse,
    RunNotFound,
    Unavailable,
)
from ..runs.connection import Connection
from ..runs.service import RunService
from ..runs.store import RunStore

if TYPE_CHECKING:
    from ..skaha import SkahaClient

EXIT_FAILURE = 1
EXIT_REFUSED = 2  # nothing was done: the input or the request was refused
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_UNAVAILABLE = 5
EXIT_INTERRUPTED = 130

# The core's errors as exit codes; the most specific class listed wins.
EXIT_CODES: dict[type[CanfarError], int] = {
    InvalidInput: EXIT_REFUSED,
    LaunchRefused: EXIT_REFUSED,
    RunNameInUse: EXIT_REFUSED,
    AuthError: EXIT_AUTH,
    NotFound: EXIT_NOT_FOUND,
    RunNotFound: EXIT_NOT_FOUND,
    Unavailable: EXIT_UNAVAILABLE,
    CanfarError: EXIT_FAILURE,
}


class CliError(Exception):
    """A failure to report to the user as one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def exit_code(error: CanfarError) -> int:
    """The code `EXIT_CODES` gives `error`'s class or its nearest listed ancestor."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return EXIT_FAILURE


def run_with_client(work: Callable[[Any], Awaitable[int | None]]) -> int:
    """Open a connection from the usual credentials (it reconnects to a restarted local
    engine by itself) and run `work` on it. Failures reach `main` as CanfarErrors."""

    async def main() -> int | None:
        async with Connection() as connection:
            await connection.connect()
            return await work(connection)

    try:
        return int(asyncio.run(main()) or 0)
    except BrokenPipeError:  # e.g. `canfar-jlab logs ID | head`
        return 0
    except KeyboardInterrupt:
        raise CliError(
            "interrupted; the replicas keep running (`canfar-jlab logs RUN -f` follows them again)",
            EXIT_INTERRUPTED,
        ) from None


def run_with_service(work: Callable[[RunService], Awaitable[int | None]]) -> int:
    """`work(service)` on the run service (the usual credentials, the usual runs root)."""

    async def with_service(client: Connection) -> int | None:
        return await work(RunService(RunStore(), client))

    return run_with_client(with_service)


async def write_session_log(
    client: SkahaClient,
    session_id: str,
    out: TextIO,
    *,
    follow: bool = False,
    interval: float = 2.0,
) -> None:
    """Print a session's log once, or follow it until the session ends."""
    if not follow:
        out.write((await client.logs(session_id)).text)
        out.flush()
        return
    async for text in client.tail(session_id, poll_interval=interval):
        out.write(text)
        out.flush()
