"""What the Jupyter server costs while it streams, and what a big run costs the session service.

    python bench/server_cost.py

1. CPU and RSS of a real Jupyter server (with canfar_jlab) while 100 replicas stream logs to one
   websocket subscriber, against the same server idle for the same time (the baseline).
2. Upstream requests per second while one subscriber watches the session list live, with
   1 replica and then with 1,000 replicas (mostly Pending: the engine is given 2 cores). The
   target is the same rate for both (one list call per interval, whatever the run's size).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import engine_client, messages, stack

from canfar_jlab.models import SessionSpec

STREAMERS = 100
WATCH = 10.0
PRINTER = """import time
end = time.time() + {seconds}
i = 0
while time.time() < end:
    print('replica line', i, flush=True)
    i += 1
    time.sleep(0.1)
"""


def usage(process: psutil.Process, seconds: float) -> tuple[float, float]:
    """(CPU as a fraction of one core, peak RSS in MiB) over `seconds` (blocking)."""
    start_cpu = sum(process.cpu_times()[:2])
    peak = 0
    end = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < end:
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.25)
    cpu = (sum(process.cpu_times()[:2]) - start_cpu) / (time.monotonic() - started)
    return cpu, peak / 2**20


async def drain(ws, stop: asyncio.Event, counter: dict) -> None:
    async for raw in messages(ws, stop):
        counter["messages"] += 1
        counter["bytes"] += len(raw)


async def streaming_cost() -> dict:
    async with stack({"cores": 128}) as (home, info, proxy, server):
        process = psutil.Process(server.process.pid)
        client = await engine_client(info)
        image = (await client.images())[0].id
        idle_cpu, idle_rss = await asyncio.to_thread(usage, process, WATCH)

        script = home / "printer.py"
        script.write_text(PRINTER.format(seconds=WATCH + 30))
        spec = SessionSpec(name="stream", image=image, cmd=sys.executable, args=[str(script)])
        outcomes = await client.create_replicas(spec, STREAMERS, concurrency=16)
        ids = [o.session_id for o in outcomes if o.session_id]
        ws = await server.live()
        for session_id in ids:
            ws.write_message(
                json.dumps({"op": "subscribe", "topic": "logs", "session": session_id})
            )
        stop, counter = asyncio.Event(), {"messages": 0, "bytes": 0}
        reader = asyncio.ensure_future(drain(ws, stop, counter))
        await asyncio.sleep(2.0)  # all replicas started and subscribed
        before, streams_before = proxy.counts["logs"], proxy.counts["stream"]
        bytes_before = counter["bytes"]
        busy_cpu, busy_rss = await asyncio.to_thread(usage, process, WATCH)
        log_rate = (proxy.counts["logs"] - before) / WATCH
        stream_opens = proxy.counts["stream"] - streams_before
        delivered = (counter["bytes"] - bytes_before) / WATCH
        stop.set()
        await reader
        ws.close()
        await client.aclose()
    return {
        "replicas": len(ids),
        "idle_cpu": idle_cpu,
        "idle_rss": idle_rss,
        "busy_cpu": busy_cpu,
        "busy_rss": busy_rss,
        "log_req_per_s": log_rate,
        "streams": proxy.counts["stream"],
        "stream_opens": stream_opens,
        "delivered": delivered,
        "messages": counter["messages"],
    }


async def list_rate(proxy, server, seconds: float) -> tuple[float, int]:
    ws = await server.live()
    ws.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    stop, counter = asyncio.Event(), {"messages": 0, "bytes": 0}
    reader = asyncio.ensure_future(drain(ws, stop, counter))
    await asyncio.sleep(1.0)
    before = sum(proxy.counts.values())
    await asyncio.sleep(seconds)
    rate = (sum(proxy.counts.values()) - before) / seconds
    stop.set()
    await reader
    ws.close()
    return rate, counter["bytes"] // max(1, counter["messages"])


async def listing_cost() -> dict:
    async with stack({"cores": 2}) as (home, info, proxy, server):
        client = await engine_client(info)
        image = (await client.images())[0].id
        sleeper = home / "sleeper.py"
        sleeper.write_text("import time\ntime.sleep(600)\n")
        spec = SessionSpec(name="big", image=image, cmd=sys.executable, args=[str(sleeper)])
        await client.create_session(spec.model_copy(update={"name": "single"}))
        one_rate, one_bytes = await list_rate(proxy, server, WATCH)
        started = time.monotonic()
        created = 0
        for batch in range(4):  # a client creates at most 256 replicas per call
            batch_spec = spec.model_copy(update={"name": f"big{batch}"})
            outcomes = await client.create_replicas(batch_spec, 250, concurrency=16)
            created += sum(1 for o in outcomes if o.session_id)
        create_seconds = time.monotonic() - started
        many_rate, many_bytes = await list_rate(proxy, server, WATCH)
        statuses = [s.status.value for s in await client.list_sessions()]
        await client.aclose()
    return {
        "one_rate": one_rate,
        "one_bytes": one_bytes,
        "many": created + 1,
        "many_rate": many_rate,
        "many_bytes": many_bytes,
        "pending": statuses.count("Pending"),
        "create_seconds": create_seconds,
    }


async def main(part: str) -> None:
    if part in ("all", "streaming"):
        report_streaming(await streaming_cost())
    if part in ("all", "listing"):
        report_listing(await listing_cost())


def report_streaming(streaming: dict) -> None:
    print(
        f"server cost while {streaming['replicas']} replicas stream logs to one subscriber "
        f"({WATCH:g} s, baseline: the same server idle)"
    )
    s = streaming
    extra_cpu = (s["busy_cpu"] - s["idle_cpu"]) * 100
    print(
        f"  CPU  idle {s['idle_cpu'] * 100:6.1f}% of a core   streaming "
        f"{s['busy_cpu'] * 100:6.1f}%   (+{extra_cpu:.1f} points)"
    )
    rss_ratio = s["busy_rss"] / s["idle_rss"]
    print(
        f"  RSS  idle {s['idle_rss']:6.1f} MiB          streaming "
        f"{s['busy_rss']:6.1f} MiB   ratio {rss_ratio:.2f}"
    )
    print(
        f"  upstream log requests {s['log_req_per_s']:.1f}/s "
        f"({s['log_req_per_s'] / s['replicas']:.2f}/s per replica); log stream requests "
        f"{s['streams']} in all ({s['stream_opens']} opened while measured); "
        f"{s['messages']} websocket messages, {s['delivered'] / 1e3:.1f} KB/s to the browser"
    )
    print(f"  goal: at most 10% of a core; extra CPU = {extra_cpu / 10:.2f}x the goal")


def report_listing(listing: dict) -> None:
    print(
        f"upstream requests while the session list is watched live "
        f"(1 vs {listing['many']} sessions, {listing['pending']} Pending)"
    )
    print(
        f"  1 session      {listing['one_rate']:.2f} req/s  ({listing['one_bytes']} B per update)"
    )
    print(
        f"  {listing['many']} sessions {listing['many_rate']:.2f} req/s  "
        f"({listing['many_bytes']} B per update)  "
        f"ratio {listing['many_rate'] / listing['one_rate']:.2f}"
    )
    print(f"  (creating {listing['many'] - 1} sessions took {listing['create_seconds']:.1f} s)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "streaming", "listing"), default="all")
    asyncio.run(main(parser.parse_args().part))
