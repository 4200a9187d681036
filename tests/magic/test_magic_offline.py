"""The magic's parts that need no session service: help, parsing, one-line errors, views,
the kernel's notebook, what `%%canfar --setup` takes from history, and the private loop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import nbformat
import pytest
from fixtures_engine import wait_for
from magic_support import cell, line

from canfar_jlab.magic.cell import current_notebook, definitions, write_cell_notebook
from canfar_jlab.magic.loop import BackgroundLoop, Interrupted
from canfar_jlab.magic.options import UsageError
from canfar_jlab.magic.views import Note, Report, Table


def test_load_ext_registers_the_line_and_cell_magic(shell):
    assert shell.find_line_magic("canfar") is not None
    assert shell.find_cell_magic("canfar") is not None


def test_help_says_what_a_canfar_cell_takes_along(shell):
    # What `%canfar?` shows: the inspector's text for the magic (no pager needed).
    info = shell.object_inspect_mime("%canfar")["text/plain"]
    for needed in ("%%canfar", "--setup", "working directory", "batch", "logs", "rerun"):
        assert needed in info
    shown = line(shell, "")
    assert "%canfar batch" in shown.stdout and shown.stderr == ""
    shown = line(shell, "logs -h")
    assert "--follow" in shown.stdout and shown.stderr == ""
    shown = line(shell, "run -h")
    assert "-- CMD ARGS" in shown.stdout and shown.stderr == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate", "unknown verb 'frobnicate'"),
        ("ps --bogus", "unrecognized arguments: --bogus"),
        ("run -r 2 printenv", "put the command after --"),
        ("run -r 2 --", "no command after --"),
        ("batch nb.ipynb --cores many", "'many' is not a whole number"),
        ("batch nb.ipynb -e NOEQUALS", "expected K=V"),
        ("logs 'unclosed", "cannot read the line"),
        ("rerun", "the following arguments are required: RUN"),
    ],
)
def test_bad_lines_get_one_line_errors(shell, text, expected):
    shown = line(shell, text)
    assert expected in shown.error_line()
    assert shown.stdout == ""


def test_an_empty_canfar_cell_is_refused(shell):
    shown = cell(shell, "%%canfar -r 2\n\n")
    assert "the cell is empty" in shown.error_line()
    assert shown.success


def test_inside_a_replica_the_magic_does_nothing(shell, monkeypatch):
    # A notebook run as a batch replica must not launch runs (N replicas would each launch).
    monkeypatch.setenv("CANFAR_RUN_NAME", "some-run")
    shown = line(shell, "batch other.ipynb -r 100")
    assert "skipped inside a batch replica" in shown.stdout and shown.stderr == ""
    shown = cell(shell, "%%canfar -r 3\nprint('never here')")
    assert "skipped inside a batch replica" in shown.stdout
    assert "never here" not in shown.stdout


def test_batch_without_a_notebook_asks_for_its_path(shell, monkeypatch):
    assert not {"__session__", "__vsc_ipynb_file__"} & set(shell.user_ns)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # as in a plain terminal IPython
    shown = line(shell, "batch -r 2")
    assert "pass its path: %canfar batch PATH.ipynb" in shown.error_line()


def test_the_kernels_notebook_is_found_as_kernels_name_it(tmp_path):
    notebook = tmp_path / "sub" / "analysis.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    # VS Code: absolute path in the namespace.
    assert current_notebook({"__vsc_ipynb_file__": str(notebook)}, {}, tmp_path) == notebook
    # jupyter_server: a path relative to its root; the kernel runs in the notebook's folder.
    assert current_notebook({"__session__": "sub/analysis.ipynb"}, {}, notebook.parent) == notebook
    assert current_notebook({}, {"JPY_SESSION_NAME": "sub/analysis.ipynb"}, tmp_path) == notebook
    with pytest.raises(UsageError, match="not on disk"):
        current_notebook({"__session__": "gone.ipynb"}, {}, tmp_path)
    with pytest.raises(UsageError, match="cannot tell which notebook"):
        current_notebook({"__session__": "console-1"}, {}, tmp_path)


def test_setup_takes_imports_definitions_and_literals_only():
    history = [
        "%load_ext canfar_jlab",
        "import numpy as np\nfrom pathlib import Path\ndata = np.load('big.npy')",
        "N = 4\nNAMES = ['a', 'b']\nlimits: dict = {'lo': 1}\nprint(N)",
        "@decorate\ndef measure(x):\n    return x * N\n\nresult = measure(data)",
        "class Star:\n    pass\n%time slow()",
        "%%canfar -r 3\nimport os\nprint(os.environ['REPLICA_ID'])",
        "x = %canfar ps",
        "def broken(:",
        "!ls\nfiles = !ls",
    ]
    kept = definitions(history)
    assert kept.splitlines() == [
        "import numpy as np",
        "from pathlib import Path",
        "N = 4",
        "NAMES = ['a', 'b']",
        "limits: dict = {'lo': 1}",
        "@decorate",
        "def measure(x):",
        "    return x * N",
        "class Star:",
        "    pass",
    ]


def test_a_cell_notebook_runs_in_the_kernels_folder(tmp_path):
    written = write_cell_notebook(
        "print(N)", cwd=tmp_path / "my folder", setup="N = 1", stem="nb-cell", home=tmp_path
    )
    notebook = nbformat.read(written.path, as_version=4)
    sources = [c.source for c in notebook.cells]
    assert written.path.name == "nb-cell.ipynb"
    assert repr(str(tmp_path / "my folder")) in sources[0] and "chdir" in sources[0]
    assert sources[1:] == ["N = 1", "print(N)"]
    assert (written.setup_number, written.cell_number) == (2, 3)


def test_tables_escape_what_they_show():
    table = Table(
        ("NAME", "ERROR"), [("<b>x</b>", "a & b <script>alert(1)</script>")], title="T<1>"
    )
    html = table._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "T&lt;1&gt;" in html
    assert "&amp;" in html
    assert repr(table).splitlines() == [
        "T<1>",
        "NAME      ERROR",
        "<b>x</b>  a & b <script>alert(1)</script>",
    ]
    report = Report([Note("<i>note</i>"), Table(("A",), [], empty="nothing")])
    assert "&lt;i&gt;note&lt;/i&gt;" in report._repr_html_()
    assert repr(report) == "<i>note</i>\n\nnothing"


def test_an_interrupt_cancels_the_work_and_waits_for_its_cleanup():
    # Jupyter's "interrupt kernel" sends SIGINT to the kernel; Python raises KeyboardInterrupt
    # in the main thread, which is where the magic waits. Send it the same way.
    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    loop = BackgroundLoop()
    shown: list[int] = []
    cleaned = threading.Event()

    async def endless(emit):
        try:
            for count in range(10**6):
                emit(count)
                await asyncio.sleep(0.01)
        finally:
            await asyncio.sleep(0.05)  # cleanup that itself awaits, like closing a client
            cleaned.set()

    def interrupt_after_output() -> None:
        try:
            wait_for(lambda: len(shown) >= 3, timeout=30, what="output")
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    helper = threading.Thread(target=interrupt_after_output)
    helper.start()
    try:
        with pytest.raises(Interrupted):
            loop.call(endless, shown.append)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped")
    helper.join()
    assert cleaned.is_set() and len(shown) >= 3

    async def answer(emit):
        emit("x")
        return 42

    assert loop.call(answer, shown.append) == 42  # the loop still serves after an interrupt
    loop.close()


def test_uncancellable_work_finishes_before_the_interrupt_is_reported():
    # Creating sessions is never cancelled half-way: the interrupt is noted, the work ends,
    # then the caller learns of the interrupt with the work's result.
    loop = BackgroundLoop()
    shown: list[str] = []
    release = threading.Event()

    async def launch(emit):
        emit("creating")
        await asyncio.to_thread(release.wait, 30)
        return "launched"

    def interrupt_then_release() -> None:
        try:  # once the caller shows output, it is waiting on the work
            wait_for(lambda: "creating" in shown, timeout=30, what="the first output")
        finally:
            os.kill(os.getpid(), signal.SIGINT)
        try:
            wait_for(lambda: "finishing" in shown, timeout=30, what="the finishing note")
        finally:
            release.set()

    helper = threading.Thread(target=interrupt_then_release)
    helper.start()
    try:
        with pytest.raises(Interrupted) as stopped:
            loop.call(launch, shown.append, cancellable=False, finishing_note="finishing")
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped")
    helper.join()
    assert stopped.value.result == "launched"
    loop.close()


def test_cell_magic_parses_its_options(shell):
    shown = cell(shell, "%%canfar -r two\nprint(1)")
    assert "'two' is not a whole number" in shown.error_line()


def test_a_credential_problem_is_one_line_without_the_token(shell, monkeypatch):
    monkeypatch.setenv("CANFAR_TOKEN", "secret-token-value")
    monkeypatch.delenv("CANFAR_URL", raising=False)
    shown = line(shell, "ps")
    assert "CANFAR_TOKEN is set but CANFAR_URL is not" in shown.error_line()
    assert "secret-token-value" not in shown.stdout + shown.stderr
