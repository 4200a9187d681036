"""The run's reduce step on the real local engine (issue 17): cells tagged `reduce` run once,
in a session of their own, after every replica succeeded; the run ends with it; a re-run of
failed replicas re-runs it after them."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import nbformat
from runs_support import cell, client_for, run_to_end, write_notebook

from canfar_jlab.cli import main
from canfar_jlab.runs import (
    LaunchRequest,
    ReplicaStatus,
    RunStore,
    launch,
    preview,
    rerun_failed,
)
from canfar_jlab.runs.reduce import reduce_name

PART = (
    "import os\nfrom pathlib import Path\n"
    "rid = os.environ['REPLICA_ID']\n"
    "Path(os.environ['CANFAR_RUN_OUTPUTS'], f'part-{rid}.txt').write_text(rid)\n"
    "print('wrote part', rid)"
)
REDUCE = (
    "import os\nfrom pathlib import Path\n"
    "out = Path(os.environ['CANFAR_RUN_OUTPUTS'])\n"
    "parts = sorted(out.glob('part-*.txt'))\n"
    "total = sum(int(p.read_text()) for p in parts)\n"
    "(out / 'sum.txt').write_text(str(total))\n"
    "print(f'sum of {len(parts)} parts of', os.environ['REPLICA_COUNT'], '=', total)"
)


async def test_a_reduce_cell_combines_the_four_replicas_outputs(engine, tmp_path, cli_env, capsys):
    notebook = write_notebook(tmp_path / "combine.ipynb", [PART, cell(REDUCE, "reduce")])
    store = RunStore(tmp_path / "runs")
    seen: list[tuple[str, list[str], str | None]] = []

    def progress(run) -> None:
        steps = [r.status.value for r in run.replicas]
        seen.append((run.state, steps, run.reduce.status.value if run.reduce else None))

    async with client_for(engine) as client:
        shown = await preview(LaunchRequest(notebook=str(notebook), replicas=4), store, client)
        assert shown.reduce_cells == [2]
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=4), client, store)
        assert run.spec.reduce == "cells" and run.reduce is None
        run, lines = await run_to_end(run.name, client, store, on_progress=progress)
    assert run.state == "completed", (run.reduce, [r.error for r in run.replicas])
    folder = Path(run.folder)
    assert (folder / "outputs" / "sum.txt").read_text() == "10"
    step = run.reduce
    assert step is not None and step.index == 0 and step.name == "combine-reduce"
    assert step.status is ReplicaStatus.COMPLETED and step.exit_code == 0
    assert step.log == "logs/reduce.log"
    assert "sum of 4 parts of 4 = 10" in (folder / "logs" / "reduce.log").read_text()
    assert "sum of 4 parts of 4 = 10" in lines[0]  # followed like a replica, as index 0
    assert step.executed_notebook == "reduce/executed.ipynb"
    executed = nbformat.read(folder / "reduce" / "executed.ipynb", 4)
    assert executed.cells[1].outputs[0]["text"] == "sum of 4 parts of 4 = 10\n"
    assert json.loads((folder / "reduce" / "status.json").read_text())["replica"] == 0
    for index in range(1, 5):  # the replicas did not run the reduce cell
        log = (folder / "logs" / f"replica-{index}.log").read_text()
        assert f"wrote part {index}" in log and "sum of" not in log
    # Every replica Completed before the reduce step ended, and the run stayed active then.
    all_done = [s for s in seen if s[1] == ["Completed"] * 4 and s[2] != "Completed"]
    assert all_done and {state for state, _, _ in all_done} == {"active"}
    assert run.ended == step.ended and run.ended >= max(r.ended for r in run.replicas)
    assert json.loads((folder / "run.json").read_text())["reduce"]["name"] == "combine-reduce"
    # The CLI shows it as the run's last step, and `RUN-reduce` names it alone.
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["ps", "--all"]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"^\s*reduce\s+combine-reduce\s+\S+\s+Completed", shown, re.M), shown
    assert "reduce step: executed reduce/executed.ipynb" in shown
    assert await asyncio.to_thread(main, ["logs", "combine-reduce"]) == 0
    logged = capsys.readouterr().out
    assert "[reduce] sum of 4 parts of 4 = 10" in logged and "wrote part" not in logged


FAILS_FIRST = (
    "import os\nfrom pathlib import Path\n"
    "out = Path(os.environ['CANFAR_RUN_OUTPUTS'])\n"
    "rid = os.environ['REPLICA_ID']\n"
    "if rid == '2' and not (out / 'tried-2').exists():\n"
    "    (out / 'tried-2').touch()\n"
    "    raise RuntimeError('replica 2 fails the first time')\n"
    "(out / f'part-{rid}.txt').write_text(rid)"
)
REDUCE_FAILS_FIRST = (
    "import os\nfrom pathlib import Path\n"
    "out = Path(os.environ['CANFAR_RUN_OUTPUTS'])\n"
    "if not (out / 'tried-reduce').exists():\n"
    "    (out / 'tried-reduce').touch()\n"
    "    raise RuntimeError('the reduce step fails the first time')\n"
    "(out / 'sum.txt').write_text(str(sum(int(p.read_text()) for p in out.glob('part-*'))))"
)


async def test_rerunning_failed_replicas_reruns_the_reduce_step_after_them(engine, tmp_path):
    notebook = write_notebook(
        tmp_path / "again.ipynb", [FAILS_FIRST, cell(REDUCE_FAILS_FIRST, "reduce")]
    )
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=2), client, store)
        run, _ = await run_to_end(run.name, client, store)
        # A replica failed: no reduce step, and the run has ended failed.
        assert run.state == "failed" and run.reduce is None
        assert run.replica(2).status is ReplicaStatus.FAILED

        await rerun_failed(run.name, client, store)
        run, _ = await run_to_end(run.name, client, store)
        # Replica 2 succeeded on its second attempt; then the reduce step ran, and failed.
        assert run.replica(2).status is ReplicaStatus.COMPLETED
        assert run.reduce is not None and run.reduce.status is ReplicaStatus.FAILED
        assert "the reduce step fails the first time" in run.reduce.error
        assert run.state == "failed"
        first_reduce = run.reduce.session_id

        again = await rerun_failed(run.name, client, store)  # only the reduce step is left
        assert [len(r.attempts) for r in again.replicas] == [0, 1]
        assert again.reduce is not None and again.reduce.session_id != first_reduce
        run, _ = await run_to_end(run.name, client, store)
    assert run.state == "completed", run.reduce
    folder = Path(run.folder)
    assert (folder / "outputs" / "sum.txt").read_text() == "3"
    attempt = run.reduce.attempts[0]
    assert attempt.why == "rerun" and attempt.session_id == first_reduce
    assert attempt.log == "logs/reduce.attempt-1.log"
    assert "fails the first time" in (folder / attempt.log).read_text()
    assert "fails the first time" not in (folder / "logs" / "reduce.log").read_text()


def test_the_reduce_session_name_fits_skaha():
    assert reduce_name("run") == "run-reduce"
    long = "a" * 59
    assert len(reduce_name(long)) == 63 and reduce_name(long).endswith("-reduce")


async def test_a_reduce_notebook_runs_whole_after_the_replicas(engine, tmp_path):
    notebook = write_notebook(tmp_path / "parts.ipynb", [PART])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=2), client, store)
        assert run.spec.reduce is None  # no reduce cells
        # What `--reduce NOTEBOOK` records (issue 17's launch flag): the copy's file name.
        write_notebook(Path(run.folder) / "sum.ipynb", ["import os", REDUCE])

        def with_reduce_notebook(current):
            current.spec.reduce = "sum.ipynb"

        store.update(run.name, with_reduce_notebook)
        run, _ = await run_to_end(run.name, client, store)
    assert run.state == "completed", run.reduce
    assert run.reduce.name == "parts-reduce" and run.reduce.status is ReplicaStatus.COMPLETED
    assert (Path(run.folder) / "outputs" / "sum.txt").read_text() == "3"
    executed = nbformat.read(Path(run.folder) / "reduce" / "executed.ipynb", 4)
    assert executed.cells[1].outputs[0]["text"] == "sum of 2 parts of 2 = 3\n"
