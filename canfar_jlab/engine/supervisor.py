"""The per-replica supervisor: a small process that owns one replica from start to exit.

The fork server forks one supervisor per replica. The supervisor
- starts its own session, holds an exclusive lock on the session directory (one supervisor per
  session) and records itself and the replica in `supervisor.json`;
- runs the replica (`cmd` + `args`, no shell) in a new session and process group, stdout and
  stderr into a pipe that it copies into the log file (up to the cap, then discarded),
  stdin from /dev/null; when RAM was requested, its whole
  process tree is held to it (memlimit.py: killed, and reported OOMKilled, past it);
- becomes a child subreaper (Linux) so whatever the replica leaves behind is re-parented to it;
- copies the log, never more than its cap plus the marker (logcap.Copier);
- on SIGTERM (the engine's DELETE or deadline) sends SIGTERM to the replica's group and every
  descendant, then SIGKILL after the grace period;
- when the replica's main process ends, kills what is left of its tree (Kubernetes ends a
  container's other processes the same way), reaps everything, and writes `exit.json`.

Because it outlives the engine, the exit status of a replica that ends while the engine is down
is still recorded exactly. Standard library only on the common path (psutil is loaded only to
find stray descendants): it is a forked copy of the fork server, and every page it touches is
copied.
"""

from __future__ import annotations

import _signal
import contextlib
import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import sys
import time
from typing import TYPE_CHECKING

from . import logcap, memlimit
from .procs import start_time
from .sessionfiles import (
    EXIT_FILE,
    FILE_MODE,
    SESSION_LOG,
    SUPERVISOR_FILE,
    read_json,
    write_json_once,
)

if TYPE_CHECKING:
    from typing import Any, NoReturn

TICK = 1.0  # seconds between looks at the replica while nothing else happens
DRAIN_SECONDS = 2.0  # at the end, what the pipe still holds is copied for at most this long
REAP_TIMEOUT = 5.0
OWNER_WAIT = 5.0
PR_SET_CHILD_SUBREAPER = 36
# Back to default in the replica: Python ignores SIGPIPE and SIGXFSZ, and a signal ignored
# here (or by whoever started the engine, e.g. nohup) would stay ignored across exec.
_DEFAULT_IN_REPLICA = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGALRM,
    signal.SIGCHLD,
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


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
        import psutil  # only here: a scan of the process table, for processes that left the group

        try:
            descendants = psutil.Process().children(recursive=True)
        except psutil.Error:
            descendants = []
        for proc in descendants:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)  # psutil checks the pid still names the same process

    def on_term(self, _signum: int | None = None, _frame: object = None) -> None:
        if self.terminating:
            return
        self.terminating = True
        if self.pid is not None:  # otherwise done as soon as the replica exists
            self.stop()

    def stop(self) -> None:
        self.signal_tree(signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, max(self.grace, 0.01))

    def on_alarm(self, _signum: int, _frame: object) -> None:
        self.signal_tree(signal.SIGKILL)


def run(spec: dict[str, Any], reply_fd: int) -> NoReturn:
    """Supervise one replica described by `spec`, then leave without running Python's exit
    machinery (this is a forked copy of the fork server). The engine hears from us on
    `reply_fd` (the fork server's answer pipe) once the replica has started."""
    code = 70
    try:
        code = _supervise(spec, _Answer(str(spec["id"]), reply_fd))
    except BaseException:  # last resort: report and leave
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
    os._exit(code)


class _Answer:
    """Our one line to the engine: `{"id", "pid", "ctime", "replica"}` (forkserver.py)."""

    def __init__(self, session_id: str, reply_fd: int) -> None:
        self.session_id = session_id
        # Our own copy, close-on-exec so the replica never holds the engine's pipe.
        self.fd: int | None = fcntl.fcntl(reply_fd, fcntl.F_DUPFD_CLOEXEC, 3)

    def send(self, ctime: float | None = None, replica: int | None = None) -> None:
        if self.fd is None:
            return
        pid = os.getpid()
        reply = {"id": self.session_id, "pid": pid, "ctime": ctime or start_time(pid)}
        with contextlib.suppress(OSError):  # the engine is gone: it adopts us from the files
            os.write(self.fd, json.dumps({**reply, "replica": replica}).encode() + b"\n")
        os.close(self.fd)
        self.fd = None


