"""Process identity: a pid means a process only together with its start time.

`start_time(pid)` returns an opaque token that is the same for the same process and differs for
a later process that reuses the pid: on Linux the start time in clock ticks since boot, read
from /proc (cheap: the supervisor calls it for every replica), elsewhere
psutil's create time. Tokens are only ever compared with tokens from this module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

_LINUX = sys.platform.startswith("linux")
_STARTTIME_FIELD = 19  # field 22 of /proc/<pid>/stat, counted after the ")" closing `comm`
_STATE_FIELD = 0  # field 3


def _stat(pid: int) -> list[bytes] | None:
    # os.open/os.read, not open(): called for every replica the supervisor starts.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2 :].split()


def start_time(pid: int) -> float | None:
    """The start-time token of `pid`, or None when there is no such process."""
    if _LINUX:
        fields = _stat(pid)
        return float(fields[_STARTTIME_FIELD]) if fields else None
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_alive(pid: int | None, token: float | None) -> bool:
    """True when `pid` is a live (non-zombie) process whose start-time token is `token`."""
    if not pid or token is None:
        return False
    if _LINUX:
        fields = _stat(pid)
        return bool(fields) and float(fields[_STARTTIME_FIELD]) == token and fields[0] != b"Z"
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.create_time() == token and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def send_signal(pid: int, token: float | None, sig: int) -> bool:
    """Signal `pid` only if it is still the process with `token` (through a pidfd where
    available, so the check and the signal name the same process)."""
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = None
        if fd is not None:
            try:
                if not is_alive(pid, token):
                    return False
                signal.pidfd_send_signal(fd, sig)
                return True
            except OSError:
                return False
            finally:
                os.close(fd)
    if not is_alive(pid, token):
        return False
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True


def kill_group_checked(pid: int | None, token: float | None, sig: int = signal.SIGKILL) -> bool:
    """Signal the process group led by `pid` only if `pid` is still the same process."""
    if not pid or not is_alive(pid, token):
        return False
    with contextlib.suppress(OSError):
        os.killpg(pid, sig)
        return True
    return False
