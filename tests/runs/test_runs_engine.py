"""Runs launched on the real local engine over HTTP: export, replicas, run folder, rerun."""

from __future__ import annotations

import concurrent.futures
import csv
import json
import shutil

import pytest
from runs_support import (
    EXAMPLE,
    FAILS_ONCE,
    archived,
    client_for,
    kernel_stdout,
    normalize,
    run_to_end,
    write_notebook,
)

from canfar_jlab.runs import (
    LaunchRefused,
    LaunchRequest,
    NothingToRerun,
    ReplicaStatus,
    RunStore,
    launch,
    preview,
    rerun_failed,
)

# One cell per kind of magic or shell line; nothing that writes to stderr (a replica's log
# holds stdout and stderr, the kernel comparison only stdout).
MAGIC_CELLS = [
    "import os\nprint('start')",
    "%env CANFAR_TEST_FLAG=on\nprint(os.environ['CANFAR_TEST_FLAG'])",
    "%%time\ntotal = sum(range(1000))\nprint(total)",
    "y = %time 6 * 7\nprint('y =', y)",
    "%%writefile note.txt\nfirst line\nsecond line",
    "!cat note.txt\n!echo 'from the shell'",
    "files = !ls *.ipynb *.txt\nprint(sorted(files))",
    "os.makedirs('work', exist_ok=True)\n%cd work",
    "%pwd",
    "%cd -q ..\nprint(os.path.isdir('work'))",
    "%%bash\necho from bash\nls note.txt",
    "%%capture captured\nprint('hidden from the log')",
    "print(captured.stdout.strip())",
    "display('text', 42)\n{'a': [1, 2]}",
    "import asyncio\nawait asyncio.sleep(0)\nprint('awaited')",
    "def last():\n    return 'last value'\nlast()",
]


async def test_magics_and_shell_lines_print_what_the_kernel_printed(engine, tmp_path):
    kernel_nb = write_notebook(tmp_path / "kernel" / "notebooks" / "magics.ipynb", MAGIC_CELLS)
    batch_nb = write_notebook(tmp_path / "batch" / "notebooks" / "magics.ipynb", MAGIC_CELLS)
    store = RunStore(tmp_path / "runs")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        kernel = pool.submit(kernel_stdout, kernel_nb)  # the kernel starts while we launch
        async with client_for(engine) as client:
            run = await launch(LaunchRequest(notebook=str(batch_nb)), client, store)
            assert run.name == "magics" and run.replica(1).session_id
            run, lines = await run_to_end(run.name, client, store)
        kernel_text = kernel.result()
    assert run.state == "completed", run.replica(1).error
    batch_text = archived(run, 1)
    assert "\n".join(lines[1]) + "\n" == batch_text  # what --follow showed is the archive
    expected = normalize(kernel_text, kernel_nb.parent)
    # The replica ran in its own folder, replicas/1, which mirrors the notebook's.
    assert normalize(batch_text, store.root / run.name / "replicas" / "1") == expected
    assert "from bash\nnote.txt\n" in batch_text
    assert batch_text.count("hidden from the log") == 1  # %%capture kept it out, print showed it


async def test_input_is_refused_before_anything_is_created(engine, tmp_path):
    notebook = write_notebook(
        tmp_path / "ask.ipynb", ["x = 1", "name = input('your name? ')\nprint(name)"]
    )
    store = RunStore(tmp_path / "runs")
    request = LaunchRequest(notebook=str(notebook), replicas=3)
    async with client_for(engine) as client:
        shown = await preview(request, store, client)
        assert [(p.cell, p.line) for p in shown.problems] == [(2, 1)]
        assert [r.name for r in shown.replicas] == ["ask-1", "ask-2", "ask-3"]
        before = {s.id for s in await client.list_sessions()}
        with pytest.raises(LaunchRefused) as refused:
            await launch(request, client, store)
        after = await client.list_sessions()
    message = str(refused.value)
    assert message.startswith("cannot run ask.ipynb as batch: code cell 2, line 1: input()")
    assert "\n" not in message and refused.value.problems == shown.problems
    assert not [s for s in after if s.id not in before]
    assert not store.root.exists() or list(store.root.iterdir()) == []
    assert store.list() == []


