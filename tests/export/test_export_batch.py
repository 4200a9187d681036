"""Exported notebooks run as batch replicas: skip-batch, parameters, failures, exits, paths."""

from __future__ import annotations

import json
import sys
from functools import partial

import pytest
from export.conftest import without_markers
from nbformat import v4

from canfar_jlab import export
from canfar_jlab.export import RUNNER_NAME, ExportError, check_notebook

# These tests pin the script runner: the fallback for images without nbclient or ipykernel.
export_notebook = partial(export.export_notebook, runner="script")


def test_skip_batch_cells_are_left_out(make_notebook, helpers, tmp_path):
    notebook = make_notebook(
        [
            "print('one')",
            helpers.cell("print('only when a person is watching')\nanswer = input()", "skip-batch"),
            "print('three')",
        ]
    )
    exported = export_notebook(notebook, tmp_path / "run")
    assert exported.ok
    assert exported.skipped_cells == [2]
    assert exported.cell_count == 2
    run = helpers.run_batch(exported.argv)
    assert (run.returncode, run.stdout) == (0, "one\nthree\n")


PARAMETER_CELLS = [
    "print('before the parameters')",
    v4.new_markdown_cell("The defaults:"),
    None,  # the parameters cell, filled in by each test
    "print(repr(n), repr(label), repr(ratio), repr(items), repr(options))",
]
DEFAULTS = "n = 1\nlabel = 'default'\nratio: float = 0.5\nitems = []\noptions = {}"


def parameters_notebook(make_notebook, *tags):
    cells = list(PARAMETER_CELLS)
    cells[2] = v4.new_code_cell(DEFAULTS, metadata={"tags": ["parameters", *tags]})
    return make_notebook(cells)


def test_parameters_override_the_tagged_cell(make_notebook, helpers, tmp_path):
    notebook = parameters_notebook(make_notebook)
    overrides = {
        "n": 42,
        "label": 'it\'s a "quoted" label',
        "ratio": 1e-3,
        "items": [1, 2.5, None, True, "x"],
        "options": {"mode": "fast", "levels": [1, 2]},
    }
    exported = export_notebook(notebook, tmp_path / "run", parameters=overrides)
    assert exported.parameters == overrides
    assert exported.cell_count == 3  # the injected cell is not one of the notebook's cells
    run = helpers.run_batch(exported.argv)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        "before the parameters\n"
        + " ".join(repr(overrides[k]) for k in ("n", "label", "ratio", "items", "options"))
        + "\n"
    )
    script = exported.script_path.read_text()
    # papermill's place: right after the parameters cell, so the defaults are overridden
    assert script.index("[canfar-jlab cell 2]") < script.index("[canfar-jlab parameters]")
    assert script.index("[canfar-jlab parameters]") < script.index("[canfar-jlab cell 3]")


def test_defaults_run_when_no_parameters_are_given(make_notebook, helpers, tmp_path):
    exported = export_notebook(parameters_notebook(make_notebook), tmp_path / "run")
    run = helpers.run_batch(exported.argv)
    assert run.stdout.splitlines()[-1] == "1 'default' 0.5 [] {}"


def test_parameters_still_apply_when_the_parameters_cell_is_skipped(
    make_notebook, helpers, tmp_path
):
    notebook = parameters_notebook(make_notebook, "skip-batch")
    exported = export_notebook(
        notebook,
        tmp_path / "run",
        parameters={"n": 2, "label": "b", "ratio": 1.0, "items": [], "options": {}},
    )
    run = helpers.run_batch(exported.argv)
    assert run.stdout.splitlines()[-1] == "2 'b' 1.0 [] {}"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"n_files": 3}, "unknown parameter 'n_files': the parameters cell assigns items, label"),
        ({"n": {1, 2}}, "parameter 'n': a set is not allowed"),
        ({"n": object()}, "parameter 'n': a object is not allowed"),
        ({"ratio": float("nan")}, "parameter 'ratio': nan is not a finite number"),
        ({"options": {1: "a"}}, "parameter 'options': dict keys must be strings"),
        ({"class": 1}, "parameter name 'class' is not a Python identifier"),
        ({"a b": 1}, "parameter name 'a b' is not a Python identifier"),
    ],
)
def test_bad_parameters_are_one_line_errors(make_notebook, tmp_path, parameters, message):
    notebook = parameters_notebook(make_notebook)
    with pytest.raises(ExportError) as raised:
        export_notebook(notebook, tmp_path / "run", parameters=parameters)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(ExportError):
        check_notebook(notebook, parameters=parameters)


