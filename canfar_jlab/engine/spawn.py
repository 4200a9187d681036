"""The engine's side of the fork server: send launch specs, get (pid, start token) back; and
the clean environment a replica starts with.

The fork server is a plain `subprocess.Popen` child driven through its pipes on the event loop
(not an asyncio subprocess: closing one of those kills the child, and the fork server must
outlive the engine to keep reaping its supervisors), in its own session: with autogroup
scheduling a session is what gets a CPU share, and sharing the daemon's made creates and forks
starve each other behind the replicas being started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# What a replica inherits from the engine's environment, as a Skaha container gets a fresh one:
# the program search path and the locale. Everything else (credentials of the machine the
# engine runs on, say) stays out unless the `pass_env` setting names it.
_INHERITED = ("PATH", "LANG", "LANGUAGE", "TZ")


def replica_environment(
    engine_env: Mapping[str, str],
    run_env: Iterable[tuple[str, str]],
    platform: Mapping[str, str],
    pass_env: Iterable[str] = (),
) -> dict[str, str]:
    """A replica's environment, later entries winning: PATH (the engine's Python first) and the
    locale from the engine; the variables `pass_env` names; the session's own `env` (REPLICA_ID
    and REPLICA_COUNT among them); then what the platform sets (HOME, skaha_*, ...)."""
    env = {
        name: value
        for name, value in engine_env.items()
        if name in _INHERITED or name.startswith("LC_")
    }
    env.update({name: engine_env[name] for name in pass_env if name in engine_env})
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH") or os.defpath
    if path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + os.pathsep + path
    env.update(dict(run_env))
    env.update(platform)
    return env


class LaunchError(Exception):
    """The supervisor for a replica could not be started."""


class ForkServer:
    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdin = self._stdout = -1
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._waiting: dict[str, asyncio.Future[tuple[int, float]]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._stdout >= 0

    def ensure_started(self) -> None:
        """Start the fork server now (the engine does at start, so the first launch does not
        wait for an interpreter to start); otherwise the first spawn does."""
        if not self.running:
            self._start()

    def _start(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "canfar_jlab.engine.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the engine's log
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._stdin, self._stdout = proc.stdin.fileno(), proc.stdout.fileno()
        os.set_blocking(self._stdin, False)
        os.set_blocking(self._stdout, False)
        asyncio.get_running_loop().add_reader(self._stdout, self._read)

    async def spawn(self, spec: dict[str, Any]) -> tuple[int, float]:
        """Start a supervisor for `spec`; return its pid and start-time token once it has
        started the replica (forkserver.py: the supervisor answers itself)."""
        if not self.running:
            self._start()
        future: asyncio.Future[tuple[int, float]] = asyncio.get_running_loop().create_future()
        self._waiting[spec["id"]] = future
        if not self._outgoing:  # otherwise a write is already due
            # Written once this turn of the event loop is done: the specs of a burst of creates
            # go in one write, and wake the fork server once.
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing += json.dumps(spec).encode() + b"\n"
        return await future

    def _flush(self) -> None:
        if self._stdin < 0:
            return  # detached meanwhile: its launches have failed already
        loop = asyncio.get_running_loop()
        try:
            while self._outgoing:
                written = os.write(self._stdin, self._outgoing)
                del self._outgoing[:written]
        except BlockingIOError:
            loop.add_writer(self._stdin, self._flush)
            return
        except OSError as exc:
            self._gone(f"cannot write to the fork server: {exc.strerror}")
            return
        loop.remove_writer(self._stdin)

    def _read(self) -> None:
        try:
            chunk = os.read(self._stdout, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._gone("the fork server ended during a launch")
            return
        self._incoming += chunk
        while (end := self._incoming.find(b"\n")) >= 0:
            line = bytes(self._incoming[:end])
            del self._incoming[: end + 1]
            self._reply(line)

    def _reply(self, line: bytes) -> None:
        try:
            reply = json.loads(line)
        except ValueError:
            log.error("the fork server sent an unreadable line")
            return
        future = self._waiting.pop(reply.get("id"), None)
        if future is None or future.done():
            return  # an `ended` after the supervisor's own answer, or an unknown id
        if reply.get("ended"):
            why = "the supervisor ended before it could start the replica"
            future.set_exception(LaunchError(why))
        elif "error" in reply or not reply.get("pid") or reply.get("ctime") is None:
            future.set_exception(LaunchError(reply.get("error", "no start time reported")))
        else:
            future.set_result((int(reply["pid"]), float(reply["ctime"])))

    def _gone(self, why: str) -> None:
        log.warning("the fork server is gone; it will be restarted on the next launch")
        self._detach()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(LaunchError(why))
        self._waiting.clear()

    def _detach(self) -> None:
        loop = asyncio.get_running_loop()
        proc, self._proc = self._proc, None
        if self._stdout >= 0:
            loop.remove_reader(self._stdout)
        if self._stdin >= 0:
            loop.remove_writer(self._stdin)
        self._stdin = self._stdout = -1
        self._outgoing.clear()
        self._incoming.clear()
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()  # type: ignore[union-attr]
            # Reap it once it exits (it first waits for its supervisors); a daemon thread, so
            # that stopping the engine never waits for it.
            threading.Thread(target=proc.wait, name="reap-fork-server", daemon=True).start()

    def close(self) -> None:
        """Let the fork server go: it sees EOF and exits once its supervisors have ended."""
        if self._proc is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._stdout)
            loop.remove_writer(self._stdin)
            for pipe in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()  # type: ignore[union-attr]
            self._proc = None
            self._stdin = self._stdout = -1
