"""Saving a replica's log into its run folder before the session service forgets it
(Skaha deletes a finished session, and its log, after an hour)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..skaha import SkahaClient, SkahaError
from .store import LOGS_DIR, write_text_atomically

log = logging.getLogger(__name__)


def log_name(index: int) -> str:
    """The archived log of replica `index`, relative to the run folder."""
    return f"{LOGS_DIR}/replica-{index}.log"


def attempt_log_name(index: int, attempt: int) -> str:
    """Where the log of an earlier attempt of replica `index` is kept when it is run again."""
    return f"{LOGS_DIR}/replica-{index}.attempt-{attempt}.log"


async def archive_log(client: SkahaClient, session_id: str, folder: Path, index: int) -> str | None:
    """Read the session's whole log and write it to `logs/replica-<index>.log`.

    Returns the relative path, or None when the log could not be read (try again later).
    """
    try:
        chunk = await client.logs(session_id)
    except SkahaError as error:
        log.info("cannot archive the log of %s yet: %s", session_id, error.message)
        return None
    relative = log_name(index)
    path = folder / relative
    try:
        path.parent.mkdir(exist_ok=True)
        write_text_atomically(path, chunk.text)
    except OSError as error:
        log.warning("cannot write %s: %s", path, error.strerror or error)
        return None
    return relative
