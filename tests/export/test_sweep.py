"""Parameter sweeps: from -p lists or a rows file, into the preview, run.json and sweep.json."""

from __future__ import annotations

import argparse
import json

import pytest

from canfar_jlab.export import ExportError, export_notebook
from canfar_jlab.launch_args import add_launch_options, launch_request
from canfar_jlab.runs import LaunchRefused, RunStore, preview
from canfar_jlab.sweep import SweepError, grid, read_rows


def request_from(*argv: str):
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    add_launch_options(parser)
    args = parser.parse_args(list(argv))
    return launch_request(args.notebook, args)


@pytest.fixture
def swept_notebook(make_notebook, helpers):
    return make_notebook(
        [
            helpers.cell("sigma = 1\nlabel = 'x'\nmode = 'a'", "parameters"),
            "print(label, sigma, mode)",
        ],
        name="swept.ipynb",
    )


def test_comma_lists_make_a_sweep_and_other_values_stay_fixed():
    request = request_from("nb.ipynb", "-p", "sigma=3,4,5", "-p", "label=run")
    assert request.sweep is True
    assert request.parameters == {"sigma": [3, 4, 5], "label": "run"}
    assert "replicas" not in request.model_fields_set  # the rows decide
    plain = request_from("nb.ipynb", "-p", "n=[1,2]", "-p", 'label="a,b"', "-r", "2")
    assert plain.sweep is False and plain.parameters == {"n": [1, 2], "label": "a,b"}
    assert plain.replicas == 2


def test_several_lists_make_every_combination_first_varying_slowest():
    fixed, rows = grid({"a": [1, 2], "b": ["x", "y"], "c": True})
    assert fixed == {"c": True}
    assert rows == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_csv_and_json_rows(tmp_path):
    (tmp_path / "rows.csv").write_text('sigma,label\n3,first\n4.5,"with, comma"\ntrue,x\n')
    assert read_rows(tmp_path / "rows.csv") == [
        {"sigma": 3, "label": "first"},
        {"sigma": 4.5, "label": "with, comma"},
        {"sigma": True, "label": "x"},
    ]
    (tmp_path / "rows.json").write_text('[{"sigma": 1}, {"sigma": 2}]')
    assert read_rows(tmp_path / "rows.json") == [{"sigma": 1}, {"sigma": 2}]
    (tmp_path / "bad.json").write_text('{"sigma": 1}')
    (tmp_path / "short.csv").write_text("a,b\n1\n")
    (tmp_path / "rows.txt").write_text("")
    for name, message in [
        ("bad.json", "must hold a list of objects"),
        ("short.csv", "line 2: not as many values as names"),
        ("rows.txt", "a sweep file is .csv or .json"),
        ("missing.csv", "cannot read the sweep file"),
    ]:
        with pytest.raises(SweepError, match=message):
            read_rows(tmp_path / name)


async def test_the_preview_shows_each_replicas_values(swept_notebook, tmp_path):
    request = request_from(str(swept_notebook), "-p", "sigma=3,4", "-p", "mode=b,c")
    shown = await preview(request, RunStore(tmp_path / "runs"))
    assert len(shown.replicas) == 4
    assert shown.sweep == [
        {"sigma": 3, "mode": "b"},
        {"sigma": 3, "mode": "c"},
        {"sigma": 4, "mode": "b"},
        {"sigma": 4, "mode": "c"},
    ]
    assert [r.parameters for r in shown.replicas] == shown.sweep
    assert shown.problems == []


async def test_a_rows_file_sets_the_replica_count_unless_given(swept_notebook, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("sigma\n1\n2\n3\n")
    store = RunStore(tmp_path / "runs")
    shown = await preview(request_from(str(swept_notebook), "--sweep", str(rows)), store)
    assert [r.parameters for r in shown.replicas] == [{"sigma": 1}, {"sigma": 2}, {"sigma": 3}]
    fewer = await preview(request_from(str(swept_notebook), "--sweep", str(rows), "-r", "2"), store)
    assert len(fewer.replicas) == 2
    for argv, message in [
        (["--sweep", str(rows), "-r", "4"], "4 replicas asked for, but the sweep has 3 rows"),
        (["--sweep", str(rows), "-p", "sigma=9"], "sigma set both by -p and by the sweep rows"),
        (["-p", "nope=1,2"], "unknown parameter 'nope'"),
    ]:
        with pytest.raises(LaunchRefused, match=message):
            await preview(request_from(str(swept_notebook), *argv), store)


def test_export_writes_sweep_json_and_each_replica_takes_its_row(swept_notebook, helpers, tmp_path):
    rows = [{"sigma": 10}, {"sigma": 20, "mode": "z"}]
    for runner in ("nbclient", "script"):
        folder = tmp_path / runner
        exported = export_notebook(
            swept_notebook, folder, parameters={"label": "fixed"}, sweep=rows, runner=runner
        )
        assert json.loads((folder / "sweep.json").read_text()) == rows
        outputs = [
            helpers.run_batch(exported.argv, env={"REPLICA_ID": str(i), "REPLICA_COUNT": "2"})
            for i in (1, 2)
        ]
        printed = [
            [line for line in run.stdout.splitlines() if not line.startswith("## ")]
            for run in outputs
        ]
        assert printed == [["fixed 10 a"], ["fixed 20 z"]], [r.stderr for r in outputs]
    with pytest.raises(ExportError, match="sweep row 2: unknown parameter 'nope'"):
        export_notebook(swept_notebook, tmp_path / "bad", sweep=[{"sigma": 1}, {"nope": 2}])


def test_a_bad_sweep_file_is_a_one_line_option_error(tmp_path):
    from canfar_jlab.launch_args import LaunchArgsError

    (tmp_path / "rows.csv").write_text("sigma,label\n1\n")
    with pytest.raises(LaunchArgsError, match=r"^--sweep: rows.csv, line 2: not as many values"):
        request_from("nb.ipynb", "--sweep", str(tmp_path / "rows.csv"))
