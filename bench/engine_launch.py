"""Launch benchmark for the local engine.

N trivial Python replicas created through the engine's Skaha API (one POST per replica, a few
in flight at once) against the floor: the same N processes spawned directly with subprocess,
each writing to its own log file, in the same run. Printed for both: the time from the first
create (spawn) to all Running (all spawned) and to all Completed (all exited), with the ratio
engine / direct, and where the CPU went. The figure of merit is the Completed ratio at N = 100.

    .venv/bin/python bench/engine_launch.py                  # N = 10 and 100, 3 rounds each
    .venv/bin/python bench/engine_launch.py --n 50 --rounds 5 --client httpx

The engine path is measured by polling: `GET /session?status=Pending` every 10 ms until none of
the round's sessions is Pending (a cheap reply that shrinks as replicas start), then `GET
/session` every 50 ms until all have Completed; the direct path needs no polling. The CPU per
replica is printed by where it goes: the replica itself, its supervisor (from the CPU figures
each supervisor writes into exit.json), the fork server, the engine daemon and the client.

The default client is a thin stdlib one (keep-alive connections, one per worker thread) so that
the figures are the engine's; `--client httpx` uses httpx.AsyncClient as canfar_jlab's Skaha
client does, to show what that client adds. It starts its own engine in a
temporary data home (capacity = the largest N, so nothing queues: the direct path does not queue
either) and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
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

REPLICA_ARGS = ["-c", "print('ok')"]  # no spaces: Skaha splits args on single spaces
POLL = 0.05
PENDING_POLL = 0.01


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def direct(n: int, logs: Path) -> tuple[float, float, float]:
    """Spawn N processes; (all spawned, all exited, CPU seconds of the children)."""
    files = [open(logs / f"direct-{i}.log", "wb") for i in range(n)]
    cpu0 = children_cpu()
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, *REPLICA_ARGS],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for f in files
    ]
    spawned = time.perf_counter() - start
    codes = [p.wait() for p in procs]
    exited = time.perf_counter() - start
    for f in files:
        f.close()
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
    request: Callable, n: int, tag: str, concurrency: int
) -> tuple[float, float, set[str]]:
    """Create N sessions; (all Running or beyond, all Completed, ids), measured by polling."""
    params = {"image": "images.canfar.net/skaha/base:latest", "cmd": sys.executable}
    params["args"] = " ".join(REPLICA_ARGS)
    gate = asyncio.Semaphore(concurrency)

    async def create(i: int) -> str:
        async with gate:
            status, body = await request("POST", "/session", {**params, "name": f"{tag}-{i}"})
            assert status == 200, body
            return body.decode().strip()

    start = time.perf_counter()
    ids = set(await asyncio.gather(*(create(i) for i in range(1, n + 1))))
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


def supervisor_cpu(home: Path, ids: set[str]) -> tuple[float, float]:
    """CPU seconds of the round's supervisors and of their replicas, from exit.json."""
    supervisors = replicas = 0.0
    for session_id in ids:
        outcome = json.loads((home / "engine" / "sessions" / session_id / "exit.json").read_text())
        supervisors += outcome["cpu"]["supervisor"]
        replicas += outcome["cpu"]["replica"]
    return supervisors, replicas


async def delete_all(request: Callable, ids: set[str]) -> None:
    for session_id in ids:
        await request("DELETE", f"/session/{session_id}", None)


class EngineCpu:
    """CPU seconds of the engine daemon, and of its fork server with everything it reaped
    (supervisors and replicas)."""

    def __init__(self, pid: int) -> None:
        self.engine = psutil.Process(pid)

    def read(self) -> tuple[float, float, float]:
        """(engine daemon, fork server itself, everything the fork server reaped)."""
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

                async def request(method: str, path: str, params: dict | None):
                    response = await httpx_client.request(method, path, params=params)
                    return response.status_code, response.content
            else:
                stdlib = StdlibClient(info)
                loop = asyncio.get_running_loop()

                async def request(method: str, path: str, params: dict | None):
                    return await loop.run_in_executor(pool, stdlib.request, method, path, params)

            *_, warm = await engine_round(request, 2, "warmup", concurrency)  # imports, caches
            await delete_all(request, warm)
            cpu = EngineCpu(info.pid)
            print(
                f"engine {info.url}; client {client_kind}, {concurrency} creates in flight; "
                f"{rounds} rounds per N, medians; times in seconds"
            )
            print(
                f"{'N':>5} {'direct spawned':>15} {'engine running':>15} {'ratio':>6}"
                f" {'direct exited':>14} {'engine completed':>17} {'ratio':>6}"
            )
            notes = []
            for n in sizes:
                d_run, d_done, e_run, e_done = [], [], [], []
                d_cpu = e_cpu = f_cpu = sup_cpu = rep_cpu = c_cpu = 0.0
                for r in range(rounds):
                    spawned, exited, children = direct(n, logs)
                    d_run.append(spawned)
                    d_done.append(exited)
                    d_cpu += children
                    before, client_before = cpu.read(), self_cpu()
                    running, completed, ids = await engine_round(
                        request, n, f"b{n}-{r}", concurrency
                    )
                    after = cpu.read()
                    e_cpu += after[0] - before[0]
                    f_cpu += after[1] - before[1]
                    supervisors, replicas = supervisor_cpu(home, ids)
                    sup_cpu += supervisors
                    rep_cpu += replicas
                    c_cpu += self_cpu() - client_before
                    await delete_all(request, ids)  # for the next round, outside the figures
                    e_run.append(running)
                    e_done.append(completed)
                dr, dd = statistics.median(d_run), statistics.median(d_done)
                er, ed = statistics.median(e_run), statistics.median(e_done)
                print(
                    f"{n:>5} {dr:>15.3f} {er:>15.3f} {er / dr:>6.2f}"
                    f" {dd:>14.3f} {ed:>17.3f} {ed / dd:>6.2f}"
                )
                per = 1000.0 / (rounds * n)
                notes.append(
                    f"N={n}: CPU ms per replica - direct: the process {d_cpu * per:.1f}; engine: "
                    f"the process {rep_cpu * per:.1f}, its supervisor {sup_cpu * per:.1f}, the "
                    f"fork server {f_cpu * per:.1f} (supervisor + fork server "
                    f"{(sup_cpu + f_cpu) * per:.1f}), engine daemon {e_cpu * per:.1f}, "
                    f"client {c_cpu * per:.1f}"
                )
            print("\n".join(notes))
            print(
                "  (a supervisor is a forked copy of the fork server: the fork, the pages it "
                "copies as its Python code runs, supervisor.json and exit.json, posix_spawn of "
                "the replica, then sleeping until the replica exits)"
            )
        finally:
            if httpx_client is not None:
                await httpx_client.aclose()
            pool.shutdown()
            stop_engine(home, timeout=60, terminate_replicas=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100], help="replica counts")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per N (median reported)")
    parser.add_argument("--concurrency", type=int, default=4, help="creates in flight")
    parser.add_argument("--client", choices=("stdlib", "httpx"), default="stdlib")
    parser.add_argument("--nice", type=int, default=0, help="the engine's replica niceness")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.rounds, args.concurrency, args.client, args.nice))


if __name__ == "__main__":
    main()
