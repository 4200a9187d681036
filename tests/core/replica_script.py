"""What the client tests run as replicas on the local engine: `python replica_script.py ACTION ...`.

Arguments never contain spaces (Skaha splits `args` on single spaces).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    action, args = argv[0], argv[1:]
    if action == "env":  # print the named variables
        for name in args:
            print(f"{name}={os.environ.get(name, '<unset>')}")
        return 0
    if action == "gated":  # two lines, a partial third, then wait for a file and finish
        print("line 1")
        print("line 2")
        print("waiting", end="", flush=True)
        while not Path(args[0]).exists():
            time.sleep(0.02)
        print(" done")
        print("line 4 é")
        return 0
    if action == "fail":
        print("about to fail", flush=True)
        return 3
    raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
