"""Files in a session's directory, shared by the engine and the supervisor.

Standard library only and nothing heavy: the supervisor imports it.
"""

from __future__ import annotations

import json
import os

FILE_MODE = 0o600
SESSION_LOG = "output.log"  # the replica's stdout and stderr
SUPERVISOR_FILE = "supervisor.json"  # pids and start-time tokens of supervisor and replica
EXIT_FILE = "exit.json"  # how the replica ended, written by its supervisor


def write_json_atomic(path: str | os.PathLike[str], data: object) -> None:
    """Write `data` as JSON through a private temporary file and a rename (readers see all or
    nothing, and the file is born with mode 0600 instead of being chmod-ed afterwards)."""
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_json_once(path: str | os.PathLike[str], data: object) -> None:
    """Create `path` (it must not exist) and write `data` as JSON in one write. Cheaper than a
    rename; a reader that comes mid-write sees unparsable JSON, which `read_json` reports as
    missing, and every reader treats a missing file as "not yet"."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str]) -> dict | None:
    """The JSON object in `path`, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
