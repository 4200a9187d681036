"""What watching 100 replicas' logs costs a Skaha service that sends whole logs on every read.

    python bench/skaha_polling.py [--seconds 60]

The service is the misbehaving Skaha look-alike of the tests (tests/fake_skaha.py: whole logs,
no offsets, no log stream; here it also answers some reads slowly or with 503). 100 sessions
run, each with a 100 KB log; 10 of them print a line every second, the rest are quiet; a browser
shows 5 of them (visible) and follows the other 95 in the background (a merged view, a run's
end). Both rounds use the real LiveHub and SkahaClient over HTTP:

- before: every watched log read every 2 s, no byte cap (what the hub did before issue 14);
- after: the defaults (quiet logs back off to 30 s, visible ones stay at 2 s, 2 MB/s cap).

Printed: upstream log requests and whole-log bytes per second for each, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_skaha import Delay, FakeSkaha, Status

from canfar_jlab.credentials import Credentials, Secret, normalise_base_url
from canfar_jlab.live import LiveHub
from canfar_jlab.skaha import RetryPolicy, SkahaClient

REPLICAS = 100
ACTIVE = 10
VISIBLE = 5
LOG_BYTES = 100_000
TOKEN = "bench-" + secrets.token_hex(8)


def printer(fake: FakeSkaha, ids: list[str], stop: threading.Event) -> None:
    """The active replicas print a line a second."""
    line = 0
    while not stop.wait(1.0):
        line += 1
        for sid in ids:
            fake.append_log(sid, f"step {line}: still working\n")


async def drain(hub: LiveHub, session_id: str, visible: bool) -> None:
    async for _ in hub.logs(session_id, visible=visible):
        pass


async def round_(label: str, seconds: float, polite: bool) -> dict:
    with FakeSkaha(TOKEN) as fake:
        ids = [fake.add_session(f"bench-{i}") for i in range(REPLICAS)]
        for sid in ids:
            fake.append_log(sid, (b"x" * 99 + b"\n") * (LOG_BYTES // 100))
        # Misbehaving now and then: slow reads and 503s (the client retries those).
        for _ in range(5):
            fake.fail_next("GET logs", Delay(0.5), Status(503, "busy"))
        stop = threading.Event()
        thread = threading.Thread(target=printer, args=(fake, ids[:ACTIVE], stop), daemon=True)
        thread.start()
        creds = Credentials(
            base_url=normalise_base_url(fake.url),
            source="bench",
            kind="explicit",
            token=Secret(TOKEN),
        )
        client = SkahaClient(creds, retry=RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.5))
        settings = {} if polite else {"quiet_interval": 2.0, "whole_log_bytes_per_second": 0}
        hub = LiveHub(client, **settings)
        # The first five of the active ones are shown; the others are followed unseen.
        visible = set(ids[ACTIVE - VISIBLE : ACTIVE])
        tasks = [asyncio.ensure_future(drain(hub, sid, sid in visible)) for sid in ids]
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        requests = len(fake.recorded("GET", ""))
        log_requests = sum(1 for r in fake.recorded("GET") if ("view", "logs") in r.query)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.close()
        await client.aclose()
    result = {
        "label": label,
        "seconds": elapsed,
        "log_req_s": log_requests / elapsed,
        "req_s": requests / elapsed,
        "bytes_s": hub.whole_log_bytes / elapsed,
    }
    print(
        f"  {label:<7} {result['log_req_s']:7.1f} log req/s  {result['req_s']:7.1f} req/s in all  "
        f"{result['bytes_s'] / 1e6:7.2f} MB/s of whole logs   ({elapsed:.0f} s)"
    )
    return result


async def main(seconds: float, before_seconds: float) -> None:
    print(
        f"{REPLICAS} watched replicas on a whole-log Skaha ({LOG_BYTES // 1000} KB logs, "
        f"{ACTIVE} printing, {VISIBLE} visible)"
    )
    before = await round_("before", before_seconds, polite=False)
    after = await round_("after", seconds, polite=True)
    print(
        f"  ratio after/before: log requests {after['log_req_s'] / before['log_req_s']:.3f}, "
        f"whole-log bytes {after['bytes_s'] / before['bytes_s']:.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the polite round")
    parser.add_argument("--before-seconds", type=float, default=20.0, help="the baseline's")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.before_seconds))
