"""The replica's working folder (canfar_jlab/replica_folder.py): what counts as its output."""

from __future__ import annotations

import os
import shutil

from canfar_jlab.export import export_notebook
from canfar_jlab.replica_folder import prepare


def test_a_second_attempt_lists_only_what_it_wrote(tmp_path):
    notebook_folder = tmp_path / "project"
    notebook_folder.mkdir()
    (notebook_folder / "analysis.ipynb").write_text("{}")
    (notebook_folder / "table.csv").write_text("a,b\n1,2\n")
    work = tmp_path / "run" / "replicas" / "2"

    first = prepare(work, notebook_folder)
    (work / "result.txt").write_text("attempt 1")
    (work / "table.csv").write_text("a,b\n3,4\n")  # the replica rewrote its own copy
    assert first.new_files() == ["result.txt", "table.csv"]

    second = prepare(work, notebook_folder)  # a rerun of the same replica, same folder
    (work / "retry.txt").write_text("attempt 2")
    # The untouched copy of the notebook is not an output; what the replicas wrote still is.
    assert second.new_files() == ["result.txt", "retry.txt", "table.csv"]


def test_a_runs_root_beside_the_notebook_is_not_mirrored(make_notebook, helpers, tmp_path):
    """`make lab` keeps runs under the Jupyter root, beside the notebooks: a replica's folder
    mirrors the notebook's folder and its parent, but never the runs root (through it the
    replica would see every run, its own included)."""
    notebook = make_notebook(
        ["import os\nprint(sorted(os.listdir('.')), sorted(os.listdir('..')))"], name="nb.ipynb"
    )
    folder = notebook.parent  # <tmp>/notebooks
    (folder / "table.csv").write_text("a,b\n")
    (tmp_path / "images").mkdir()
    for runs_root in (folder / "canfar-runs", tmp_path / "canfar-runs"):  # beside it, above it
        exported = export_notebook(notebook, runs_root / "r1")
        run = helpers.run_batch(exported.argv)
        assert run.returncode == 0, run.stderr
        work = runs_root / "r1" / "replicas" / "1"
        assert (work / "table.csv").is_file() and (work.parent / "images").is_dir()
        assert not os.path.lexists(work / "canfar-runs")
        assert not os.path.lexists(work.parent / "canfar-runs")
        assert "'canfar-runs'" not in run.stdout, run.stdout
        shutil.rmtree(runs_root)
