"""Find, start and stop the local engine: the API the Skaha client's credential discovery, the CLI
and the tests call.

Light on purpose (standard library only): importing it must not cost a web framework.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import data_home
from ..statuses import SESSION_LIVE
from .layout import FILE_MODE, EngineLayout, read_json
from .procs import is_alive, send_signal, start_time

LOG_ROTATE_BYTES = 10 * 1024 * 1024
# Loopback only: never send the engine's token through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EngineError(RuntimeError):
    """The engine could not be started, reached or stopped (one line, no secrets)."""


@dataclass(frozen=True)
class EngineInfo:
    """A running engine: its base URL (ending in /skaha), pid, token file and state."""

    url: str
    pid: int
    token_file: Path
    state: str = field(default="running")

    def token(self) -> str:
        """The bearer token, read from the token file each time (it is never in the repr)."""
        return self.token_file.read_text().strip()


def _layout(home: Path | str | None) -> EngineLayout:
    return EngineLayout(Path(home).expanduser().resolve() if home else data_home().resolve())


def engine_status(home: Path | None = None) -> EngineInfo | None:
    """The running engine for `home` (default: the user's data home), or None."""
    layout = _layout(home)
    state = read_json(layout.state_file)
    if not state:
        return None
    pid, ctime = state.get("pid"), state.get("ctime")
    if not isinstance(pid, int) or not is_alive(pid, ctime):
        return None  # a state file left by an engine that did not stop cleanly
    return EngineInfo(
        url=str(state.get("url")),
        pid=pid,
        token_file=layout.token_file,
        state=str(state.get("state", "running")),
    )


def ensure_engine(
    home: Path | None = None,
    timeout: float = 20.0,
    *,
    config: Mapping[str, Any] | None = None,
) -> EngineInfo:
    """The running engine, started as a background daemon if needed; returns once it answers.

    `config` holds settings for a newly started engine (see docs/engine.md); a running engine
    keeps its own. Processes racing here start one engine: the check and the start happen under
    an exclusive lock.
    """
    layout = _layout(home)
    layout.ensure_dirs()
    deadline = time.monotonic() + timeout
    with _locked(layout.start_lock, deadline):
        info = engine_status(layout.home)
        if info is not None and info.state == "stopping":
            if not _wait_gone(info.pid, start_time(info.pid), deadline):
                raise EngineError(f"the engine (pid {info.pid}) is still stopping")
            info = None
        if info is not None:
            _check_answers(info, deadline, layout)
            return info
        return _start(layout, config, deadline, timeout)


def stop_engine(
    home: Path | None = None,
    timeout: float = 20.0,
    *,
    terminate_replicas: bool = False,
) -> bool:
    """Stop the engine; False if none was running. Replicas keep running (a later engine adopts
    them) unless `terminate_replicas`, which deletes every active session first."""
    layout = _layout(home)
    info = engine_status(layout.home)
    if info is None:
        return False
    deadline = time.monotonic() + timeout
    if terminate_replicas:
        _delete_active_sessions(info, deadline)
    token = start_time(info.pid)
    if not send_signal(info.pid, token, signal.SIGTERM):
        return True  # it ended meanwhile
    if not _wait_gone(info.pid, token, deadline):
        send_signal(info.pid, token, signal.SIGKILL)
        _wait_gone(info.pid, token, time.monotonic() + 5)
    return True


# ------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _locked(path: Path, deadline: float) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise EngineError(
                        "timed out waiting for another process that is starting the engine"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


def _wait_gone(pid: int, ctime: float | None, deadline: float) -> bool:
    """Wait until the process has ended; an unreaped zombie counts as ended (a detached
    daemon's parent is init, which may be slow to reap it or not reap at all)."""
    while is_alive(pid, ctime):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _request(
    info: EngineInfo, method: str, path: str, deadline: float, token: str | None = None
) -> tuple[int, bytes]:
    if not info.url.startswith("http://127.0.0.1:"):
        raise EngineError(f"refusing to send the engine's token to {info.url}")
    request = urllib.request.Request(info.url + path, method=method)  # noqa: S310 - checked
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    timeout = min(5.0, max(0.1, deadline - time.monotonic()))
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EngineError(f"the engine at {info.url} does not answer: {reason}") from None


def _check_answers(info: EngineInfo, deadline: float, layout: EngineLayout) -> None:
    try:
        token = info.token()
    except OSError:
        raise EngineError(f"the engine's token file {info.token_file} is unreadable") from None
    status, _ = _request(info, "GET", "/v1/repository", deadline, token)
    if status == 401:
        raise EngineError(
            f"the token in {info.token_file} is not the running engine's; restart the engine "
            "(canfar-jlab engine stop && canfar-jlab engine start)"
        )
    if status != 200:
        raise EngineError(f"the engine at {info.url} answered {status}; see {layout.log_file}")


def _rotate_log(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))


def _last_log_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").strip().splitlines()
        if lines:
            return lines[-1][-300:]
    return ""


def _start(
    layout: EngineLayout, config: Mapping[str, Any] | None, deadline: float, timeout: float
) -> EngineInfo:
    _rotate_log(layout.log_file)
    read_end, write_end = os.pipe()
    log_fd = os.open(layout.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    command = [sys.executable, "-m", "canfar_jlab.engine", "--home", str(layout.home)]
    command += ["--detach", "--ready-fd", str(write_end)]
    if config:
        command += ["--overrides", json.dumps(dict(config), default=str)]
    try:
        launcher = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    finally:
        os.close(write_end)
        os.close(log_fd)
    try:
        launcher.wait(timeout=max(0.1, deadline - time.monotonic()))  # exits once detached
        line = _read_line(read_end, deadline)
    except subprocess.TimeoutExpired:
        line = None
    finally:
        os.close(read_end)
    if line is None:
        raise EngineError(f"the engine did not start within {timeout:g}s; see {layout.log_file}")
    if line.startswith("error "):
        raise EngineError(f"the engine did not start: {line[6:]}")
    if not line.startswith("ok "):
        detail = _last_log_line(layout.log_file)
        raise EngineError(
            f"the engine exited while starting; see {layout.log_file}"
            + (f" ({detail})" if detail else "")
        )
    info = engine_status(layout.home)
    if info is None:
        raise EngineError(f"the engine started but left no state; see {layout.log_file}")
    return info


def _read_line(fd: int, deadline: float) -> str | None:
    """One line from the ready pipe: "" at EOF, None on timeout."""
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _delete_active_sessions(info: EngineInfo, deadline: float) -> None:
    token = info.token()

    def active() -> list[str]:
        status, body = _request(info, "GET", "/v1/session", deadline, token)
        if status != 200:
            raise EngineError(f"cannot list the engine's sessions (HTTP {status})")
        return [s["id"] for s in json.loads(body) if s.get("status") in SESSION_LIVE]

    for session_id in active():
        _request(info, "DELETE", f"/v1/session/{session_id}", deadline, token)
    while active():
        if time.monotonic() >= deadline:
            raise EngineError("sessions were still stopping when the timeout passed")
        time.sleep(0.05)
