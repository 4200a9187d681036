"""The engine daemon: `python -m canfar_jlab.engine --home DIR [--detach --ready-fd N]`.

Binds 127.0.0.1 only, answers the Skaha API under /skaha, and records its URL and pid in the
state file and its bearer token in the token file (both mode 0600) for clients to find.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import gc
import getpass
import json
import logging
import os
import re
import secrets
import signal
import sys
import time
from pathlib import Path

from ..paths import data_home
from ..version import __version__
from .config import ConfigError, EngineConfig, load_config, settings_file, settings_from_env
from .layout import FILE_MODE, EngineLayout, read_json, write_json_atomic
from .procs import start_time

log = logging.getLogger("canfar_jlab.engine")

SHUTDOWN_TIMEOUT = 5.0
MAX_BODY = 1024 * 1024


class StartupError(Exception):
    """The daemon cannot start; the message is one line for the user."""


class ReadyPipe:
    """Tells the client that started us whether start-up worked (one line, then closed)."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def _send(self, line: str) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._fd, line.encode() + b"\n")
            os.close(self._fd)
        self._fd = None

    def ok(self, url: str) -> None:
        self._send(f"ok {url}")

    def fail(self, message: str) -> None:
        self._send(f"error {message}")


def ensure_token(layout: EngineLayout) -> str:
    """The bearer token: kept across restarts (clients that cached it keep working) unless the
    file is missing, empty, not ours or readable by others; then a new one is created with mode
    0600 from the start."""
    path = layout.token_file
    with contextlib.suppress(OSError):
        info = path.stat()
        token = path.read_text().strip()
        if token and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0:
            return token
        log.warning("replacing the token file %s (empty, foreign or readable by others)", path)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".token.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


def _take_run_lock(layout: EngineLayout) -> int:
    fd = os.open(layout.run_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StartupError(f"another engine is already running for {layout.home}") from None
    return fd


def _identity_username(config: EngineConfig) -> str:
    if config.username:
        return config.username
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return str(os.getuid())


def write_state(layout: EngineLayout, url: str, port: int, state: str) -> None:
    write_json_atomic(
        layout.state_file,
        {
            "url": url,
            "port": port,
            "pid": os.getpid(),
            "ctime": start_time(os.getpid()),
            "state": state,
            "version": __version__,
            "python": sys.executable,
            "started": time.time(),
        },
    )


async def serve(config: EngineConfig, layout: EngineLayout, token: str, ready: ReadyPipe) -> None:
    import tornado.httpserver
    import tornado.netutil
    import tornado.web

    from .handlers import log_request, routes
    from .manager import SessionManager
    from .session_store import SessionStore
    from .wire import Identity

    try:
        sockets = tornado.netutil.bind_sockets(config.port, address="127.0.0.1")
    except OSError as exc:
        raise StartupError(f"cannot listen on 127.0.0.1:{config.port}: {exc.strerror}") from None
    port = sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/skaha"
    identity = Identity(
        username=_identity_username(config),
        uid=os.getuid(),
        gid=os.getgid(),
        groups=tuple(os.getgroups()),
        hostname=f"127.0.0.1:{port}",
    )
    store = SessionStore(layout.database)
    manager = SessionManager(config, layout, store, identity)
    await manager.start()
    app = tornado.web.Application(
        routes(manager, token, url), log_function=log_request, serve_traceback=False
    )
    # Create parameters are bounded far below this (params.py); nothing else has a body.
    server = tornado.httpserver.HTTPServer(app, xheaders=False, max_body_size=MAX_BODY)
    server.add_sockets(sockets)
    # What start-up built (modules, the app, the sessions loaded) lives as long as the engine:
    # kept out of the cyclic collector's sight, which otherwise walked all of it again and again
    # during a burst of creates (a tenth of the daemon's CPU; bench/engine_launch.py).
    gc.collect()
    gc.freeze()
    write_state(layout, url, port, "running")
    log.info("engine %s listening at %s (pid %d)", __version__, url, os.getpid())
    ready.ok(url)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    await stop.wait()

    log.info("stopping; running replicas keep running and will be adopted on the next start")
    write_state(layout, url, port, "stopping")
    server.stop()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_TIMEOUT)
    manager.close()
    store.close()
    with contextlib.suppress(OSError):
        layout.state_file.unlink()
    log.info("stopped")


def _remembered(layout: EngineLayout, overrides: dict | None) -> dict | None:
    """The options to start with: those given and those of `CANFAR_JLAB_ENGINE_*` variables
    (remembered for a restart after a crash, which may come from a process without them),
    else those of an engine that ended without a clean stop."""
    path = settings_file(layout)
    if overrides is None:
        saved = read_json(path)
        if saved:
            return saved.get("overrides")
    chosen = {**settings_from_env(os.environ), **(overrides or {})}
    if chosen:
        write_json_atomic(path, {"overrides": chosen})
    return chosen or None


class _Redact(logging.Filter):
    """Keeps the engine's token and any Authorization value out of engine.log, whoever logs
    them (tornado logs a malformed request's header lines whole)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _HEADER_VALUE.sub(r"\1[redacted]", _AUTHORIZATION.sub(r"\1[redacted]", text))
        if self._token:
            clean = clean.replace(self._token, "[redacted]")
        if clean != text:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = str(record.exc_info[1])
            if self._token in exc_text or _AUTHORIZATION.search(exc_text):
                record.exc_info, record.exc_text = None, None
        return True


# tornado's "Invalid header value '...'" quotes whichever header was malformed, maybe ours.
_HEADER_VALUE = re.compile(r"(header value )(?:'[^']*'|\"[^\"]*\"|\S+)", re.I)
_AUTHORIZATION = re.compile(r"((?:authorization|token)\b[\"']?\s*[:=]\s*)[^\r\n,;&]+", re.I)


def _redact_logs(token: str) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Redact(token))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m canfar_jlab.engine")
    parser.add_argument("--home", type=Path, default=None, help="data home (default: per user)")
    parser.add_argument("--overrides", default=None, help="settings as a JSON object")
    parser.add_argument("--detach", action="store_true", help="fork into the background")
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.detach:  # the starting client waits for this parent; the daemon lives on alone
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
    ready = ReadyPipe(args.ready_fd)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    layout: EngineLayout | None = None  # set once this process owns the home
    try:
        overrides = json.loads(args.overrides) if args.overrides else None
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError("--overrides must be a JSON object")
        home = EngineLayout((args.home or data_home()).expanduser().resolve())
        home.ensure_dirs()
        _run_lock = _take_run_lock(home)  # held until the process ends
        layout = home
        overrides = _remembered(layout, overrides)
        config = load_config(layout, overrides)
        token = ensure_token(layout)
        _redact_logs(token)
        asyncio.run(serve(config, layout, token, ready))
        with contextlib.suppress(OSError):
            settings_file(layout).unlink()  # a clean stop: the next start is a fresh one
    except (StartupError, ConfigError, ValueError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if layout is not None:  # settings that do not start an engine are not kept for later
            with contextlib.suppress(OSError):
                settings_file(layout).unlink()
        log.error("engine not started: %s", message)
        ready.fail(message)
        return 2
    return 0
