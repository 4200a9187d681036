"""The runner's whole-run timeout (CANFAR_JLAB_TIMEOUT) and its reduce step
(CANFAR_JLAB_MODE=reduce), with both runners (issue 17)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from canfar_jlab.export import export_notebook, reduce_cells
from canfar_jlab.kernel_runner import MARKER_PREFIX, human_seconds

SLEEPS = ["print('before', flush=True)", "import time\ntime.sleep(60)", "print('never')"]
# The kernel runner's deadline counts its kernel's start too (seconds on a loaded machine).
TIMEOUTS = {"script": 3, "nbclient": 10}


def printed(text: str) -> str:
    """stdout without the runner's cell markers."""
    return "".join(line for line in text.splitlines(True) if not line.startswith(MARKER_PREFIX))


def report_at(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


@pytest.mark.parametrize("runner", ["nbclient", "script"])
def test_the_run_times_out_at_its_deadline(make_notebook, helpers, tmp_path, runner):
    exported = export_notebook(make_notebook(SLEEPS), tmp_path / "run", runner=runner)
    timeout = TIMEOUTS[runner]
    started = time.monotonic()
    run = helpers.run_batch(exported.argv, env={"CANFAR_JLAB_TIMEOUT": str(timeout)})
    took = time.monotonic() - started
    assert run.returncode == 124, run.stderr
    assert timeout <= took < timeout + 25  # not the 60 s the cell sleeps
    assert run.stderr.splitlines()[-1] == (
        f"canfar-jlab: stopped at code cell 2 (timed out after {timeout}s, CANFAR_JLAB_TIMEOUT); "
        "the cells after it did not run"
    )
    assert "never" not in run.stdout and "before" in run.stdout
    report = report_at(tmp_path / "run" / "replicas" / "1")
    assert report["state"] == "timed_out" and report["exit_code"] == 124
    assert report["error"] == f"timed out after {timeout}s"
    assert report["failed_cell"]["index"] == 2 and report["ended"]
    if runner == "nbclient":  # the notebook is saved, up to where it was stopped
        executed = nbformat.read(tmp_path / "run" / "replicas" / "1" / "executed.ipynb", 4)
        assert executed.cells[0].outputs[0]["text"] == "before\n"


def test_no_timeout_when_unset_or_not_a_number(make_notebook, helpers, tmp_path):
    exported = export_notebook(make_notebook(["print('done')"]), tmp_path / "run")
    run = helpers.run_batch(exported.argv, env={"CANFAR_JLAB_TIMEOUT": "soon"})
    assert run.returncode == 0, run.stderr
    assert "CANFAR_JLAB_TIMEOUT='soon' is not a number; no timeout" in run.stderr
    assert report_at(tmp_path / "run" / "replicas" / "1")["state"] == "completed"


@pytest.mark.parametrize(
    ("seconds", "shown"), [(3, "3s"), (90, "1m30s"), (7200, "2h"), (5400, "1h30m"), (0, "0s")]
)
def test_durations_are_said_in_human_units(seconds, shown):
    assert human_seconds(seconds) == shown


REDUCE_NOTEBOOK = [
    "import os\nfrom pathlib import Path",
    ("scale = 1", "parameters"),
    "out = Path(os.environ['CANFAR_RUN_OUTPUTS'])\n"
    "rid = int(os.environ['REPLICA_ID'])\n"
    "(out / f'part-{rid}.txt').write_text(str(rid * scale))\nprint('replica', rid)",
    (
        "import os\nfrom pathlib import Path\n"
        "out = Path(os.environ['CANFAR_RUN_OUTPUTS'])\n"
        "total = sum(int(p.read_text()) for p in sorted(out.glob('part-*.txt')))\n"
        "Path('sum.txt').write_text(str(total))\nprint('sum', total, 'in', Path.cwd().name)",
        "reduce",
    ),
]


def _cells(helpers):
    return [
        helpers.cell(*each) if isinstance(each, tuple) else helpers.cell(each)
        for each in REDUCE_NOTEBOOK
    ]


@pytest.mark.parametrize("runner", ["nbclient", "script"])
def test_replicas_skip_reduce_cells_and_the_reduce_step_runs_only_them(
    make_notebook, helpers, tmp_path, runner
):
    notebook = make_notebook(_cells(helpers))
    assert reduce_cells(notebook) == [4]
    folder = tmp_path / "run"
    outputs = folder / "outputs"
    exported = export_notebook(notebook, folder, parameters={"scale": 10}, runner=runner)
    assert exported.reduce_cells == [4]
    outputs.mkdir()
    for replica in (1, 2):
        env = {"REPLICA_ID": str(replica), "REPLICA_COUNT": "2", "CANFAR_RUN_OUTPUTS": str(outputs)}
        run = helpers.run_batch(exported.argv, env=env)
        assert run.returncode == 0, run.stderr
        assert printed(run.stdout) == f"replica {replica}\n"  # the reduce cell did not run
    assert not (folder / "reduce").exists()
    env = {
        "REPLICA_ID": "0",
        "REPLICA_COUNT": "2",
        "CANFAR_RUN_OUTPUTS": str(outputs),
        "CANFAR_JLAB_MODE": "reduce",
    }
    run = helpers.run_batch(exported.argv, env=env)
    assert run.returncode == 0, run.stderr
    assert printed(run.stdout) == "sum 30 in reduce\n"  # only the reduce cell (and parameters) ran
    assert run.stderr.splitlines()[0].startswith("canfar-jlab: reduce step of 2 replicas starting")
    assert (folder / "reduce" / "sum.txt").read_text() == "30"
    report = report_at(folder / "reduce")
    assert report["replica"] == 0 and report["state"] == "completed"
    assert report["files"] == ["sum.txt"]
    # replicas/ holds links to the notebook folder's neighbours; the run folder itself none
    assert (folder / "replicas" / "notebooks").is_symlink()
    assert not any(path.is_symlink() for path in folder.iterdir())
    if runner == "nbclient":
        executed = nbformat.read(folder / "reduce" / "executed.ipynb", 4)
        ran = [c for c in executed.cells if c.cell_type == "code" and c.get("outputs")]
        assert [c.outputs[0]["text"] for c in ran] == ["sum 30 in reduce\n"]


def test_the_reduce_step_runs_a_reduce_notebook_whole(make_notebook, helpers, tmp_path):
    folder = tmp_path / "run"
    exported = export_notebook(make_notebook(["print('replica')"]), folder)
    combine = helpers.write_notebook(
        folder / "combine.ipynb", ["print('first')", "print('second', flush=True)"]
    )
    env = {"CANFAR_JLAB_MODE": "reduce", "CANFAR_JLAB_REDUCE_NOTEBOOK": combine.name}
    run = helpers.run_batch(exported.argv, env=env)
    assert run.returncode == 0, run.stderr
    assert printed(run.stdout) == "first\nsecond\n"
    assert report_at(folder / "reduce")["state"] == "completed"
    assert (folder / "reduce" / "executed.ipynb").is_file()
