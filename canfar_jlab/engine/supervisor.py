"""The per-replica supervisor: a small process that owns one replica from start to exit.

The fork server forks one supervisor per replica. The supervisor
- starts its own session, holds `supervisor.lock` and records itself in `supervisor.json`;
- runs the replica (`cmd` + `args`, no shell) in a new session and process group, stdout and
  stderr appended to the log file, stdin from /dev/null, under an address-space limit when RAM
  was requested;
- becomes a child subreaper (Linux) so whatever the replica leaves behind is re-parented to it;
- keeps the log under its cap;
- on SIGTERM (the engine's DELETE or deadline) sends SIGTERM to the replica's group and every
  descendant, then SIGKILL after the grace period;
- when the replica's main process ends, kills what is left of its tree (Kubernetes ends a
  container's other processes the same way), reaps everything, and writes `exit.json`.

Because it outlives the engine, the exit status of a replica that ends while the engine is down
is still recorded exactly. Standard library plus psutil only: it runs inside the fork server.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import psutil

from . import logcap
from .layout import (
    EXIT_FILE,
    FILE_MODE,
    SESSION_LOG,
    SUPERVISOR_FILE,
    SUPERVISOR_LOCK,
    write_json_atomic,
)

TICK = 1.0  # seconds between log-cap checks while nothing else happens
REAP_TIMEOUT = 5.0
PR_SET_CHILD_SUBREAPER = 36
# Dispositions this process changes, put back to default in the replica before exec.
_RESET = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGALRM,
    signal.SIGCHLD,
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def process_ctime(pid: int) -> float | None:
    """The process's start time as psutil reports it (the engine compares the same number)."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class _Replica:
    """The supervised main process and what has been done to it."""

    def __init__(self, grace: float) -> None:
        self.pid: int | None = None
        self.reaped = False
        self.terminating = False
        self.grace = grace

    def signal_tree(self, sig: int) -> None:
        """Signal the replica's process group (safe: the unreaped main process pins its id) and
        every descendant of this supervisor, including those that left the group."""
        if self.pid is not None and not self.reaped:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, sig)
        try:
            descendants = psutil.Process().children(recursive=True)
        except psutil.Error:
            descendants = []
        for proc in descendants:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)  # psutil checks the pid still names the same process

    def on_term(self, _signum: int, _frame: object) -> None:
        if self.terminating:
            return
        self.terminating = True
        self.signal_tree(signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, max(self.grace, 0.01))

    def on_alarm(self, _signum: int, _frame: object) -> None:
        self.signal_tree(signal.SIGKILL)


def run(spec: dict[str, Any]) -> NoReturn:
    """Supervise one replica described by `spec`, then leave without running Python's exit
    machinery (this is a forked copy of the fork server)."""
    code = 70
    try:
        code = _supervise(spec)
    except BaseException:  # last resort: report and leave
        with contextlib.suppress(Exception):
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
    os._exit(code)


def _supervise(spec: dict[str, Any]) -> int:
    os.setsid()
    signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGTERM})  # held until the replica exists
    _detach_stdio()
    session_dir = Path(spec["dir"])
    lock_fd = os.open(
        session_dir / SUPERVISOR_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
    )
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another supervisor already owns this session; leave it alone
    record: dict[str, Any] = {
        "pid": os.getpid(),
        "ctime": process_ctime(os.getpid()),
        "started": time.time(),
    }
    write_json_atomic(session_dir / SUPERVISOR_FILE, record)
    _become_subreaper()

    log_path = session_dir / SESSION_LOG
    append_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    cap_fd = os.open(log_path, os.O_RDWR | os.O_CLOEXEC)
    cap = int(spec["log_cap"])

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    replica = _Replica(float(spec["grace"]))
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through the wakeup fd
    signal.signal(signal.SIGTERM, replica.on_term)
    signal.signal(signal.SIGALRM, replica.on_alarm)
    for ignored in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(ignored, signal.SIG_IGN)

    replica.pid = _spawn(spec, append_fd)
    record.update(replica_pid=replica.pid, replica_ctime=process_ctime(replica.pid))
    write_json_atomic(session_dir / SUPERVISOR_FILE, record)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())

    status = _wait(replica, wake_r, cap_fd, cap)
    _reap_all()
    logcap.enforce(cap_fd, cap)
    exit_code = os.waitstatus_to_exitcode(status)
    write_json_atomic(
        session_dir / EXIT_FILE,
        {
            "code": exit_code if exit_code >= 0 else None,
            "signal": -exit_code if exit_code < 0 else None,
            "ended": time.time(),
            "terminated": replica.terminating,
        },
    )
    return 0


def _detach_stdio() -> None:
    """Let go of the fork server's pipes; stderr stays on the engine's log for diagnostics."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _limit_memory(limit: int) -> None:
    """RAM request -> RLIMIT_AS: allocations past it fail (MemoryError in Python)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _spawn(spec: dict[str, Any], log_fd: int) -> int:
    argv: list[str] = spec["argv"]
    pid = os.fork()
    if pid:
        return pid
    try:  # the replica, between fork and exec: this process has a single thread
        os.setsid()
        for sig in _RESET:
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if spec.get("ram_bytes"):
            _limit_memory(int(spec["ram_bytes"]))
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.chdir(spec["cwd"])
        os.closerange(3, 1 << 16)
        os.execvpe(argv[0], argv, spec["env"])  # noqa: S606 - an argument list, no shell
    except BaseException as exc:  # reported in the replica's own log
        message = f"canfar-jlab engine: cannot start {argv[0]!r}: {exc}\n"
        with contextlib.suppress(OSError):
            os.write(2, message.encode(errors="replace"))
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
    raise AssertionError("unreachable")


def _wait(replica: _Replica, wake_r: int, cap_fd: int, cap: int) -> int:
    """Wait for the main process to end; return its wait status. Children re-parented to us
    while it runs are reaped as they end."""
    assert replica.pid is not None
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while True:
        if os.waitid(os.P_PID, replica.pid, flags) is not None:
            break
        _reap_others(replica.pid)
        logcap.enforce(cap_fd, cap)
        select.select([wake_r], [], [], TICK)
        with contextlib.suppress(BlockingIOError):
            while os.read(wake_r, 512):
                pass
    # The main process is a zombie: its group id cannot be reused until we reap it.
    replica.signal_tree(signal.SIGKILL)
    replica.reaped = True  # set before reaping so a late signal handler skips killpg
    _, status = os.waitpid(replica.pid, 0)
    return status


def _reap_others(main: int) -> None:
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, flags)
        except ChildProcessError:
            return
        if info is None or info.si_pid == main:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def _reap_all() -> None:
    """Reap every remaining child (already sent SIGKILL), giving up after REAP_TIMEOUT."""
    deadline = time.monotonic() + REAP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)
