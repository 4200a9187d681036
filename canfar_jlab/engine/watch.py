"""Being told when a process ends, and signalling it without ever hitting a reused pid.

On Linux a pidfd pins the process: it is opened, the start time is checked, and from then on
both the exit notification (the fd turns readable) and signals go to that exact process. Where
pidfds are missing, live processes are polled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from .procs import is_alive

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25


def _probe_pidfd() -> bool:
    """pidfds exist in Python 3.9+ on Linux, and work from kernel 5.3 on."""
    if not (hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


_HAVE_PIDFD = _probe_pidfd()


class ExitWatcher:
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._watched: dict[str, tuple[int, float, int | None, Callable[[str], None]]] = {}
        self._poller: asyncio.Task[None] | None = None

    def watch(self, key: str, pid: int, ctime: float, on_exit: Callable[[str], None]) -> bool:
        """Call `on_exit(key)` once the process (pid, ctime) ends. False if it already has."""
        self.unwatch(key)
        fd = None
        if _HAVE_PIDFD:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                return False
        if not is_alive(pid, ctime):  # checked after opening: the fd now names this process
            if fd is not None:
                os.close(fd)
            return False
        self._watched[key] = (pid, ctime, fd, on_exit)
        if fd is not None:
            self._loop.add_reader(fd, self._fired, key)
        elif self._poller is None:
            self._poller = self._loop.create_task(self._poll())
        return True

    def watching(self, key: str) -> bool:
        return key in self._watched

    def unwatch(self, key: str) -> None:
        entry = self._watched.pop(key, None)
        if entry is not None and entry[2] is not None:
            self._loop.remove_reader(entry[2])
            os.close(entry[2])

    def send_signal(self, key: str, sig: int) -> bool:
        entry = self._watched.get(key)
        if entry is None:
            return False
        pid, ctime, fd, _ = entry
        try:
            if fd is not None:
                signal.pidfd_send_signal(fd, sig)
            elif is_alive(pid, ctime):
                os.kill(pid, sig)
            else:
                return False
        except OSError:
            return False
        return True

    def close(self) -> None:
        for key in list(self._watched):
            self.unwatch(key)
        if self._poller is not None:
            self._poller.cancel()

    def _fired(self, key: str) -> None:
        entry = self._watched.get(key)
        if entry is None:
            return
        self.unwatch(key)
        try:
            entry[3](key)
        except Exception:  # a failing callback must not break the loop's reader
            log.exception("handling the end of %s failed", key)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            for key, (pid, ctime, _fd, _cb) in list(self._watched.items()):
                if not is_alive(pid, ctime):
                    self._fired(key)


def pidfd_supported() -> bool:
    return _HAVE_PIDFD
