"""The engine's side of the fork server: send launch specs, get (pid, start time) back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


class LaunchError(Exception):
    """The supervisor for a replica could not be started."""


class ForkServer:
    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[tuple[int, float]]] = {}
        self._lock = asyncio.Lock()

    async def _start(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "canfar_jlab.engine.forkserver",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        self._reader = asyncio.get_running_loop().create_task(self._read(proc))
        return proc

    async def spawn(self, spec: dict[str, Any]) -> tuple[int, float]:
        """Start a supervisor for `spec`; return its pid and start time."""
        async with self._lock:
            proc = self._proc
            if proc is None or proc.returncode is not None or proc.stdin is None:
                proc = await self._start()
            future: asyncio.Future[tuple[int, float]] = asyncio.get_running_loop().create_future()
            self._waiting[spec["id"]] = future
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(spec).encode() + b"\n")
            except (ConnectionError, RuntimeError) as exc:
                self._waiting.pop(spec["id"], None)
                raise LaunchError(f"the fork server is gone: {exc}") from None
        return await future

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                reply = json.loads(line)
            except ValueError:
                log.error("fork server sent an unreadable line")
                continue
            future = self._waiting.pop(reply.get("id"), None)
            if future is None or future.done():
                continue
            if "error" in reply or not reply.get("pid") or reply.get("ctime") is None:
                future.set_exception(LaunchError(reply.get("error", "no start time reported")))
            else:
                future.set_result((int(reply["pid"]), float(reply["ctime"])))
        log.warning("the fork server ended; it will be restarted on the next launch")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(LaunchError("the fork server ended during a launch"))
        self._waiting.clear()

    def close(self) -> None:
        """Let the fork server go: it exits once its supervisors have all ended."""
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.close()
        if self._reader is not None:
            self._reader.cancel()
