"""The engine's supervisor: one long-lived process that starts, watches and ends every replica.

`python -m canfar_jlab.engine.supervisor FD` serves the listening Unix socket `FD`
(`<home>/engine/supervisor.sock`, made by the engine, in a 0700 directory). It is a process of
its own, in its own session, apart from the HTTP daemon: it outlives the daemon (a crash, a
`kill -9`, a stop), so a replica that ends while no daemon runs still has its exit status
recorded exactly, and the next daemon connects to it again and carries on (adoption).

For each replica it
- takes an exclusive lock on the session directory (one run per session, ever: a session that
  has `supervisor.json` or `exit.json` never runs again) and records `supervisor.json` (its own
  pid and start-time token, the replica's);
- starts the replica with `posix_spawn` (`cmd` + `args`, no shell) in a new session and process
  group, stdin from /dev/null, stdout and stderr into a pipe it copies into `output.log` up to
  the cap, then discards (logcap.Copier: every pipe in one selector);
- holds a replica that asked for RAM to it over its whole process tree (memlimit.py);
- on `stop` sends SIGTERM to the replica's group and every process of its tree, then SIGKILL
  after the grace period;
- when the replica's main process ends, kills what is left of its tree (Kubernetes ends a
  container's other processes the same way), reaps it, and writes `exit.json`.

It is a child subreaper (Linux), so processes a replica leaves behind are re-parented to it; it
tells whose they are by the `skaha_sessionid` every replica has in its environment (descendants
inherit it), and kills them with their replica. A stray that both left its replica's tree and
dropped that variable belongs to no replica and is killed when found.

Why one process for all replicas: a supervisor process per replica cost a fork of a Python
process and its copy-on-write faults per replica (about 3 ms of CPU each, a fifth of a trivial
replica), which kept launching 100 replicas at 1.3x spawning them directly (docs/engine.md).

The line protocol (one JSON object per line, both ways):
- engine to supervisor: `{"op": "launch", "spec": {...}}` (manager._launch), `{"op": "stop",
  "id"}` (TERM, grace, KILL), `{"op": "kill", "id"}` (KILL now);
- supervisor to engine: `{"hello": {"pid", "ctime", "held": [ids]}}` on connecting (the sessions
  it holds: those without `exit.json` yet); `{"id", "pid", "ctime", "replica"}` once a replica
  has started (or could not start: its `exit.json` is written and `ended` follows);
  `{"id", "error"}` when a launch cannot be done at all; `{"id", "ended": true}` once a held
  session's `exit.json` is written.
One engine at a time: a new connection replaces the previous one. With no engine connected and
no replica left, the supervisor exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import heapq
import json
import os
import queue
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import logcap, memlimit
from .procs import start_time
from .sessionfiles import (
    EXIT_FILE,
    FILE_MODE,
    SESSION_LOG,
    SUPERVISOR_FILE,
    write_json_once,
)

DRAIN_SECONDS = 2.0  # after the main process ends, what its pipe still holds, for at most this
FIRST_CONNECTION = 30.0  # the engine that started us connects at once; give up after this
PR_SET_CHILD_SUBREAPER = 36
SPAWNERS = 8  # threads starting replicas at once (each mostly waits for its exec)
TAG = b"skaha_sessionid="  # in every replica's environment, inherited by its descendants
# Back to default here (main), so not ignored in a replica: a signal ignored by whoever started
# the engine (e.g. nohup) would stay ignored across exec.
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
    """One session held by the supervisor, from its launch until its `exit.json`."""

    def __init__(self, spec: dict[str, Any], lock_fd: int) -> None:
        self.id = str(spec["id"])
        self.dir: str = spec["dir"]
        self.grace = float(spec["grace"])
        self.lock_fd = lock_fd
        self.log_fd = -1
        self.copier: logcap.Copier | None = None
        self.argv0 = str(spec["argv"][0])
        self.nice = int(spec.get("nice") or 0)
        self.popen: subprocess.Popen[bytes] | None = None  # kept so it never reaps for us
        self.pid: int | None = None
        self.stop_asked = False  # a stop that came while it was starting
        self.status: int | None = None  # wait status, once reaped
        self.cpu_replica = 0.0  # the reaped main process and what it reaped
        self.terminating = False
        self.guard: memlimit.TreeLimit | None = memlimit.for_replica(spec.get("ram_bytes"))
        # CPU seconds this process spent on it (thread time, spawner threads included), by
        # phase; exit.json records them with their sum (bench/engine_launch.py prints them).
        self.cpu = {"starting": 0.0, "logs": 0.0, "memory": 0.0, "ending": 0.0}

    @property
    def reaped(self) -> bool:
        return self.status is not None


class Supervisor:
    def __init__(self, listener: socket.socket) -> None:
        self.pid = os.getpid()
        self.ctime = start_time(self.pid)
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.held: dict[str, _Replica] = {}  # by session id, until exit.json is written
        self.mains: dict[int, _Replica] = {}  # by main pid, until reaped
        self.conn: socket.socket | None = None
        self.incoming = bytearray()
        self.outgoing = bytearray()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self.ever_connected = False
        self.started = time.monotonic()
        self.next_tick = 0.0
        self.guarded = 0  # running replicas with a RAM limit (memlimit.py)
        self.main_children = f"/proc/{self.pid}/task/{self.pid}/children"
        # Replicas are started by a few threads (see _spawn_in_thread); the loop hears of each.
        self.spawners = ThreadPoolExecutor(SPAWNERS, thread_name_prefix="spawner")
        self.spawned: queue.SimpleQueue[tuple[_Replica, int, Any]] = queue.SimpleQueue()
        self.spawning = 0  # handed to a spawner, not yet back
        self.spawned_r, self.spawned_w = os.pipe()  # os.pipe: close-on-exec already
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w, self.spawned_r, self.spawned_w):
            os.set_blocking(fd, False)
        self.wake_r = wake_r
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, _nothing)  # wakes the loop through the wakeup fd
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, self._accept)
        self.selector.register(wake_r, selectors.EVENT_READ, self._woken)
        self.selector.register(self.spawned_r, selectors.EVENT_READ, self._spawned)

    # ------------------------------------------------------------ the loop

    def serve(self) -> None:
        while not self._done():
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            if self.guarded:
                delay = max(0.0, self.next_tick - time.monotonic())
                timeout = delay if timeout is None else min(timeout, delay)
            if not self.ever_connected:
                timeout = min(timeout if timeout is not None else FIRST_CONNECTION, 1.0)
            for key, _mask in self.selector.select(timeout):
                _guarded(key.data)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _guarded(heapq.heappop(self.timers)[2])
            if now >= self.next_tick and self.guarded:
                self.next_tick = now + memlimit.TICK
                _guarded(self._watch_memory)

    def _done(self) -> bool:
        if self.conn is not None or self.held or self.spawning:
            return False
        if self.ever_connected:
            return True
        return time.monotonic() - self.started > FIRST_CONNECTION

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self._timer_seq, action))

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass
        self._reap()

    # ------------------------------------------------------------ the engine's connection

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if not _same_user(conn):  # the socket is 0600 in a 0700 directory; checked anyway
            conn.close()
            return
        if self.conn is not None:  # one engine at a time: the newest one
            self._drop_connection()
        conn.setblocking(False)
        self.conn, self.ever_connected = conn, True
        self.selector.register(conn, selectors.EVENT_READ, self._read)
        hello = {"pid": self.pid, "ctime": self.ctime, "held": sorted(self.held)}
        self._send({"hello": hello})

    def _drop_connection(self) -> None:
        if self.conn is None:
            return
        self.selector.unregister(self.conn)
        self.conn.close()
        self.conn = None
        self.incoming.clear()
        self.outgoing.clear()

    def _read(self) -> None:
        assert self.conn is not None
        try:
            chunk = self.conn.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop_connection()
            return
        self.incoming += chunk
        while (end := self.incoming.find(b"\n")) >= 0:
            line = bytes(self.incoming[:end])
            del self.incoming[: end + 1]
            if line.strip():
                self._command(line)

    def _command(self, line: bytes) -> None:
        cpu0 = time.thread_time()
        try:
            request = json.loads(line)
            op = request["op"]
            if op == "launch":
                self._launch(request["spec"], cpu0)
            elif op == "stop":
                self._stop(str(request["id"]))
            elif op == "kill":
                self._kill(str(request["id"]))
            else:
                raise ValueError(f"unknown op {op!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self._send({"id": None, "error": f"bad request: {exc}"})

    def _send(self, message: dict[str, Any]) -> None:
        if self.conn is None:
            return  # no engine: the next one reads the files
        self.outgoing += json.dumps(message).encode() + b"\n"
        self._flush()

    def _flush(self) -> None:
        if self.conn is None:
            return
        try:
            while self.outgoing:
                del self.outgoing[: self.conn.send(self.outgoing)]
        except (BlockingIOError, InterruptedError):
            self.selector.modify(
                self.conn, selectors.EVENT_READ | selectors.EVENT_WRITE, self._ready
            )
            return
        except OSError:
            self._drop_connection()
            return
        self.selector.modify(self.conn, selectors.EVENT_READ, self._read)

    def _ready(self) -> None:
        """The connection is readable or writable again (while replies are queued)."""
        self._flush()
        if self.conn is not None:
            self._read()

    # ------------------------------------------------------------ launching

    def _launch(self, spec: dict[str, Any], cpu0: float) -> None:
        session_id = str(spec["id"])
        held = self.held.get(session_id)
        if held is not None:  # launched again while it runs (an engine restarted mid-launch)
            self._started(held)
            return
        session_dir: str = spec["dir"]
        try:
            try:
                os.mkdir(session_dir, 0o700)  # its parent is the engine's sessions directory
            except FileExistsError:
                pass
            # The session directory itself is the lock: one run per session, ever.
            lock_fd = os.open(session_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            self._send({"id": session_id, "error": f"cannot prepare the session: {exc.strerror}"})
            return
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            ran = any(os.path.exists(os.path.join(session_dir, f)) for f in _RUN_FILES)
        except OSError:
            ran = True  # another supervisor holds it (cannot happen with one per engine home)
        if ran:  # a duplicate launch after the session ran: it never runs again
            os.close(lock_fd)
            self._send({"id": session_id, "pid": self.pid, "ctime": self.ctime, "replica": None})
            self._send({"id": session_id, "ended": True})
            return
        rep = _Replica(spec, lock_fd)
        log_path = os.path.join(session_dir, SESSION_LOG)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        try:
            rep.log_fd = os.open(log_path, flags, FILE_MODE)
            out_r, out_w = os.pipe()  # close-on-exec (not os.pipe2: macOS has none)
        except OSError as exc:  # out of descriptors or disk: the session never started
            for fd in (rep.log_fd, lock_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._send({"id": session_id, "error": f"cannot prepare the session: {exc.strerror}"})
            return
        self.held[session_id] = rep
        os.set_blocking(out_r, False)  # ours; the replica's end stays blocking, as any stdout
        rep.copier = logcap.Copier(out_r, rep.log_fd, int(spec["log_cap"]))
        self.spawning += 1
        self.spawners.submit(self._spawn_in_thread, rep, spec, out_w)
        rep.cpu["starting"] += time.thread_time() - cpu0

    def _spawn_in_thread(self, rep: _Replica, spec: dict[str, Any], out_w: int) -> None:
        """In a spawner thread: start the replica, hand the outcome to the loop. Starting a
        process waits until it has exec'd, most of that time in the kernel and waiting to be
        scheduled (more so for a new session), without the GIL: several threads overlap it,
        which one process spawning in turn cannot (os.posix_spawn holds the GIL)."""
        cpu0 = time.thread_time()
        try:
            outcome: subprocess.Popen[bytes] | OSError = _spawn(spec, out_w)
        except OSError as exc:
            outcome = exc
        except BaseException as exc:
            outcome = OSError(f"cannot start: {exc}")
        rep.cpu["starting"] += time.thread_time() - cpu0
        self.spawned.put((rep, out_w, outcome))
        with contextlib.suppress(OSError):
            os.write(self.spawned_w, b"x")

    def _spawned(self) -> None:
        """Spawner threads have started replicas (or failed to): they run from now on."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.spawned_r, 512):
                pass
        while not self.spawned.empty():
            rep, out_w, outcome = self.spawned.get()
            self.spawning -= 1
            cpu0 = time.thread_time()
            os.close(out_w)
            assert rep.copier is not None
            if isinstance(outcome, OSError):
                message = f"canfar-jlab engine: cannot start {rep.argv0!r}: {outcome}\n"
                rep.copier.drain(0)
                with contextlib.suppress(OSError):
                    os.write(rep.log_fd, message.encode(errors="replace"))
                rep.status = (127 if isinstance(outcome, FileNotFoundError) else 126) << 8
                self._started(rep)
                self._finish(rep)
                continue
            rep.popen, rep.pid = outcome, outcome.pid
            if rep.nice:  # batch work yields to interactive work
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, rep.pid, rep.nice)
            self.mains[rep.pid] = rep
            self.guarded += rep.guard is not None
            fd = rep.copier.read_fd
            self.selector.register(fd, selectors.EVENT_READ, lambda rep=rep: self._pump(rep))
            # Running from now on: the replica exists.
            self._started(rep)
            record = {
                "pid": self.pid,
                "ctime": self.ctime,
                "started": time.time(),
                "replica_pid": rep.pid,
                "replica_ctime": start_time(rep.pid),
            }
            with contextlib.suppress(OSError):  # what is adopted (a full disk loses it)
                write_json_once(os.path.join(rep.dir, SUPERVISOR_FILE), record)
            if rep.stop_asked:  # a stop came while it was starting
                rep.stop_asked = False
                self._stop(rep.id)
            rep.cpu["starting"] += time.thread_time() - cpu0
        self._reap()  # exits that waited for their replica to be known

    def _started(self, rep: _Replica) -> None:
        self._send({"id": rep.id, "pid": self.pid, "ctime": self.ctime, "replica": rep.pid})

    # ------------------------------------------------------------ logs

    def _pump(self, rep: _Replica) -> None:
        assert rep.copier is not None
        cpu0 = time.thread_time()
        fd = rep.copier.read_fd
        rep.copier.pump()
        rep.cpu["logs"] += time.thread_time() - cpu0
        if not rep.copier.open:  # every writer has closed it
            self.selector.unregister(fd)
            if rep.reaped:
                self._finish(rep)

    # ------------------------------------------------------------ stopping

    def _stop(self, session_id: str) -> None:
        rep = self.held.get(session_id)
        if rep is None or rep.reaped or rep.terminating:
            return
        if rep.pid is None:
            rep.stop_asked = True
            return
        rep.terminating = True
        self._signal_tree(rep, signal.SIGTERM)
        self._later(max(rep.grace, 0.01), lambda: self._signal_tree(rep, signal.SIGKILL))

    def _kill(self, session_id: str) -> None:
        rep = self.held.get(session_id)
        if rep is not None:
            rep.terminating = True
            self._signal_tree(rep, signal.SIGKILL)

    def _signal_tree(self, rep: _Replica, sig: int) -> None:
        """Signal the replica's process group (safe: the unreaped main process pins its id),
        every descendant of its main process, and the strays re-parented to us that are its."""
        if rep.pid is None or self.held.get(rep.id) is not rep:
            return  # not started yet, or over (a grace timer that outlived its replica)
        if not rep.reaped:
            with contextlib.suppress(OSError):
                os.killpg(rep.pid, sig)
            _, tree = memlimit.tree_rss(rep.pid, root_included=False)
        else:
            tree = []
        for pid in tree + self._strays(rep.id):
            with contextlib.suppress(OSError):
                os.kill(pid, sig)

    def _strays(self, session_id: str) -> list[int]:
        """Processes re-parented to us that came from this session (and their descendants), or
        from no session we can tell."""
        found = []
        tag = TAG + session_id.encode()
        for pid in self._adopted():
            owner = _tag_of(pid)
            if owner == tag or (owner is None and not self.spawning):
                # (while spawners work, an untagged child may be a replica not yet exec'd)
                found.append(pid)
                found.extend(memlimit.tree_rss(pid, root_included=False)[1])
        return found

    # ------------------------------------------------------------ memory

    def _watch_memory(self) -> None:
        for rep in list(self.mains.values()):
            if rep.guard is None or rep.pid is None:
                continue
            cpu0 = time.thread_time()
            roots = [rep.pid, *self._strays(rep.id)] if self._has_strays() else [rep.pid]
            if rep.guard.over(roots):
                rep.terminating = True
                self._signal_tree(rep, signal.SIGKILL)
            rep.cpu["memory"] += time.thread_time() - cpu0

    def _has_strays(self) -> bool:
        return bool(self._adopted())

    def _adopted(self) -> list[int]:
        """Our children that we did not start: the kernel re-parents orphans to a subreaper's
        main thread, whereas replicas are children of the spawner thread that started them."""
        try:
            with open(self.main_children, "rb") as stream:
                return [int(each) for each in stream.read().split()]
        except (OSError, ValueError):  # no such file (not Linux): by the whole process's list
            return [pid for pid in memlimit.children(self.pid) if pid not in self.mains]

    # ------------------------------------------------------------ endings

    def _reap(self) -> None:
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, flags)
            except ChildProcessError:
                return
            if info is None:
                return
            rep = self.mains.pop(info.si_pid, None)
            if rep is not None:
                self.guarded -= rep.guard is not None
            else:
                if self.spawning:  # maybe a replica a spawner thread has not handed over yet
                    return
                # a stray re-parented to us
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info.si_pid, 0)
                continue
            cpu0 = time.thread_time()
            # The main process is a zombie: its group id cannot be reused until it is reaped, so
            # the group can be signalled safely. What is left of the container dies with it.
            with contextlib.suppress(OSError):
                os.killpg(info.si_pid, signal.SIGKILL)
            for pid in self._strays(rep.id):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(info.si_pid, 0)
            rep.status = status
            if rep.popen is not None:  # reaped: its Popen must never wait for this pid again
                rep.popen.returncode = os.waitstatus_to_exitcode(status)
            rep.cpu_replica = usage.ru_utime + usage.ru_stime
            rep.cpu["ending"] += time.thread_time() - cpu0
            assert rep.copier is not None
            if rep.copier.open:  # copied until every writer has gone, for DRAIN_SECONDS at most
                self._later(DRAIN_SECONDS, lambda rep=rep: self._finish(rep))
            else:
                self._finish(rep)

    def _finish(self, rep: _Replica) -> None:
        if self.held.get(rep.id) is not rep:
            return  # finished already
        cpu0 = time.thread_time()
        assert rep.copier is not None and rep.status is not None
        if rep.copier.open:
            self.selector.unregister(rep.copier.read_fd)
            rep.copier.drain(0)
        extra = rep.guard.outcome() if rep.guard is not None else {}
        if extra:
            line = memlimit.oom_message(rep.guard.limit, rep.guard.used)  # type: ignore[union-attr]
            with contextlib.suppress(OSError):
                os.write(rep.log_fd, f"canfar-jlab engine: {line}\n".encode())
        code = os.waitstatus_to_exitcode(rep.status)
        rep.cpu["ending"] += time.thread_time() - cpu0  # and then exit.json and the answer
        outcome = {
            "code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
            "ended": time.time(),
            "terminated": rep.terminating,
            # CPU seconds we spent on this replica, by phase and in all, and of the replica's
            # reaped tree: what a replica costs beyond itself (bench/engine_launch.py).
            "cpu": {**rep.cpu, "supervisor": sum(rep.cpu.values()), "replica": rep.cpu_replica},
            **extra,  # oom, limit_bytes, used_bytes (memlimit.py)
        }
        with contextlib.suppress(OSError):
            write_json_once(os.path.join(rep.dir, EXIT_FILE), outcome)
        for fd in (rep.log_fd, rep.lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        del self.held[rep.id]
        self._send({"id": rep.id, "ended": True})


_RUN_FILES = (SUPERVISOR_FILE, EXIT_FILE)


def _guarded(action: Callable[[], None]) -> None:
    """Run one event's handler; a bug in it is reported on the engine's log and must not end
    the process every replica depends on."""
    try:
        action()
    except Exception:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()


def _same_user(conn: socket.socket) -> bool:
    """The peer runs as our user (Linux: SO_PEERCRED; elsewhere the file modes decide)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _nothing(_signum: int, _frame: object) -> None:
    """Nothing to do in Python: the wakeup fd has already woken the loop."""


def _tag_of(pid: int) -> bytes | None:
    """The `skaha_sessionid=...` entry of a process's environment, or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as stream:
            environ = stream.read()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(TAG):
            return entry
    return None


def _spawn(spec: dict[str, Any], log_fd: int) -> subprocess.Popen[bytes]:
    """Start the replica: `cmd` + `args`, no shell (`cmd` looked up on the replica's PATH), in
    its own session and process group, the log pipe as stdout and stderr, stdin from
    /dev/null, in the working directory, no other descriptor. Signals this process handles
    are back to default there (exec resets handlers; none is ignored here, see main)."""
    return subprocess.Popen(
        spec["argv"],
        env=spec["env"],
        cwd=spec["cwd"],
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        restore_signals=True,  # SIGPIPE and SIGXFSZ, which Python ignores
    )


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):  # not being one only loses stray descendants
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _detach_stdio() -> None:
    """stdin and stdout from /dev/null; stderr stays on the engine's log for diagnostics."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    listener = socket.socket(fileno=int(args[0]))
    os.set_inheritable(listener.fileno(), False)
    _detach_stdio()
    # Nothing ignored here, so nothing stays ignored in a replica (exec resets handlers only):
    # a terminal's SIGINT or SIGHUP (the engine may have been started by a shell) is handled
    # by doing nothing, since the engine decides when replicas stop.
    for sig in _DEFAULT_IN_REPLICA:
        if sig not in (signal.SIGPIPE, signal.SIGXFSZ):  # ignored here, reset by Popen there
            signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, _nothing)
    signal.signal(signal.SIGHUP, _nothing)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    # One descriptor for the lock, the log and the pipe of each replica.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _become_subreaper()
    Supervisor(listener).serve()
    _reap_rest()


def _reap_rest() -> None:
    """Strays still running when the last replica ended: killed and reaped before we go."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


if __name__ == "__main__":
    main()
