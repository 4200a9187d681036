"""Per-replica supervisors left running by an engine from before the one-supervisor model.

Such a supervisor (one process per replica, `supervisor.json` naming it) still records its
replica's exit in `exit.json` and stops it on SIGTERM (TERM, grace, KILL). A restarted engine
follows it by pid and start time until it ends, polling, so that an upgrade never loses a
running replica. Nothing new is ever started this way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .procs import is_alive, send_signal

POLL_INTERVAL = 0.5


class LegacySupervisors:
    def __init__(self, on_ended: Callable[[str], None]) -> None:
        self._on_ended = on_ended
        self._followed: dict[str, tuple[int, float]] = {}  # session id -> (pid, start time)
        self._poller: asyncio.Task[None] | None = None

    def adopt(self, session_id: str, pid: int | None, ctime: float | None) -> bool:
        """Follow the supervisor (pid, ctime) of a session; False when it is not running."""
        if pid is None or ctime is None or not is_alive(pid, ctime):
            return False
        self._followed[session_id] = (pid, ctime)
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return True

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._followed

    def signal(self, session_id: str, sig: int) -> bool:
        entry = self._followed.get(session_id)
        return entry is not None and send_signal(entry[0], entry[1], sig)

    def forget(self, session_id: str) -> None:
        self._followed.pop(session_id, None)

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _poll(self) -> None:
        while self._followed:
            await asyncio.sleep(POLL_INTERVAL)
            for session_id, (pid, ctime) in list(self._followed.items()):
                if not is_alive(pid, ctime):
                    del self._followed[session_id]
                    self._on_ended(session_id)
        self._poller = None
