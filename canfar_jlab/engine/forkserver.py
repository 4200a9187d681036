"""The engine's fork server: forks one supervisor per replica on request.

Started by the engine (`python -m canfar_jlab.engine.forkserver`), it reads one JSON launch
spec per line on stdin. Forking this small, single-threaded process costs far less than starting
an interpreter per replica, and never forks the multi-threaded engine.

Answers, one JSON line each on stdout (a pipe the engine reads; every line is one `write` of
less than PIPE_BUF bytes, so lines from several writers never interleave):
- `{"id", "pid", "ctime", "replica"}` from the **supervisor** itself, once it has started the
  replica (or found it cannot, or found the session taken): so the engine marks a session
  Running only when its replica exists, as Kubernetes does once the container has started;
- `{"id", "error"}` from the fork server when it cannot fork or read the spec;
- `{"id", "ended": true}` from the fork server when it reaps a supervisor, so a supervisor that
  died before answering never leaves the engine waiting (the engine ignores it otherwise; it
  always follows the supervisor's own answer in the pipe).

It reaps the supervisors it forked; when the engine goes away (EOF) it stays until they have all
ended, then exits.
"""

from __future__ import annotations

import _signal
import gc
import json
import os
import signal
import sys

from . import supervisor

_BLOCK, _SETMASK, _SIGCHLD = int(signal.SIG_BLOCK), int(signal.SIG_SETMASK), (int(signal.SIGCHLD),)
_REPLIES = 1  # stdout, written with os.write only (also from the SIGCHLD handler)
_forked: dict[int, str] = {}  # supervisor pid -> session id, until reaped
_engine_listening = True


def _answer(reply: dict[str, object]) -> None:
    global _engine_listening
    if _engine_listening:
        try:
            os.write(_REPLIES, json.dumps(reply).encode() + b"\n")
        except OSError:
            _engine_listening = False


def _reap(_signum: int = 0, _frame: object = None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        session_id = _forked.pop(pid, None)
        if session_id is not None:
            _answer({"id": session_id, "ended": True})


def _launch(line: bytes) -> None:
    spec = json.loads(line)
    session_id = str(spec["id"])
    # SIGCHLD is held so the child cannot be reaped before it is known as this session's.
    # (`_signal`'s C function with plain numbers: `signal`'s wrapper converts them to enums.)
    previous = _signal.pthread_sigmask(_BLOCK, _SIGCHLD)
    try:
        pid = os.fork()
        if pid == 0:
            supervisor.run(spec, _REPLIES)
        _forked[pid] = session_id
    except OSError as exc:
        _answer({"id": session_id, "error": f"cannot start a supervisor: {exc.strerror}"})
    finally:
        _signal.pthread_sigmask(_SETMASK, previous)


def main() -> None:
    # Every fork copies this process: keep the collector away from the inherited objects so
    # supervisors do not write to (and so copy) pages they share with us.
    gc.disable()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when we stop
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            _launch(line)
        except (ValueError, KeyError, TypeError) as exc:
            _answer({"id": None, "error": f"bad launch request: {exc}"})
    # The engine is gone: keep reaping our supervisors until the last one ends.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    with open(os.devnull, "wb") as devnull:  # let go of the pipe the engine no longer reads
        os.dup2(devnull.fileno(), _REPLIES)


if __name__ == "__main__":
    main()