def test_parameters_need_a_parameters_cell(make_notebook, tmp_path):
    notebook = make_notebook(["n = 1"])
    with pytest.raises(ExportError, match="no code cell is tagged 'parameters'"):
        export_notebook(notebook, tmp_path / "run", parameters={"n": 2})


def test_a_failing_cell_stops_the_run_with_its_traceback(make_notebook, helpers, tmp_path):
    notebook = make_notebook(
        [
            "print('before')",
            v4.new_markdown_cell("markdown is not counted"),
            "def reduce(x):\n    raise ValueError(f'bad frame {x}')\n\nreduce(7)",
            "print('after')",
        ]
    )
    exported = export_notebook(notebook, tmp_path / "run")
    run = helpers.run_batch(exported.argv)
    assert run.returncode == 1
    assert run.stdout == "before\n"
    assert "ValueError: bad frame 7" in run.stderr
    assert "Cell In[2], line 4" in run.stderr  # the kernel's name for code cell 2
    assert "raise ValueError(f'bad frame {x}')" in run.stderr
    assert run.stderr.rstrip().splitlines()[-1] == (
        "canfar-jlab: stopped at code cell 2 (ValueError: bad frame 7); "
        "the cells after it did not run"
    )
    assert "\x1b[" not in run.stderr  # no colour codes in a log


@pytest.mark.parametrize(
    ("exit_call", "code", "stderr"),
    [("sys.exit(3)", 3, ""), ("sys.exit()", 0, ""), ("sys.exit('no data')", 1, "no data\n")],
)
def test_sys_exit_ends_the_run_with_its_code(
    make_notebook, helpers, tmp_path, exit_call, code, stderr
):
    notebook = make_notebook(["import sys\nprint('first')", exit_call, "print('never')"])
    run = helpers.run_batch(export_notebook(notebook, tmp_path / "run").argv)
    assert (run.returncode, run.stdout, without_markers(run.stderr)) == (code, "first\n", stderr)


def test_runs_in_its_replica_folder_seeing_the_notebook_folder_with_spaces(helpers, tmp_path):
    folder = tmp_path / "my notebooks" / "night 1"
    folder.mkdir(parents=True)
    (folder / "helper_module.py").write_text("GREETING = 'hello from beside the notebook'\n")
    notebook = helpers.write_notebook(
        folder / "Reduce night 1 (v2).ipynb",
        [
            "import os\nprint(os.getcwd() == os.path.join(os.environ['RUN'], 'replicas', '1'))",
            "import helper_module\nprint(helper_module.GREETING)",
            "print(open('helper_module.py').read().strip())",
        ],
        metadata={"kernelspec": {"name": "python3", "language": "python"}},
    )
    exported = export_notebook(notebook, tmp_path / "run")
    assert exported.script_path.name == "Reduce_night_1_v2.py"
    assert exported.argv == [
        sys.executable,
        str(tmp_path / "run" / RUNNER_NAME),
        str(tmp_path / "run" / "Reduce_night_1_v2.py"),
    ]
    assert exported.skaha_cmd == sys.executable
    assert exported.skaha_args.split(" ") == exported.argv[1:]
    run = helpers.run_batch(exported.argv, cwd=tmp_path, env={"RUN": str(tmp_path / "run")})
    assert (run.returncode, run.stdout) == (
        0,
        "True\nhello from beside the notebook\nGREETING = 'hello from beside the notebook'\n",
    )


def test_matplotlib_gui_backends_fall_back_to_agg(make_notebook, helpers, tmp_path):
    notebook = make_notebook(
        [
            "%matplotlib qt\nimport matplotlib.pyplot as plt\nprint(plt.get_backend().lower())",
            "plt.plot([1, 2])\nplt.savefig('figure.png')\nplt.show()",
        ]
    )
    run = helpers.run_batch(export_notebook(notebook, tmp_path / "run").argv)
    assert (run.returncode, run.stdout) == (0, "agg\n"), run.stderr
    assert "%matplotlib qt needs a display; using agg in batch" in run.stderr
    assert (tmp_path / "run" / "replicas" / "1" / "figure.png").stat().st_size > 0


