"""Launch benchmark for the local engine.

N trivial Python replicas created through the engine's Skaha API (one POST per replica, 8 in
flight as canfar_jlab's launcher sends them) against the floor: the same N processes spawned
directly with subprocess in the same run, as the engine starts them (each creating its own log
file inside the timed window, the engine's clean environment, the same working directory).
Printed for both: the time from the first create (spawn) to all Running (all spawned: a session
is Running once the supervisor has started the replica, as Popen returns once the child has
exec'd) and to all Completed (all exited), with the ratio engine / direct, and where the CPU
went. The figures of merit (issue 14) are the Running ratios at N = 10 and 100.

    .venv/bin/python bench/engine_launch.py                  # N = 10 and 100, 4 rounds each
    .venv/bin/python bench/engine_launch.py --n 50 --rounds 6 --client httpx

Each round runs both arms, alternating which goes first so that a load drifting on a shared
machine weighs on both alike; the ratio printed is the median of the rounds' ratios. The engine
path is measured by polling: `GET /session?status=Pending` every 10 ms until none of the round's
sessions is Pending (a cheap reply that shrinks as replicas start), then `GET /session` every
50 ms until all have Completed; the direct path needs no polling. The CPU per replica is printed
by where it goes: the replica itself; the engine's supervisor (one process for all replicas):
all of it, and what it spent on each replica by phase (the figures it writes into exit.json:
starting it, copying its log, ending it) apart from its loop's own; the engine daemon; the
client.

The default client is a thin stdlib one (keep-alive connections, one per creating thread) so
that the figures are the engine's; `--client httpx` uses httpx.AsyncClient as canfar_jlab's
Skaha client does, to show what that client adds. It starts its own engine in a temporary data
home (capacity = the largest N, so nothing queues: the direct path does not queue either) and
stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from canfar_jlab.engine.control import EngineInfo, ensure_engine, stop_engine
from canfar_jlab.engine.spawn import replica_environment

REPLICA_ARGS = ["-c", "print('ok')"]  # no spaces: Skaha splits args on single spaces
POLL = 0.05
PENDING_POLL = 0.01


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def direct(n: int, logs: Path, workdir: Path) -> tuple[float, float, float]:
    """Spawn N processes as the engine would start them (each creating its own log file, the
    engine's clean environment, the same working directory); (all spawned, all exited, CPU
    seconds of the children)."""
    env = replica_environment(os.environ, [], {"HOME": str(workdir), "PWD": str(workdir)})
    cpu0 = children_cpu()
    start = time.perf_counter()
    procs = []
    for i in range(n):
        with open(logs / f"direct-{i}.log", "wb") as log:  # created here, as the engine does
            procs.append(
                subprocess.Popen(
                    [sys.executable, *REPLICA_ARGS],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                )
            )
    spawned = time.perf_counter() - start
    codes = [p.wait() for p in procs]
    exited = time.perf_counter() - start
    for log_file in logs.iterdir():  # a fresh directory for the next round, as the engine's
        log_file.unlink()
    assert codes == [0] * n, codes
    return spawned, exited, children_cpu() - cpu0


class StdlibClient:
    """Keep-alive HTTP/1.1 connections, one per thread."""

    def __init__(self, info: EngineInfo) -> None:
        parts = urllib.parse.urlsplit(info.url)
        self.host, self.port, self.base = parts.hostname, parts.port, parts.path + "/v1"
        self.headers = {"Authorization": f"Bearer {info.token()}"}
        self.local = threading.local()

    def request(self, method: str, path: str, params: dict | None = None) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        query = "?" + urllib.parse.urlencode(params) if params else ""
        conn.request(method, self.base + path + query, headers=self.headers)
        response = conn.getresponse()
        return response.status, response.read()


async def engine_round(
    request: Callable, create_all: Callable, n: int, tag: str
) -> tuple[float, float, set[str]]:
    """Create N sessions; (all Running or beyond, all Completed, ids), measured by polling."""
    params = {"image": "images.canfar.net/skaha/base:latest", "cmd": sys.executable}
    params["args"] = " ".join(REPLICA_ARGS)
    batch = [{**params, "name": f"{tag}-{i}"} for i in range(1, n + 1)]
    start = time.perf_counter()
    ids = set(await create_all(batch))
    while True:
        _, body = await request("GET", "/session", {"status": "Pending"})
        if not ids & {s["id"] for s in json.loads(body)}:
            break
        await asyncio.sleep(PENDING_POLL)
    running_at = time.perf_counter() - start
    while True:
        _, body = await request("GET", "/session", None)
        states = {s["id"]: s["status"] for s in json.loads(body) if s["id"] in ids}
        now = time.perf_counter() - start
        if all(states.get(i) == "Completed" for i in ids):
            break
        failed = [i for i in ids if states.get(i) == "Failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} replicas failed, e.g. {failed[0]}")
        await asyncio.sleep(POLL)
    return running_at, now, ids


PHASES = ("starting", "logs", "memory", "ending", "supervisor", "replica")


def exit_cpu(home: Path, ids: set[str]) -> dict[str, float]:
    """CPU seconds from the round's exit.json files: what the supervisor spent on the replicas
    by phase and in all, and the replicas' own."""
    total = dict.fromkeys(PHASES, 0.0)
    for session_id in ids:
        outcome = json.loads((home / "engine" / "sessions" / session_id / "exit.json").read_text())
        for phase in PHASES:
            total[phase] += outcome["cpu"].get(phase, 0.0)
    return total


