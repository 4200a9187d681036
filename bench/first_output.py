"""Launch to first output line: a replica running the notebook in a kernel (nbclient) against
`ipython script.py` running the same exported notebook, on the local engine.

For each round (same engine, same run folder) it measures, from the call to the moment the
replica's log (the engine's logs endpoint, polled every 20 ms) holds its first line of any
kind (for a run: the runner's start line) and the notebook's first output line:
- run: `runs.launch()` of a 1-replica run (checks, export, run folder, run.json, the create;
  then the runner starts a kernel and runs the first cell);
- ipython: `SkahaClient.create_replicas()` of 1 replica running `ipython <run>/<stem>.py`,
  the script exported into that run's folder (IPython's start and the script's first print).

and prints the medians, the ratio run / ipython and the difference (the issue aims at a
difference within 1.5 s).

    .venv/bin/python bench/first_output.py            # 5 rounds
    .venv/bin/python bench/first_output.py --rounds 3

It starts its own engine in a temporary data home and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.engine.control import ensure_engine, stop_engine
from canfar_jlab.models import SessionSpec
from canfar_jlab.runs import LaunchRequest, RunStore, launch
from canfar_jlab.skaha import SkahaClient

IMAGE = "images.canfar.net/skaha/base:latest"
POLL = 0.02
FIRST = "first output line"
CELLS = [
    f"print({FIRST!r})",
    "import math\nvalues = [math.sqrt(i) for i in range(1000)]\nprint(sum(values))",
    "values[:3]",
]


def make_notebook(folder: Path) -> Path:
    path = folder / "notebooks" / "first_output.ipynb"
    path.parent.mkdir(parents=True)
    cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


async def first_line(client: SkahaClient, session_id: str, start: float) -> tuple[float, float]:
    """Seconds from `start` to the log's first whole line, and to the first output line."""
    any_line = None
    while True:
        text = (await client.logs(session_id)).text
        if any_line is None and "\n" in text:
            any_line = time.perf_counter() - start
        if FIRST in text:
            return any_line or time.perf_counter() - start, time.perf_counter() - start
        await asyncio.sleep(POLL)


async def clear(client: SkahaClient) -> None:
    for session in await client.list_sessions():
        await client.delete(session.id)
    while await client.list_sessions():
        await asyncio.sleep(0.1)


async def run_round(
    client: SkahaClient, store: RunStore, notebook: Path
) -> tuple[tuple[float, float], Path]:
    start = time.perf_counter()
    run = await launch(LaunchRequest(notebook=str(notebook)), client, store)
    session_id = run.replica(1).session_id
    assert session_id, run.replica(1).error
    return await first_line(client, session_id, start), Path(run.folder) / run.script


async def ipython_round(client: SkahaClient, script: Path, tag: str) -> tuple[float, float]:
    ipython = Path(sys.executable).with_name("ipython")
    argv = [str(ipython), str(script)] if ipython.exists() else [sys.executable, "-m", "IPython"]
    if not ipython.exists():
        argv.append(str(script))
    spec = SessionSpec(name=tag, image=IMAGE, cmd=argv[0], args=argv[1:], env={})
    start = time.perf_counter()
    (outcome,) = await client.create_replicas(spec, 1)
    assert outcome.ok, outcome.error
    return await first_line(client, outcome.session_id, start)


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="canfar-jlab-bench-") as tmp:
        home = Path(tmp)
        work = home / "work"
        work.mkdir()
        config = {"workdir": str(work), "cores": 4, "grace_period": 2}
        await asyncio.to_thread(ensure_engine, home, 60.0, config=config)
        runs, baselines = [], []
        try:
            client = SkahaClient(engine_credentials(home, start=False))
            store = RunStore(home / "runs")
            notebook = make_notebook(home)
            async with client:
                _, script = await run_round(client, store, notebook)  # warm-up: imports, caches
                await ipython_round(client, script, "warm-up-ipython")
                await clear(client)
                for index in range(rounds):
                    took, script = await run_round(client, store, notebook)
                    runs.append(took)
                    await clear(client)
                    baselines.append(await ipython_round(client, script, f"ipython-{index}"))
                    await clear(client)
        finally:
            await asyncio.to_thread(stop_engine, home, 60.0, terminate_replicas=True)
            shutil.rmtree(home / "runs", ignore_errors=True)

    print("launch -> the replica's log, local engine (seconds)")
    print(f"{'':>42}  {'median':>7}  {'min':>7}  {'max':>7}")
    rows = (
        ("run: first line (runner's start line)", [r[0] for r in runs]),
        ("run: first output line (nbclient kernel)", [r[1] for r in runs]),
        ("ipython script.py: first output line", [b[1] for b in baselines]),
    )
    for label, values in rows:
        print(
            f"{label:>42}  {statistics.median(values):>7.3f}  {min(values):>7.3f}  "
            f"{max(values):>7.3f}"
        )
    run, baseline = statistics.median(rows[1][1]), statistics.median(rows[2][1])
    start_line = statistics.median(rows[0][1])
    print(
        f"first output: ratio run / ipython: {run / baseline:.2f}; difference: "
        f"{run - baseline:+.3f} s (aim: within 1.5 s); first line / ipython's first output: "
        f"{start_line / baseline:.2f}; {rounds} rounds"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