async def test_four_replicas_process_ten_files_exactly_once(engine, tmp_path):
    notebook = tmp_path / "example" / "reduce_fits.ipynb"
    notebook.parent.mkdir()
    shutil.copy(EXAMPLE, notebook)
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        request = LaunchRequest(notebook=str(notebook), replicas=4, cores=1)
        run = await launch(request, client, store)
        assert [r.status for r in run.replicas] == [ReplicaStatus.PENDING] * 4
        assert [r.name for r in run.replicas] == [f"reduce-fits-{i}" for i in range(1, 5)]
        run, lines = await run_to_end(run.name, client, store)
    assert run.state == "completed", [r.error for r in run.replicas]
    outputs = store.root / run.name / "outputs"
    measured = []
    for index in range(1, 5):
        rows = json.loads((outputs / f"measurements-{index}-of-4.json").read_text())
        assert {row["replica"] for row in rows} <= {index}
        measured += [row["file"] for row in rows]
        assert f"replica {index} of 4" in lines[index]
        assert "OMP_NUM_THREADS" not in run.spec.env  # set per replica, not stored as user env
    assert sorted(measured) == [f"field-{i:03d}.fits" for i in range(10)]
    with open(outputs / "measurements.csv") as table:
        assert sorted(row["file"] for row in csv.DictReader(table)) == sorted(measured)
    folder = store.root / run.name
    assert (folder / "reduce_fits.py").is_file() and (folder / "canfar_runner.py").is_file()
    assert sorted(p.name for p in (folder / "logs").iterdir()) == [
        f"replica-{i}.log" for i in range(1, 5)
    ]


async def test_a_failed_replica_keeps_its_traceback_and_reruns_alone(engine, tmp_path):
    notebook = write_notebook(tmp_path / "Fails Once.ipynb", [FAILS_ONCE])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=3), client, store)
        assert run.name == "fails-once"
        run, _ = await run_to_end(run.name, client, store)
        assert run.state == "failed"
        assert [r.status.value for r in run.replicas] == ["Completed", "Failed", "Completed"]
        failed = run.replica(2)
        log = archived(run, 2)
        assert "Traceback (most recent call last)" in log
        assert "RuntimeError: replica 2 fails the first time" in log
        assert failed.error.startswith("canfar-jlab: stopped at code cell 1 (RuntimeError")
        first_ids = {r.index: r.session_id for r in run.replicas}

        rerun = await rerun_failed(run.name, client, store)
        assert [r.index for r in rerun.replicas if not r.is_ended] == [2]
        assert rerun.replica(2).session_id not in first_ids.values()
        run, lines = await run_to_end(run.name, client, store, indices=[2])
        with pytest.raises(NothingToRerun):
            await rerun_failed(run.name, client, store)
    assert run.state == "completed"
    assert {r.index: r.session_id for r in run.replicas if r.index != 2} == {
        i: first_ids[i] for i in (1, 3)
    }
    again = run.replica(2)
    assert [x for x in lines[2] if not x.startswith("## canfar-jlab cell")][:2] == [
        "replica 2 of 3",
        "finished",
    ]  # its original REPLICA_ID and count
    assert [a.session_id for a in again.attempts] == [first_ids[2]]
    assert again.attempts[0].status is ReplicaStatus.FAILED
    assert again.attempts[0].log == "logs/replica-2.attempt-1.log"
    assert "RuntimeError" in (store.root / run.name / again.attempts[0].log).read_text()
    assert "finished" in archived(run, 2)
    assert sorted(p.name for p in (store.root / run.name / "outputs").glob("done-*")) == [
        "done-1",
        "done-2",
        "done-3",
    ]
