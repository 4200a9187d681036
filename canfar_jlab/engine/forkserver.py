"""The engine's fork server: forks one supervisor per replica on request.

Started once by the engine (`python -m canfar_jlab.engine.forkserver`), it reads one JSON launch
spec per line on stdin and answers one JSON line on stdout: `{"id", "pid", "ctime"}` or
`{"id", "error"}`. Forking this small, single-threaded process costs far less than starting an
interpreter per replica, and never forks the multi-threaded engine. It reaps the supervisors it
forked; when the engine goes away (EOF) it stays until they have all ended, then exits.
"""

from __future__ import annotations

import _signal
import contextlib
import gc
import json
import os
import signal
import sys

from . import supervisor
from .procs import start_time

_BLOCK, _SETMASK, _SIGCHLD = int(signal.SIG_BLOCK), int(signal.SIG_SETMASK), (int(signal.SIGCHLD),)


def _reap(_signum: int = 0, _frame: object = None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _launch(line: bytes) -> dict[str, object]:
    spec = json.loads(line)
    # SIGCHLD is held so the child cannot be reaped (and its pid reused) before we read its
    # start time.
    # (`_signal`'s C function with plain numbers: `signal`'s wrapper converts them to enums.)
    previous = _signal.pthread_sigmask(_BLOCK, _SIGCHLD)
    try:
        pid = os.fork()
        if pid == 0:
            supervisor.run(spec)
        return {"id": spec["id"], "pid": pid, "ctime": start_time(pid)}
    except OSError as exc:
        return {"id": spec.get("id"), "error": f"cannot start a supervisor: {exc.strerror}"}
    finally:
        _signal.pthread_sigmask(_SETMASK, previous)


def main() -> None:
    # Every fork copies this process: keep the collector away from the inherited objects so
    # supervisors do not write to (and so copy) pages they share with us.
    gc.disable()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when we stop
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    engine_listening = True
    for line in stdin:
        if not line.strip():
            continue
        try:
            reply = _launch(line)
        except (ValueError, KeyError) as exc:
            reply = {"id": None, "error": f"bad launch request: {exc}"}
        if engine_listening:
            try:
                stdout.write(json.dumps(reply).encode() + b"\n")
                stdout.flush()
            except OSError:
                engine_listening = False
    # The engine is gone: keep reaping our supervisors until the last one ends.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    with contextlib.suppress(OSError):
        stdout.close()


if __name__ == "__main__":
    main()
