"""What history costs the session list a Jupyter server polls.

    python bench/list_history.py [--history 10000]

Two local engines, each with 10 running replicas: one with no history, one with 10,000
sessions that finished two hours ago (written into its store before it starts, as a week of
use would leave them). Printed for each: bytes and milliseconds per `GET /session` (median of
50 calls), and the ratio history / none. Old sessions stay readable by id.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from canfar_jlab.engine.control import ensure_engine, stop_engine
from canfar_jlab.engine.layout import EngineLayout
from canfar_jlab.engine.records import COMPLETED, SessionRecord
from canfar_jlab.engine.session_store import SessionStore

RUNNING = 10
CALLS = 50


def write_history(home: Path, count: int) -> str | None:
    layout = EngineLayout(home)
    layout.ensure_dirs()
    store = SessionStore(layout.database)
    ended = time.time() - 2 * 3600
    first = None
    for i in range(count):
        rec = SessionRecord(
            id=f"h{i:07d}",
            name=f"old-{i % 250 + 1}",
            image="images.canfar.net/skaha/base:latest",
            type="headless",
            userid="bench",
            cmd=sys.executable,
            args=["-c", "print(1)"],
            env=[],
            cores=1,
            ram=None,
            gpus=None,
            created=ended - 60,
            deadline=86400,
            status=COMPLETED,
            started=ended - 50,
            ended=ended,
            exit_code=0,
            end_reason="exit",
        )
        store.insert(rec)
        store.update(rec)
        first = first or rec.id
    store.close()
    return first


def measure(home: Path, history: int) -> dict:
    (home / "work").mkdir(parents=True)
    old = write_history(home, history) if history else None
    info = ensure_engine(home, timeout=60, config={"cores": RUNNING, "workdir": str(home / "work")})
    try:
        with httpx.Client(
            base_url=f"{info.url}/v1",
            headers={"Authorization": f"Bearer {info.token()}"},
            trust_env=False,
            timeout=60,
        ) as client:
            params = {"image": "images.canfar.net/skaha/base:latest", "cmd": "sleep"}
            for i in range(RUNNING):
                reply = client.post(
                    "/session", params={**params, "name": f"live-{i}", "args": "600"}
                )
                assert reply.status_code == 200, reply.text
            deadline = time.monotonic() + 60
            while sum(s["status"] == "Running" for s in client.get("/session").json()) < RUNNING:
                assert time.monotonic() < deadline, "replicas did not start"
                time.sleep(0.1)
            sizes, times = [], []
            for _ in range(CALLS):
                started = time.perf_counter()
                reply = client.get("/session")
                times.append(time.perf_counter() - started)
                sizes.append(len(reply.content))
            by_id = client.get(f"/session/{old}").status_code if old else None
    finally:
        stop_engine(home, timeout=60, terminate_replicas=True)
    return {"bytes": statistics.median(sizes), "ms": 1000 * statistics.median(times), "old": by_id}


def main(history: int) -> None:
    with tempfile.TemporaryDirectory(prefix="canfar-jlab-bench-") as tmp:
        none = measure(Path(tmp) / "none", 0)
        full = measure(Path(tmp) / "full", history)
    print(f"GET /session with {RUNNING} running replicas, median of {CALLS} calls")
    print(f"  no history                    {none['bytes']:>8.0f} B  {none['ms']:6.2f} ms")
    print(
        f"  {history:,} finished 2 h ago   {full['bytes']:>8.0f} B  {full['ms']:6.2f} ms   "
        f"(an old one by id: HTTP {full['old']})"
    )
    print(
        f"  ratio history/none: bytes {full['bytes'] / none['bytes']:.2f}, "
        f"time {full['ms'] / none['ms']:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=10_000)
    main(parser.parse_args().history)
