"""Small programs the tests run as replicas: `python replica_tool.py ACTION [ARGS...]`.

Arguments never contain spaces (Skaha splits `args` on single spaces).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL = 0.02  # inside a replica, waiting for a file the test creates


def _wait_for_file(path: str) -> None:
    while not Path(path).exists():
        time.sleep(POLL)


def _forever() -> None:
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:
    action, args = argv[0], argv[1:]
    if action == "env":  # print the named variables
        for name in args:
            print(f"{name}={os.environ.get(name, '<unset>')}")
        print(f"CWD={os.getcwd()}")
        return 0
    if action == "exit":
        print(f"exiting with {args[0]}", flush=True)
        return int(args[0])
    if action == "wait":  # print our pid, wait for a file, [say something,] exit with a code
        print(f"PID {os.getpid()}", flush=True)
        _wait_for_file(args[0])
        if len(args) > 2:
            print(args[2], flush=True)
        return int(args[1]) if len(args) > 1 else 0
    if action == "sleep":
        print(f"PID {os.getpid()}", flush=True)
        _forever()
    if action == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"PID {os.getpid()} ignoring SIGTERM", flush=True)
        _forever()
    if action == "children":  # two children in our group, one that leaves it with setsid
        sleeper = [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"]
        kids = [subprocess.Popen(sleeper), subprocess.Popen(sleeper, start_new_session=True)]
        print(f"PIDS {os.getpid()} {' '.join(str(k.pid) for k in kids)}", flush=True)
        _forever()
    if action == "orphan":  # leave a child in its own session behind, and exit
        sleeper = [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"]
        kid = subprocess.Popen(sleeper, start_new_session=True)
        print(f"ORPHAN {kid.pid}", flush=True)
        return 0
    if action == "spam":  # write N bytes in lines of 100
        total = int(args[0])
        line = b"x" * 99 + b"\n"
        for _ in range(total // 100):
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        print("done", flush=True)
        if len(args) > 1:
            _wait_for_file(args[1])
        return 0
    if action == "flood":  # write N MiB in 1 MiB blocks as fast as we can, then exit with CODE
        block = b"y" * ((1 << 20) - 1) + b"\n"
        for _ in range(int(args[0])):
            sys.stdout.buffer.write(block)
        sys.stdout.flush()
        return int(args[1])
    if action == "hold-children":  # N children each holding M MiB (touched), then wait
        count, mib = int(args[0]), int(args[1])
        code = f"b = b'x' * ({mib} << 20)\nprint('holding', flush=True)\nimport time\n" + (
            "while True: time.sleep(3600)"
        )
        kids = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
        print(f"PIDS {' '.join(str(k.pid) for k in kids)}", flush=True)
        for kid in kids:
            kid.wait()
        print("children ended", flush=True)
        return 0
    if action == "allocate":  # try to hold N MiB
        try:
            block = bytearray(int(args[0]) * 1024 * 1024)
        except MemoryError:
            print("MemoryError", flush=True)
            return 1
        print(f"allocated {len(block) >> 20} MiB", flush=True)
        return 0
    print(f"unknown action {action}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
