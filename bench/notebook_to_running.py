"""Notebook to running replicas: what promoting a notebook costs over launching a plain command.

For N = 1, 10, 50 (same run, same engine) it measures:
- export: the notebook -> script export alone (`export_notebook`, median of 3);
- run launch: `runs.launch()` (checks, run folder, export, run.json, N creates) from the call
  to all N replicas Running, and to the call's return;
- plain baseline: `SkahaClient.create_replicas()` of N replicas running a plain Python
  script (no export, no run folder, no IPython), from the call to all Running;
- same-command baseline: `create_replicas()` of N replicas running the exported script with
  its runner (what the run's replicas run, without the run's checks, folder and run.json);
and prints run launch / each baseline (all to all Running). On a small machine the replicas
that start first compete for CPU with the creates still being handled (IPython's import is
the bulk of a replica's start), so the same-command ratio is the one that isolates the cost of
the run machinery.

    .venv/bin/python bench/notebook_to_running.py            # N = 1, 10, 50
    .venv/bin/python bench/notebook_to_running.py --n 5 20

It starts its own engine in a temporary data home (capacity for the largest N, so nothing
queues), deletes each round's replicas before the next, and stops the engine at the end.
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

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.engine.control import ensure_engine, stop_engine
from canfar_jlab.export import export_notebook
from canfar_jlab.models import SessionSpec
from canfar_jlab.runs import LaunchRequest, RunStore, launch
from canfar_jlab.skaha import SkahaClient

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "reduce_fits.ipynb"
IMAGE = "images.canfar.net/skaha/base:latest"
POLL = 0.02
# Both kinds of replica wait for a file, so "all Running" is not cut short by replicas ending.
WAIT_SCRIPT = """import os, pathlib, time
go = pathlib.Path(os.environ["BENCH_GO"])
while not go.exists():
    time.sleep(0.1)
"""
WAIT_CELL = "import os, pathlib, time\ngo = pathlib.Path(os.environ['BENCH_GO'])\n" + (
    "while not go.exists():\n    time.sleep(0.1)"
)


def make_notebook(folder: Path) -> Path:
    """The example notebook with a first cell that waits (the replicas stay Running)."""
    import nbformat

    notebook = nbformat.read(EXAMPLE, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(WAIT_CELL))
    path = folder / "notebooks" / "reduce_fits.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)
    return path


async def all_running(client: SkahaClient, ids: set[str], start: float) -> float:
    while True:
        listed = {s.id: s.status.value for s in await client.list_sessions()}
        if all(listed.get(i) in ("Running", "Completed", "Failed") for i in ids):
            return time.perf_counter() - start
        await asyncio.sleep(POLL)


async def clear(client: SkahaClient) -> None:
    """Delete every session and wait until the engine lists none."""
    for session in await client.list_sessions():
        await client.delete(session.id)
    while await client.list_sessions():
        await asyncio.sleep(0.1)


async def baseline(client: SkahaClient, n: int, argv: list[str], go: Path, tag: str) -> float:
    spec = SessionSpec(
        name=f"{tag}-{n}",
        image=IMAGE,
        cmd=argv[0],
        args=argv[1:],
        env={"BENCH_GO": str(go), "REPLICA_ID": "1", "REPLICA_COUNT": str(n)},
    )
    start = time.perf_counter()
    outcomes = await client.create_replicas(spec, n)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    return await all_running(client, {o.session_id for o in outcomes}, start)


async def run_launch(
    client: SkahaClient, store: RunStore, n: int, notebook: Path, go: Path
) -> tuple[float, float]:
    request = LaunchRequest(notebook=str(notebook), replicas=n, env={"BENCH_GO": str(go)})
    start = time.perf_counter()
    run = await launch(request, client, store)
    returned = time.perf_counter() - start
    ids = {r.session_id for r in run.replicas}
    assert None not in ids, [r.error for r in run.replicas]
    return returned, await all_running(client, ids, start)


def export_time(notebook: Path, out: Path) -> float:
    times = []
    for attempt in range(3):
        target = out / f"export-{attempt}"
        start = time.perf_counter()
        export_notebook(notebook, target)
        times.append(time.perf_counter() - start)
        shutil.rmtree(target)
    return statistics.median(times)


async def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="canfar-jlab-bench-") as tmp:
        home = Path(tmp)
        work = home / "work"
        work.mkdir()
        config = {"workdir": str(work), "cores": max(sizes) + 4, "grace_period": 2}
        await asyncio.to_thread(ensure_engine, home, 60.0, config=config)
        try:
            client = SkahaClient(engine_credentials(home, start=False))
            store = RunStore(home / "runs")
            notebook = make_notebook(home)
            script = home / "wait.py"
            script.write_text(WAIT_SCRIPT)
            # Imports nbconvert once, outside the figures; its script is the same-command one.
            same = export_notebook(notebook, home / "same-command").argv
            plain_argv = [sys.executable, str(script)]
            rows = []
            async with client:
                await baseline(client, 2, plain_argv, home / "go", "warm-up")
                await clear(client)
                for n in sizes:
                    exported = export_time(notebook, home)
                    go = home / f"go-{n}"
                    plain = await baseline(client, n, plain_argv, go, "plain")
                    await clear(client)
                    same_command = await baseline(client, n, same, go, "same")
                    await clear(client)
                    returned, running = await run_launch(client, store, n, notebook, go)
                    await clear(client)
                    rows.append((n, exported, returned, running, plain, same_command))
        finally:
            await asyncio.to_thread(stop_engine, home, 60.0, terminate_replicas=True)

    print("notebook -> N replicas Running on the local engine (seconds)")
    print(
        f"{'N':>4}  {'export':>7}  {'launch() returned':>17}  {'run: all Running':>16}  "
        f"{'plain: all Running':>18}  {'same cmd: all Running':>21}  "
        f"{'run/plain':>9}  {'run/same':>8}"
    )
    for n, exported, returned, running, plain, same_command in rows:
        print(
            f"{n:>4}  {exported:>7.3f}  {returned:>17.3f}  {running:>16.3f}  {plain:>18.3f}  "
            f"{same_command:>21.3f}  {running / plain:>9.2f}  {running / same_command:>8.2f}"
        )
    print(
        "export: notebook -> script alone (median of 3). run: runs.launch() from the call "
        "(checks, export, run folder, run.json, N creates). plain: create_replicas() of N "
        "replicas running a plain Python script. same cmd: create_replicas() of N replicas "
        "running the exported script with its runner. Ratios to all Running."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 50])
    asyncio.run(main(parser.parse_args().n))