def _supervise(spec: dict[str, Any], answer: _Answer) -> int:
    os.setsid()
    if spec.get("nice"):  # inherited by the replica: batch work yields to interactive work
        with contextlib.suppress(OSError):
            os.nice(int(spec["nice"]))
    # The C functions of `_signal`, not `signal`'s wrappers: those convert numbers to enums,
    # which costs a forked copy many copied pages (see _prebind).
    _signal.pthread_sigmask(signal.SIG_SETMASK, ())  # the replica inherits our mask
    _detach_stdio()
    session_dir: str = spec["dir"]
    try:
        os.mkdir(session_dir, 0o700)  # its parent is the engine's sessions directory
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(session_dir, mode=0o700, exist_ok=True)
    # The session directory itself is the lock: one supervisor per session, ever.
    lock_fd = os.open(session_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        answer.send()  # the engine follows us, then the owner (manager._ended)
        _await_owner(session_dir)
        return 0  # a duplicate launch: the supervisor that owns the session carries on
    if any(os.path.exists(os.path.join(session_dir, f)) for f in (SUPERVISOR_FILE, EXIT_FILE)):
        answer.send()
        return 0  # a duplicate launch after the owner: the session ran once, never again
    record: dict[str, Any] = {
        "pid": os.getpid(),
        "ctime": start_time(os.getpid()),
        "started": time.time(),
    }
    _become_subreaper()

    log_path = os.path.join(session_dir, SESSION_LOG)
    append_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    # The replica's stdout and stderr: a pipe we copy from (the write end goes to the replica
    # only). We outlive the engine, so an engine restart never touches it.
    out_r, out_w = os.pipe()
    os.set_blocking(out_r, False)
    copier = logcap.Copier(out_r, append_fd, int(spec["log_cap"]))

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w)
    replica = _Replica(float(spec["grace"]))
    # Python-level handlers only: exec resets them to default in the replica (an ignored
    # signal would stay ignored there).
    _signal.signal(_SIGTERM, replica.on_term)
    _signal.signal(_SIGALRM, replica.on_alarm)
    for sig in _WAKING:
        _signal.signal(sig, _wake)  # SIGCHLD wakes the loop through the wakeup fd

    try:
        replica.pid = _spawn(spec, out_w)
    except OSError as exc:
        os.close(out_w)
        copier.drain(0)
        message = f"canfar-jlab engine: cannot start {spec['argv'][0]!r}: {exc}\n"
        os.write(append_fd, message.encode(errors="replace"))
        _write_exit(session_dir, 127 if isinstance(exc, FileNotFoundError) else 126, None, False)
        answer.send(record["ctime"])  # the engine sees us end at once, with that exit status
        return 0
    os.close(out_w)
    record.update(replica_pid=replica.pid, replica_ctime=start_time(replica.pid))
    # Running from now on: the replica exists. Told before supervisor.json is written, which is
    # off the launch's path: the engine has our pid and start time to adopt us meanwhile.
    answer.send(record["ctime"], replica.pid)
    # What a restarted engine adopts:
    write_json_once(os.path.join(session_dir, SUPERVISOR_FILE), record)
    starting = _own_cpu()  # what starting cost us (bench/engine_launch.py prints it)
    if replica.terminating:  # SIGTERM came while starting
        replica.stop()

    # The RAM request bounds the whole tree (memlimit.py), not each process.
    guard = memlimit.for_replica(spec.get("ram_bytes"))
    status = _wait(replica, wake_r, copier, guard)
    _reap_all()
    copier.drain(DRAIN_SECONDS)
    extra = guard.outcome() if guard is not None else {}
    if extra:
        line = memlimit.oom_message(guard.limit, guard.used)  # type: ignore[union-attr]
        os.write(append_fd, f"canfar-jlab engine: {line}\n".encode())
    exit_code = os.waitstatus_to_exitcode(status)
    if exit_code >= 0:
        _write_exit(session_dir, exit_code, None, replica.terminating, extra, starting)
    else:
        _write_exit(session_dir, None, -exit_code, replica.terminating, extra, starting)
    return 0


def _await_owner(session_dir: str) -> None:
    """Leave only once the owner has recorded itself, so the engine can follow it."""
    deadline = time.monotonic() + OWNER_WAIT
    owner = os.path.join(session_dir, SUPERVISOR_FILE)
    while read_json(owner) is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _wake(_signum: int, _frame: object) -> None:
    """Nothing to do in Python: the wakeup fd has already woken the loop."""


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)  # from zero at the fork
    return own.ru_utime + own.ru_stime