def test_the_runner_also_runs_as_a_module(make_notebook, helpers, tmp_path):
    exported = export_notebook(make_notebook(["21 * 2"]), tmp_path / "run")
    run = helpers.run_batch([sys.executable, "-m", "canfar_jlab.export_runner", exported.argv[2]])
    assert (run.returncode, run.stdout) == (0, "42\n")


def test_the_runner_refuses_other_files(helpers, tmp_path):
    stray = tmp_path / "plain.py"
    stray.write_text("print('hi')\n")
    exported_runner = [sys.executable, "-m", "canfar_jlab.export_runner"]
    run = helpers.run_batch([*exported_runner, str(stray)])
    assert run.returncode == 2
    assert "no canfar-jlab header line" in run.stderr
    assert helpers.run_batch(exported_runner).returncode == 2  # no script given


def test_export_records_the_notebook_checksum(make_notebook, tmp_path):
    import hashlib

    notebook = make_notebook(["print(1)"])
    exported = export_notebook(notebook, tmp_path / "run")
    assert exported.checksum == hashlib.sha256(notebook.read_bytes()).hexdigest()
    header = next(
        line
        for line in exported.script_path.read_text().splitlines()
        if "canfar-jlab-script" in line
    )
    assert json.loads(header.split(": ", 1)[1])["sha256"] == exported.checksum
    # The result is plain data for run.json.
    assert json.loads(exported.model_dump_json())["argv"] == exported.argv


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "is not a readable notebook"),
        (b'{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "not a readable"),
        (b"\xff\xfe", "is not a readable notebook"),
    ],
)
def test_unreadable_notebooks_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=message) as raised:
        export_notebook(path, tmp_path / "run")
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists()


def test_missing_notebook_is_a_one_line_error(tmp_path):
    with pytest.raises(ExportError, match=r"cannot read .*missing\.ipynb: No such file"):
        check_notebook(tmp_path / "missing.ipynb")


def test_the_script_runner_cannot_fall_back_for_other_languages(make_notebook, helpers, tmp_path):
    notebook = make_notebook(["x <- 1"], metadata={"kernelspec": {"name": "ir", "language": "R"}})
    exported = export.export_notebook(notebook, tmp_path / "run")  # a kernel may run it
    assert exported.ok and exported.cell_count == 0
    with pytest.raises(ExportError, match="parameters can only be set in Python notebooks"):
        export_notebook(notebook, tmp_path / "run", parameters={"x": 2})
    run = helpers.run_batch(export_notebook(notebook, tmp_path / "run").argv)
    assert run.returncode == 2
    assert "cannot run this r notebook with the script runner" in run.stderr


@pytest.mark.parametrize(
    ("out_dir", "python", "shown"),
    [
        ("run folder", sys.executable, "a space"),
        ("cost$1", sys.executable, "'$'"),
        ('say"hi', sys.executable, "'\"'"),
        ("run", "/opt/my python/bin/python", "a space"),
        ("run", "python\\3", "'\\\\'"),
    ],
)
def test_paths_skaha_cannot_carry_are_refused(make_notebook, tmp_path, out_dir, python, shown):
    notebook = make_notebook(["print(1)"])
    with pytest.raises(ExportError, match="Skaha splits a replica's command") as raised:
        export_notebook(notebook, tmp_path / out_dir, python=python)
    assert f"contains {shown};" in str(raised.value)
    assert not (tmp_path / out_dir).exists()


def test_several_scripts_from_one_notebook(make_notebook, helpers, tmp_path):
    notebook = make_notebook([helpers.cell("k = 0", "parameters"), "print(k)"])
    runs = [
        export_notebook(notebook, tmp_path / "run", parameters={"k": k}, script_name=f"k{k}.py")
        for k in (1, 2)
    ]
    assert [helpers.run_batch(r.argv).stdout for r in runs] == ["1\n", "2\n"]
    with pytest.raises(ExportError, match="script name"):
        export_notebook(notebook, tmp_path / "run", script_name="../escape.py")
