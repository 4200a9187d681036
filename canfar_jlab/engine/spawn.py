"""The engine's side of the supervisor (supervisor.py): connect to it, or start it; send launch,
stop and kill requests; hear when replicas have started and ended. And the clean environment a
replica starts with.

The supervisor listens on `<home>/engine/supervisor.sock`. The engine connects at start; when
nothing answers there, it binds the socket itself and starts a supervisor (`subprocess.Popen`,
never an asyncio subprocess: closing one of those kills the child) that inherits the listening
socket, in its own session: with autogroup scheduling a session is what gets a CPU share, and
sharing the daemon's made creates and launches starve each other behind the replicas being
started. An engine that restarts connects to the supervisor that is still there and learns
which sessions it holds (adoption).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .procs import is_alive

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
    """A replica could not be started."""


CONNECT_TIMEOUT = 10.0  # for the supervisor's hello, once connected


class SupervisorClient:
    """The engine's connection to its supervisor, on the event loop."""

    def __init__(
        self,
        path: Path,
        on_ended: Callable[[str], None],
        on_gone: Callable[[], None],
    ) -> None:
        self.path = path
        self._on_ended, self._on_gone = on_ended, on_gone
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._waiting: dict[str, asyncio.Future[tuple[int, float, int | None]]] = {}
        self.pid: int | None = None
        self.ctime: float | None = None
        self.held: set[str] = set()  # sessions the supervisor holds (no exit.json yet)

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Connect to the supervisor there is, or start one; `held` then says which sessions it
        holds. Blocking (a local socket, at engine start or before a launch)."""
        if self._sock is not None:
            return
        sock = self._try_connect()
        if sock is None:
            self._start()
            sock = self._try_connect()
        if sock is None:
            raise LaunchError("the supervisor does not answer")
        self._sock = sock
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._read)
        if self._incoming:  # what came with the hello
            loop.call_soon(self._lines)

    def _address(self) -> tuple[str, int | None]:
        """A path short enough for a Unix socket: through a directory descriptor on Linux."""
        text = str(self.path)
        if len(text.encode()) < 100 or not Path("/proc/self/fd").is_dir():
            return text, None
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{fd}/{self.path.name}", fd

    def _try_connect(self) -> socket.socket | None:
        address, dir_fd = self._address()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(address)
            hello = self._read_hello(sock)
        except (OSError, ValueError, KeyError, TypeError):
            sock.close()
            return None
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        self.pid, self.ctime = int(hello["pid"]), float(hello["ctime"])
        self.held = set(hello["held"])
        return sock

    def _read_hello(self, sock: socket.socket) -> dict[str, Any]:
        self._incoming.clear()
        while b"\n" not in self._incoming:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("the supervisor closed the connection")
            self._incoming += chunk
        end = self._incoming.index(b"\n")
        hello = json.loads(bytes(self._incoming[:end]))["hello"]
        del self._incoming[: end + 1]
        return hello

    def _start(self) -> None:
        """Bind the socket and start a supervisor serving it (the engine's run lock makes us
        the only engine of this home, so a socket nobody answers on is stale)."""
        address, dir_fd = self._address()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)
            listener.bind(address)
            os.chmod(address, 0o600)
            listener.listen(16)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "canfar_jlab.engine.supervisor", str(listener.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None,  # the engine's log
                pass_fds=(listener.fileno(),),
                start_new_session=True,
            )
        finally:
            listener.close()
            if dir_fd is not None:
                os.close(dir_fd)
        # Reaped once it exits (after its last replica, once no engine is connected); a daemon
        # thread, so that stopping the engine never waits for it.
        threading.Thread(target=self._proc.wait, name="reap-supervisor", daemon=True).start()

    # ------------------------------------------------------------ requests

    async def spawn(self, spec: dict[str, Any]) -> tuple[int, float, int | None]:
        """Have the supervisor start the replica of `spec`; return the supervisor's pid and
        start-time token and the replica's pid once the replica exists (None: the session ran
        already, or could not start; its end follows)."""
        if self._sock is None:
            self.connect()
        future: asyncio.Future[tuple[int, float, int | None]]
        future = asyncio.get_running_loop().create_future()
        self._waiting[spec["id"]] = future
        self.held.add(spec["id"])
        self._send({"op": "launch", "spec": spec})
        return await future

    def stop(self, session_id: str) -> bool:
        """SIGTERM to the replica's tree, SIGKILL after its grace period. False when the
        supervisor does not hold it (it has ended)."""
        return self._request("stop", session_id)

    def kill(self, session_id: str) -> bool:
        return self._request("kill", session_id)

    def _request(self, op: str, session_id: str) -> bool:
        if self._sock is None or session_id not in self.held:
            return False
        self._send({"op": op, "id": session_id})
        return True

    def _send(self, message: dict[str, Any]) -> None:
        if not self._outgoing:  # otherwise a write is already due
            # Written once this turn of the event loop is done: the requests of a burst of
            # creates go in one write, and wake the supervisor once.
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing += json.dumps(message).encode() + b"\n"

    def _flush(self) -> None:
        if self._sock is None:
            return  # gone meanwhile: its launches have failed already
        loop = asyncio.get_running_loop()
        try:
            while self._outgoing:
                del self._outgoing[: self._sock.send(self._outgoing)]
        except BlockingIOError:
            loop.add_writer(self._sock.fileno(), self._flush)
            return
        except OSError as exc:
            self._gone(f"cannot write to the supervisor: {exc.strerror}")
            return
        loop.remove_writer(self._sock.fileno())

    # ------------------------------------------------------------ answers

    def _read(self) -> None:
        if self._sock is None:
            return
        try:
            chunk = self._sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._gone("the supervisor ended")
            return
        self._incoming += chunk
        self._lines()

    def _lines(self) -> None:
        while (end := self._incoming.find(b"\n")) >= 0:
            line = bytes(self._incoming[:end])
            del self._incoming[: end + 1]
            self._reply(line)

    def _reply(self, line: bytes) -> None:
        try:
            reply = json.loads(line)
        except ValueError:
            log.error("the supervisor sent an unreadable line")
            return
        session_id = reply.get("id")
        if reply.get("ended"):
            self.held.discard(session_id)
            future = self._waiting.pop(session_id, None)
            if future is not None and not future.done():  # cannot happen: answered first
                future.set_exception(LaunchError("the replica ended before it started"))
            self._on_ended(session_id)
            return
        future = self._waiting.pop(session_id, None)
        if future is None or future.done():
            if "error" in reply:
                log.error("supervisor: %s", reply["error"])
            return
        if "error" in reply or not reply.get("pid"):
            self.held.discard(session_id)
            future.set_exception(LaunchError(reply.get("error", "no pid reported")))
        else:
            future.set_result((int(reply["pid"]), float(reply["ctime"]), reply.get("replica")))

    def _gone(self, why: str) -> None:
        log.warning("the supervisor is gone (%s); a new one starts on the next launch", why)
        self._detach()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(LaunchError(why))
        self.held.clear()
        self._on_gone()

    def _detach(self) -> None:
        if self._sock is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._sock.fileno())
            loop.remove_writer(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._outgoing.clear()
        self._incoming.clear()

    def close(self) -> None:
        """Let the supervisor go on alone: it keeps its replicas, records their ends, and exits
        after the last one (a later engine connects to it again)."""
        self._detach()

    def alive(self) -> bool:
        """The supervisor we last heard from still runs (same pid and start time)."""
        return is_alive(self.pid, self.ctime)
