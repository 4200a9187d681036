"""A replica's RAM limit over its whole process tree, as Kubernetes limits a container.

A per-process limit (RLIMIT_AS) lets a replica whose three children hold 700 MiB each run at
2.1 GiB under `ram=1`, and one that does exceed it ends with a bare MemoryError. Kubernetes
counts the container as a whole and kills it, reporting OOMKilled. Here the supervisor does the
same with a **watchdog**: every `TICK` it sums the resident memory (RSS) of every process in the
replica's tree (its own descendants: the supervisor is a child subreaper, so processes that
left the group are still found) and, past the limit, kills the whole tree with SIGKILL. The
supervisor then records `oom` and the limit in `exit.json` and a line naming the limit in the log.

A cgroup v2 memory controller would let the kernel do this exactly; `cgroup_v2_memory()` says
whether this machine offers one to us (on hybrid hosts the memory controller is bound to cgroup
v1 and the v2 hierarchy cannot limit memory). The watchdog is what runs today.

Standard library only (the supervisor imports it).
"""

from __future__ import annotations

import os

TICK = 0.25  # seconds between two looks at the tree while a limit applies
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def describe_bytes(count: int) -> str:
    """`1 GiB`, `700 MiB`: how the limit and the use are named in the log and events."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            value = count / size
            return f"{value:.3g} {unit}" if value % 1 else f"{int(value)} {unit}"
    return f"{count} bytes"


def oom_message(limit: int, used: int) -> str:
    """The one line that says why a replica was stopped (log, event, run record)."""
    return (
        f"OOMKilled: the replica's processes held {describe_bytes(used)}, over its RAM limit "
        f"of {describe_bytes(limit)} (ram={limit / 1024**3:g}); every process was killed"
    )


def cgroup_v2_memory() -> bool:
    """True when the cgroup v2 hierarchy this process is in offers the memory controller."""
    try:
        with open("/proc/self/cgroup") as stream:
            lines = stream.read().splitlines()
        with open("/proc/self/mountinfo") as stream:
            mounts = [line.split() for line in stream]
    except OSError:
        return False
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    roots = [m[4] for m in mounts if "cgroup2" in m[m.index("-") + 1 :][:1]]
    if own is None or not roots:
        return False
    try:
        with open(os.path.join(roots[0], own.lstrip("/"), "cgroup.controllers")) as stream:
            return "memory" in stream.read().split()
    except OSError:
        return False


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as stream:
                found.extend(int(each) for each in stream.read().split())
        except (OSError, ValueError):
            continue
    return found


def _has_children_files() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def tree_rss(root: int, root_included: bool = True) -> tuple[int, list[int]]:
    """Resident bytes of `root` (unless not `root_included`) and every descendant, and their
    pids."""
    if not _has_children_files():  # a kernel without CONFIG_PROC_CHILDREN, or not Linux
        import psutil

        total, seen = 0, []
        try:
            top = psutil.Process(root)
            procs = [top, *top.children(recursive=True)] if root_included else top.children(True)
        except psutil.Error:
            return 0, []
        for proc in procs:
            try:
                total += proc.memory_info().rss
                seen.append(proc.pid)
            except psutil.Error:
                continue
        return total, seen
    total, seen, stack = 0, [], [root] if root_included else children(root)
    while stack:
        pid = stack.pop()
        seen.append(pid)
        try:
            with open(f"/proc/{pid}/statm", "rb") as stream:
                total += int(stream.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            continue
        stack.extend(children(pid))
    return total, seen


class TreeLimit:
    """The watchdog of one replica: `over()` each tick says when the tree must be killed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.killed = False

    def over(self, roots: list[int]) -> bool:
        """True once (the first time the trees of `roots` hold more than the limit)."""
        if self.killed:
            return False
        used = sum(tree_rss(root)[0] for root in roots)
        if used <= self.limit:
            return False
        self.used, self.killed = used, True
        return True

    def outcome(self) -> dict[str, object]:
        """What `exit.json` records besides the exit status."""
        if not self.killed:
            return {}
        return {"oom": True, "limit_bytes": self.limit, "used_bytes": self.used}


def for_replica(ram_bytes: int | None) -> TreeLimit | None:
    """The watchdog for a replica that asked for `ram_bytes` (None: flexible, no limit)."""
    return TreeLimit(int(ram_bytes)) if ram_bytes else None