async def delete_all(request: Callable, ids: set[str]) -> None:
    for session_id in ids:
        await request("DELETE", f"/session/{session_id}", None)


class EngineCpu:
    """CPU seconds of the engine daemon, and of its supervisor with everything it reaped
    (the replicas)."""

    def __init__(self, pid: int) -> None:
        self.engine = psutil.Process(pid)

    def read(self) -> tuple[float, float, float]:
        """(engine daemon, supervisor itself, everything the supervisor reaped)."""
        engine = self.engine.cpu_times()
        own = reaped = 0.0
        for child in self.engine.children():
            times = child.cpu_times()
            own += times.user + times.system
            reaped += times.children_user + times.children_system
        return engine.user + engine.system, own, reaped


async def run(sizes: list[int], rounds: int, concurrency: int, client_kind: str, nice: int):
    with tempfile.TemporaryDirectory(prefix="canfar-jlab-bench-") as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "direct-logs"
        logs.mkdir()
        (home / "work").mkdir(parents=True)
        config = {"cores": max(sizes), "workdir": str(home / "work"), "nice": nice}
        info = ensure_engine(home, timeout=60, config=config)
        pool = ThreadPoolExecutor(concurrency + 1)
        creators = ThreadPoolExecutor(concurrency)
        httpx_client = None
        try:
            if client_kind == "httpx":
                import httpx

                httpx_client = httpx.AsyncClient(
                    base_url=f"{info.url}/v1",
                    headers={"Authorization": f"Bearer {info.token()}"},
                    trust_env=False,
                    timeout=60,
                    limits=httpx.Limits(max_connections=concurrency + 1),
                )
                gate = asyncio.Semaphore(concurrency)

                async def request(method: str, path: str, params: dict | None):
                    response = await httpx_client.request(method, path, params=params)
                    return response.status_code, response.content

                async def create_one(params: dict) -> str:
                    async with gate:
                        status, body = await request("POST", "/session", params)
                    assert status == 200, body
                    return body.decode().strip()

                async def create_all(batch: list[dict]) -> list[str]:
                    return await asyncio.gather(*(create_one(params) for params in batch))
            else:
                stdlib = StdlibClient(info)
                loop = asyncio.get_running_loop()

                async def request(method: str, path: str, params: dict | None):
                    return await loop.run_in_executor(pool, stdlib.request, method, path, params)

                def create_sync(params: dict) -> str:
                    status, body = stdlib.request("POST", "/session", params)
                    assert status == 200, body
                    return body.decode().strip()

                async def create_all(batch: list[dict]) -> list[str]:
                    # `concurrency` threads, each posting back to back (no event-loop hop per
                    # request): a client that costs little next to the engine
                    return await loop.run_in_executor(
                        None, lambda: list(creators.map(create_sync, batch))
                    )

            *_, warm = await engine_round(request, create_all, 2, "warmup")  # imports, caches
            await delete_all(request, warm)
            cpu = EngineCpu(info.pid)
            print(
                f"engine {info.url}; client {client_kind}, {concurrency} creates in flight; "
                f"{rounds} rounds per N (arms alternate which goes first); medians of the "
                "times and of each round's ratio; times in seconds"
            )
            print(
                f"{'N':>5} {'direct spawned':>15} {'engine running':>15} {'ratio':>6}"
                f" {'direct exited':>14} {'engine completed':>17} {'ratio':>6}"
            )
            notes = []
            for n in sizes:
                d_run, d_done, e_run, e_done = [], [], [], []
                d_cpu = p_cpu = e_cpu = s_cpu = c_cpu = 0.0
                phases = dict.fromkeys(PHASES, 0.0)
                for r in range(rounds):
                    # Arms alternate which goes first, so a load that drifts during the run (the
                    # machine is shared) weighs on both alike; each round gives one ratio.
                    if r % 2 == 0:
                        parent = self_cpu()
                        spawned, exited, children = direct(n, logs, home / "work")
                        p_cpu += self_cpu() - parent
                    before, client_before = cpu.read(), self_cpu()
                    running, completed, ids = await engine_round(
                        request, create_all, n, f"b{n}-{r}"
                    )
                    after = cpu.read()
                    c_cpu += self_cpu() - client_before
                    if r % 2 == 1:
                        parent = self_cpu()
                        spawned, exited, children = direct(n, logs, home / "work")
                        p_cpu += self_cpu() - parent
                    d_run.append(spawned)
                    d_done.append(exited)
                    d_cpu += children
                    e_cpu += after[0] - before[0]
                    s_cpu += after[1] - before[1]
                    for phase, seconds in exit_cpu(home, ids).items():
                        phases[phase] += seconds
                    await delete_all(request, ids)  # for the next round, outside the figures
                    e_run.append(running)
                    e_done.append(completed)
                dr, dd = statistics.median(d_run), statistics.median(d_done)
                er, ed = statistics.median(e_run), statistics.median(e_done)
                run_ratio = statistics.median(e / d for e, d in zip(e_run, d_run, strict=True))
                done_ratio = statistics.median(e / d for e, d in zip(e_done, d_done, strict=True))
                print(
                    f"{n:>5} {dr:>15.3f} {er:>15.3f} {run_ratio:>6.2f}"
                    f" {dd:>14.3f} {ed:>17.3f} {done_ratio:>6.2f}"
                )
                per = 1000.0 / (rounds * n)
                ms = {phase: seconds * per for phase, seconds in phases.items()}
                notes.append(
                    f"N={n}: CPU ms per replica - direct: the process {d_cpu * per:.1f}, spawning "
                    f"it {p_cpu * per:.1f}; engine: the process {ms['replica']:.1f}, the "
                    f"supervisor {s_cpu * per:.2f} (on this replica {ms['supervisor']:.2f}: "
                    f"starting it {ms['starting']:.2f}, its log {ms['logs']:.2f}, its memory "
                    f"{ms['memory']:.2f}, ending it {ms['ending']:.2f}; its loop's own "
                    f"{s_cpu * per - ms['supervisor']:.2f}), engine daemon {e_cpu * per:.1f}, "
                    f"client {c_cpu * per:.1f}"
                )
            print("\n".join(notes))
            print(
                "  where the supervisor's goes - starting: the launch request read and parsed, "
                "the session directory, its lock and output.log, the log pipe, the spawn in a "
                "spawner thread (Popen: vfork, setsid, exec; the thread waits without the GIL), "
                "the answer to the engine, supervisor.json; its log: copying the pipe into "
                "output.log; ending: reaping it, killing and reaping strays, exit.json, the "
                "answer; its loop's own: waiting in epoll, SIGCHLD wake-ups, thread hand-overs"
            )
        finally:
            if httpx_client is not None:
                await httpx_client.aclose()
            pool.shutdown()
            creators.shutdown()
            stop_engine(home, timeout=60, terminate_replicas=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100], help="replica counts")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per N (median reported)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="creates in flight (as the launcher sends)"
    )
    parser.add_argument("--client", choices=("stdlib", "httpx"), default="stdlib")
    parser.add_argument("--nice", type=int, default=0, help="the engine's replica niceness")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.rounds, args.concurrency, args.client, args.nice))


if __name__ == "__main__":
    main()
