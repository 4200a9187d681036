"""Cells that need a person at a screen are found before launch, with their code-cell number."""

from __future__ import annotations

import pytest
from nbformat import v4

from canfar_jlab.export import ExportProblem, check_notebook, export_notebook

# (source, line of the finding within the cell, words the message must contain)
INTERACTIVE_CELLS = [
    ("name = input('Your name? ')", 1, "input()"),
    ("import getpass\n\npassword = getpass.getpass()", 3, "getpass()"),
    ("from getpass import getpass as ask\nask('token: ')", 2, "getpass()"),
    ("import sys\nline = sys.stdin.readline()", 2, "sys.stdin"),
    ("breakpoint()", 1, "debugger"),
    ("import pdb; pdb.set_trace()", 1, "debugger"),
    ("%debug", 1, "debugger"),
    ("%pdb on", 1, "debugger"),
    ("%gui qt", 1, "%gui"),
    ("import tkinter as tk\nroot = tk.Tk()", 1, "tkinter"),
    ("from PyQt5.QtWidgets import QApplication", 1, "PyQt5"),
    ("from PySide6 import QtWidgets", 1, "PySide6"),
    ("import matplotlib\nmatplotlib.use('TkAgg')", 2, "matplotlib.use('TkAgg')"),
    ("from ipywidgets import interact\n\n@interact(x=10)\ndef f(x):\n    return x", 3, "interact"),
    ("import ipywidgets as w\nw.interactive(print, x=1)", 2, "interactive"),
    ("from ipywidgets import *\n@interact\ndef g(x=1):\n    pass", 2, "interact"),
    ("%%time\ntotal = 0\nanswer = input()", 3, "input()"),
    ("%time input()", 1, "input()"),
    ("x = (1,\n", 1, "syntax error"),
    # The four the first version missed:
    ("raw_input = input\nname = raw_input('name? ')", 2, "input()"),
    ("import builtins\nbuiltins.input('go?')", 2, "input()"),
    ("from IPython.core.debugger import set_trace\nset_trace()", 2, "set_trace()"),
    ("import matplotlib.pyplot as plt\nplt.switch_backend('TkAgg')", 2, "switch_backend"),
]
WIDGET_CELLS = {"interact", "interactive"}  # the kernel runs them: warnings, not refusals


@pytest.fixture
def interactive_notebook(make_notebook):
    cells = [v4.new_markdown_cell("# Not counted: only code cells are numbered")]
    for source, _, _ in INTERACTIVE_CELLS:
        cells.append(v4.new_code_cell(source))
        cells.append(v4.new_markdown_cell("between"))
    return make_notebook(cells, name="interactive.ipynb")


def test_every_interactive_cell_is_reported_with_its_code_cell_number(interactive_notebook):
    problems = check_notebook(interactive_notebook)
    found = {(problem.cell, problem.line): problem.message for problem in problems}
    for number, (source, line, words) in enumerate(INTERACTIVE_CELLS, start=1):
        assert (number, line) in found, f"code cell {number} ({source!r}) not reported"
        assert words in found[(number, line)]
    assert len(problems) == len(INTERACTIVE_CELLS)
    assert all("\n" not in problem.message for problem in problems)
    warnings = {
        found[(n, line)]
        for n, (_, line, words) in enumerate(INTERACTIVE_CELLS, 1)
        if words in WIDGET_CELLS
    }
    assert {p.message for p in problems if p.severity == "warning"} == warnings
    assert all("runs once with its default values" in message for message in warnings)
    assert str(problems[0]) == (
        "code cell 1, line 1: input() waits for someone to type, "
        "and a batch replica has no keyboard"
    )


def test_problems_carry_the_cell_id_for_the_ui(make_notebook):
    code = v4.new_code_cell("input()")
    notebook = make_notebook([code])
    (problem,) = check_notebook(notebook)
    assert problem == ExportProblem(cell=1, line=1, message=problem.message, cell_id=code.id)


@pytest.mark.parametrize(
    "source",
    [
        "%matplotlib qt\nimport matplotlib.pyplot as plt",  # mapped to agg at run time
        "%matplotlib inline",
        "import matplotlib\nmatplotlib.use('Agg')",
        "def input(prompt=''):\n    return 'scripted'\n\nanswer = input()",  # the user's own input
        "text = 'input()'\n# input() in a comment",
        "import ipywidgets as w\nslider = w.IntSlider()",
        "!echo input",
        "import asyncio\nawait asyncio.sleep(0)",
        "%%writefile tool.py\nx = input()",  # written, not run
    ],
)
def test_batch_safe_cells_are_not_reported(make_notebook, source):
    assert check_notebook(make_notebook([source])) == []


def test_skipped_cells_are_not_checked_but_keep_their_number(make_notebook):
    notebook = make_notebook(
        [
            v4.new_code_cell("x = input()", metadata={"tags": ["skip-batch"]}),
            "y = input()",
        ]
    )
    (problem,) = check_notebook(notebook)
    assert (problem.cell, problem.line) == (2, 1)


def test_a_line_that_looks_like_a_cell_marker_is_reported(make_notebook):
    (problem,) = check_notebook(make_notebook(["x = 1\n# %% [canfar-jlab cell 9]\ny = 2"]))
    assert (problem.cell, problem.line) == (1, 2)
    assert "reserved" in problem.message


def test_a_notebook_with_problems_is_refused_before_its_first_cell_runs(
    make_notebook, helpers, tmp_path
):
    marker = tmp_path / "first-cell-ran"
    notebook = make_notebook(
        [f"open({str(marker)!r}, 'w').close()\nprint('started')", "# a comment", "name = input()"]
    )
    exported = export_notebook(notebook, tmp_path / "run")
    assert not exported.ok
    assert [(p.cell, p.line) for p in exported.problems] == [(3, 1)]
    run = helpers.run_batch(exported.argv)  # launched anyway: the runner refuses too
    assert run.returncode == 2
    assert run.stdout == ""
    assert "code cell 3, line 1: input()" in run.stderr
    assert not marker.exists()
