"""The replica's working folder (canfar_jlab/replica_folder.py): what counts as its output."""

from __future__ import annotations

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
