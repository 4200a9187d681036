"""Who is creating a run's sessions: a launch lease recorded in run.json.

A launch (or re-run) writes `{"pid", "host", "created"}` before its first create and removes
it once every outcome is recorded. A reader that finds the lease's process gone knows no more
creates will come, so it can tell at once which replicas were never created; a lease from
another host (a shared home) is trusted until INTERRUPTED_AFTER has passed.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import psutil


def current() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "created": _created(pid)}


def is_held(lease: dict[str, Any] | None) -> bool | None:
    """True: its process is alive; False: it is gone; None: cannot tell (another host)."""
    if not lease:
        return False
    if lease.get("host") != socket.gethostname():
        return None
    pid = lease.get("pid")
    if not isinstance(pid, int):
        return False
    created = _created(pid)
    return created is not None and created == lease.get("created")


def _created(pid: int) -> float | None:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.Error:
        return None
