"""The whole live path for a 1,000-replica run watched by one browser session, against a
1-replica run: what the Jupyter server spends, what it sends the browser, what it asks of the
session service.

    python bench/big_run.py [--seconds 20]

A real Jupyter server with canfar_jlab, in front of a local engine with a capacity of 2 cores
(so 2 replicas run and the rest wait, Pending), behind a counting proxy. A run is at most 256
replicas, so "1,000 replicas" is four runs of 250 (plus nothing else), launched through the REST
route from a notebook that sleeps. One websocket subscribes to sessions as the frontend does
(`deltas`: a whole first message, then only changes) and to the logs of the running replicas.
Measured over the same window for both: the server's CPU (fraction of a core), bytes and
messages to the browser per second, upstream requests per second; then, for the big run only,
what the same updates would weigh as whole `sessions` messages (the protocol before deltas).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import messages, stack

RUN_SIZE = 250
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "sleep",
            "metadata": {},
            "outputs": [],
            "source": ["import time\n", "print('started', flush=True)\n", "time.sleep(900)\n"],
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


async def launch(server, runs: int, size: int, tag: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=600) as http:
        launched = []
        for i in range(runs):
            reply = await http.post(
                f"{server.base}/canfar-jlab/runs",
                headers=server.headers(),
                json={
                    "notebook": "sleeper.ipynb",
                    "replicas": size,
                    "name": f"{tag}{i}",
                    "image": "images.canfar.net/skaha/base:latest",
                },
            )
            assert reply.status_code == 201, reply.text[:300]
            launched.append(reply.json())
        return launched


async def delete(server, runs: list[dict]) -> None:
    async with httpx.AsyncClient(timeout=600) as http:
        for run in runs:
            await http.delete(
                f"{server.base}/canfar-jlab/runs/{run['name']}", headers=server.headers()
            )


async def watch(server, proxy, seconds: float, deltas: bool) -> dict:
    """One tab: sessions (with or without deltas) and the logs of the running replicas."""
    process = psutil.Process(server.process.pid)
    ws = await server.live()
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions", "deltas": deltas}))
    stop = asyncio.Event()
    counter = {"bytes": 0, "messages": 0, "updates": 0, "update_bytes": 0, "first": 0}
    subscribed: set[str] = set()

    async def read() -> None:
        async for raw in messages(ws, stop):
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "sessions" and not counter["first"]:
                counter["first"] = len(raw)
            elif counter["first"]:
                counter["bytes"] += len(raw)
                counter["messages"] += 1
                if kind in ("sessions", "sessions_delta"):
                    counter["updates"] += 1
                    counter["update_bytes"] += len(raw)
            for session in message.get("sessions", []):
                if session.get("status") == "Running" and session["id"] not in subscribed:
                    subscribed.add(session["id"])
                    ws.write_message(
                        json.dumps({"op": "subscribe", "topic": "logs", "session": session["id"]})
                    )

    reader = asyncio.ensure_future(read())
    while not counter["first"]:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2 * 2.0)  # two list intervals: the tab has settled
    counter.update(bytes=0, messages=0, updates=0, update_bytes=0)
    requests_before = sum(proxy.counts.values())
    cpu_before = sum(process.cpu_times()[:2])
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = (sum(process.cpu_times()[:2]) - cpu_before) / elapsed
    requests = (sum(proxy.counts.values()) - requests_before) / elapsed
    stop.set()
    await reader
    ws.close()
    return {
        "cpu": cpu,
        "browser_bytes_s": counter["bytes"] / elapsed,
        "messages_s": counter["messages"] / elapsed,
        "bytes_per_update": counter["update_bytes"] / max(1, counter["updates"]),
        "first": counter["first"],
        "upstream_req_s": requests,
    }


async def measure(size: int, runs: int, seconds: float, tag: str) -> dict:
    async with stack({"cores": 2}) as (home, _info, proxy, server):
        (home / "root" / "sleeper.ipynb").write_text(json.dumps(NOTEBOOK))
        started = time.monotonic()
        launched = await launch(server, runs, size, tag)
        launch_seconds = time.monotonic() - started
        result = await watch(server, proxy, seconds, deltas=True)
        result["launch_seconds"] = launch_seconds
        result["replicas"] = sum(len(run["replicas"]) for run in launched)
        if size * runs > 1:
            whole = await watch(server, proxy, seconds / 2, deltas=False)
            result["whole_bytes_per_update"] = whole["bytes_per_update"]
        await delete(server, launched)
    return result


async def main(seconds: float) -> None:
    one = await measure(1, 1, seconds, "one")
    big = await measure(RUN_SIZE, 4, seconds, "big")
    print(
        f"one browser session watching a run, {seconds:g} s, engine capacity 2 cores "
        f"({big['replicas']} replicas launched in {big['launch_seconds']:.0f} s)"
    )
    print(f"  {'':34} {'1 replica':>12} {big['replicas']:>6} replicas {'ratio':>7}")
    rows = [
        ("server CPU (% of a core)", one["cpu"] * 100, big["cpu"] * 100),
        ("bytes to the browser per second", one["browser_bytes_s"], big["browser_bytes_s"]),
        ("messages to the browser per second", one["messages_s"], big["messages_s"]),
        ("bytes per sessions update", one["bytes_per_update"], big["bytes_per_update"]),
        ("first (whole) sessions message, bytes", one["first"], big["first"]),
        ("upstream requests per second", one["upstream_req_s"], big["upstream_req_s"]),
    ]
    for label, a, b in rows:
        print(f"  {label:<38} {a:>10.1f} {b:>15.1f} {b / a if a else float('nan'):>7.2f}")
    whole = big["whole_bytes_per_update"]
    print(
        f"  at {big['replicas']} replicas a whole sessions message per update is {whole:.0f} B; "
        f"the delta {big['bytes_per_update']:.0f} B ({big['bytes_per_update'] / whole:.4f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window")
    asyncio.run(main(parser.parse_args().seconds))
