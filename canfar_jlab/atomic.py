"""The one way the core replaces a file: readers see the old file or the new one, never half.

A temporary file in the same folder (so `os.replace` is a rename on one file system), born
with its final mode (a secret is never more readable, even for an instant), optionally synced
to disk before the rename, removed if anything fails.

The programs copied into a replica (`replica_report.py`) keep their own copy: they import
nothing of the package. The engine's files are written by `engine/sessionfiles.py`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(
    path: Path, data: str | bytes, *, mode: int = 0o644, durable: bool = False
) -> None:
    """Replace `path` with `data` (text is UTF-8; unencodable characters replaced). `durable`:
    fsync before the rename, for records that must survive a crash (run.json, credentials)."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