def _write_exit(
    session_dir: str,
    code: int | None,
    sig: int | None,
    terminated: bool,
    extra: dict | None = None,
    starting: float | None = None,
) -> None:
    # CPU seconds of this supervisor (and of its start: fork to the replica started and the
    # engine told) and of the replica's reaped tree: what a replica costs beyond itself.
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {"supervisor": _own_cpu(), "replica": tree.ru_utime + tree.ru_stime}
    if starting is not None:
        cpu["starting"] = starting
    outcome = {
        "code": code,
        "signal": sig,
        "ended": time.time(),
        "terminated": terminated,
        "cpu": cpu,
    }
    outcome.update(extra or {})  # oom, limit_bytes, used_bytes (memlimit.py)
    write_json_once(os.path.join(session_dir, EXIT_FILE), outcome)


def _detach_stdio() -> None:
    """Let go of the fork server's pipes; stderr stays on the engine's log for diagnostics."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def _load_libc() -> ctypes.CDLL | None:
    """Loaded once in the fork server, so each supervisor only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()
# Resolved here, in the fork server, once: each supervisor is a forked copy, and looking the
# symbol up in every copy (ctypes objects, dlsym) cost each one pages and time.
_PRCTL = getattr(_LIBC, "prctl", None) if _LIBC is not None else None
_SIGTERM, _SIGALRM = int(signal.SIGTERM), int(signal.SIGALRM)
_WAKING = tuple(int(s) for s in (signal.SIGCHLD, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT))


def _become_subreaper() -> None:
    if _PRCTL is not None:
        try:
            _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except Exception:  # noqa: S110 - not being a subreaper only loses stray descendants
            pass


def _spawn(spec: dict[str, Any], log_fd: int) -> int:
    """Start the replica: `cmd` + `args`, no shell, in its own session and process group, the
    log as stdout and stderr, stdin from /dev/null, in the working directory. posix_spawn
    (vfork and exec) costs far less than a fork of this process. Every descriptor but 0-2 is
    close-on-exec here, so nothing else leaks into the replica."""
    argv: list[str] = spec["argv"]
    env: dict[str, str] = spec["env"]
    os.chdir(spec["cwd"])  # inherited; this process has no use for its own working directory
    executable = argv[0] if os.sep in argv[0] else _which(argv[0], env.get("PATH", os.defpath))
    return os.posix_spawn(
        executable,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ],
        setsid=True,
        setsigmask=(),
        setsigdef=_DEFAULT_IN_REPLICA,
    )


def _which(name: str, path: str) -> str:
    """`name` looked up on the replica's PATH, as exec*p would."""
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(2, "No such file or directory", name)


def _wait(
    replica: _Replica, wake_r: int, copier: logcap.Copier, guard: memlimit.TreeLimit | None
) -> int:
    """Wait for the main process to end, copying its output; return its wait status. Children
    re-parented to us while it runs are reaped as they end; past its RAM limit the whole tree
    is killed."""
    assert replica.pid is not None
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    tick = memlimit.TICK if guard is not None else TICK
    next_look = 0.0
    while True:
        if os.waitid(os.P_PID, replica.pid, flags) is not None:
            break
        now = time.monotonic()
        if now >= next_look:  # not once per chunk of output: a tree scan costs far more
            next_look = now + tick
            if guard is not None and guard.over():
                replica.signal_tree(signal.SIGKILL)
            _reap_others(replica.pid)
        more = copier.pump()
        watched = [wake_r, copier.read_fd] if copier.open else [wake_r]
        select.select(watched, [], [], 0 if more else max(next_look - time.monotonic(), 0))
        with contextlib.suppress(BlockingIOError):
            while os.read(wake_r, 512):
                pass
    # The main process is a zombie: its group id cannot be reused until we reap it, so the
    # group can be signalled safely. What is left of the container dies with it.
    with contextlib.suppress(OSError):
        os.killpg(replica.pid, signal.SIGKILL)
    replica.reaped = True  # set before reaping so a late signal handler skips killpg
    _, status = os.waitpid(replica.pid, 0)
    if _has_children():  # leftovers outside the group (we are their subreaper): find them
        replica.signal_tree(signal.SIGKILL)
    return status


def _has_children() -> bool:
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


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
