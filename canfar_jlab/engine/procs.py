"""Process identity: a pid means a process only together with its start time."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

CTIME_TOLERANCE = 0.01  # psutil's start time has clock-tick resolution


def is_alive(pid: int | None, ctime: float | None) -> bool:
    """True when `pid` is a live (non-zombie) process that started at `ctime`."""
    if not pid or ctime is None:
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - ctime) > CTIME_TOLERANCE:
            return False  # the pid was reused by another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_group_checked(pid: int | None, ctime: float | None, sig: int = signal.SIGKILL) -> bool:
    """Signal the process group led by `pid` only if `pid` is still the same process."""
    if not is_alive(pid, ctime):
        return False
    assert pid is not None
    with contextlib.suppress(OSError):
        os.killpg(pid, sig)
        return True
    return False
