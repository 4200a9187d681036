"""Live CPU and memory use of each running replica, summed over its process tree.

One scan of the process table serves every session; results are kept for a second so that many
pollers cost one scan.
"""

from __future__ import annotations

import time

import psutil

from .wire import Usage

CACHE_SECONDS = 1.0


class UsageSampler:
    def __init__(self) -> None:
        self._cached_at = 0.0
        self._cached: dict[str, Usage] = {}
        self._previous: dict[str, tuple[float, float, float]] = {}  # time, cpu s, cores

    def sample(
        self, roots: dict[str, tuple[int, float]], complete: bool = False
    ) -> dict[str, Usage]:
        """Usage per session id, given each session's replica (pid, started), summed over the
        replica and its descendants. `complete`: scan again for sessions the last scan did
        not see (one session asked for by id), rather than leave them out until the next."""
        now = time.monotonic()
        fresh = now - self._cached_at < CACHE_SECONDS
        if fresh and (not complete or roots.keys() <= self._cached.keys()):
            # Replicas that started since the last scan get their figures at the next one: a
            # launch of 100 replicas, polled meanwhile, must not cost a scan per poll.
            return {key: self._cached[key] for key in roots if key in self._cached}
        children: dict[int, list[int]] = {}
        for proc in psutil.process_iter(["ppid"]):
            ppid = proc.info.get("ppid")
            if ppid:
                children.setdefault(ppid, []).append(proc.pid)
        result: dict[str, Usage] = {}
        wall = time.time()
        for key, (root, started) in roots.items():
            cpu, rss = 0.0, 0
            stack = [root]
            while stack:
                pid = stack.pop()
                stack.extend(children.get(pid, ()))
                try:
                    proc = psutil.Process(pid)
                    with proc.oneshot():
                        times = proc.cpu_times()
                        cpu += times.user + times.system
                        rss += proc.memory_info().rss
                except psutil.Error:
                    continue
            previous = self._previous.get(key)
            if previous is None:  # first look: the average since the replica started
                cores = cpu / max(0.001, wall - started)
                self._previous[key] = (now, cpu, cores)
            elif now - previous[0] >= 0.5:
                cores = max(0.0, cpu - previous[1]) / (now - previous[0])
                self._previous[key] = (now, cpu, cores)
            else:
                cores = previous[2]
            result[key] = Usage(cores=cores, ram_bytes=rss)
        for key in list(self._previous):
            if key not in roots:
                del self._previous[key]
        self._cached, self._cached_at = result, now
        return result
