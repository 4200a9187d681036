"""Saving a replica's log into its run folder before the session service forgets it
(Skaha deletes a finished session, and its log, after an hour)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..atomic import write_atomically
from ..skaha import SkahaClient, SkahaError
from .store import LOGS_DIR

log = logging.getLogger(__name__)


def _stem(index: int) -> str:
    return "reduce" if index == 0 else f"replica-{index}"  # 0: the run's reduce step


def log_name(index: int) -> str:
    """The archived log of replica `index` (0: the reduce step), relative to the run folder."""
    return f"{LOGS_DIR}/{_stem(index)}.log"


def attempt_log_name(index: int, attempt: int) -> str:
    """Where the log of an earlier attempt of replica `index` is kept when it is run again."""
    return f"{LOGS_DIR}/{_stem(index)}.attempt-{attempt}.log"


# A log as the local engine serves it is at most its cap (64 MiB by default) plus a marker
# line: readers must accept that much, or a capped log could never be archived.
LOG_READ_LIMIT = 64 * 2**20 + 2**20


async def archive_log(client: SkahaClient, session_id: str, folder: Path, index: int) -> str | None:
    """Read the session's whole log (up to the service's cap, its marker kept) and write it to
    `logs/replica-<index>.log`; paged by byte offset where the service honours one.

    Returns the relative path, or None when the log could not be read (try again later).
    """
    pieces: list[str] = []
    offset = 0
    try:
        while True:
            chunk = await client.logs(session_id, offset)
            pieces.append(chunk.text)
            if not chunk.honoured or not chunk.text or chunk.next_offset <= offset:
                break
            offset = chunk.next_offset
    except SkahaError as error:
        log.info("cannot archive the log of %s yet: %s", session_id, error.message)
        return None
    relative = log_name(index)
    path = folder / relative
    try:
        path.parent.mkdir(exist_ok=True)
        write_atomically(path, "".join(pieces))
    except OSError as error:
        log.warning("cannot write %s: %s", path, error.strerror or error)
        return None
    return relative
