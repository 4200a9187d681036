"""`canfar-jlab run | rerun | ps | logs | delete` as real processes against the test engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runs_support import FAILS_ONCE, without_markers, write_notebook

REPO = Path(__file__).resolve().parents[2]
_CELL_HEADER = re.compile(r"^\[\d+\] ## canfar-jlab cell \d+/\d+")


def test_run_follow_then_rerun_failed_then_ps_logs_delete(cli, cli_here, tmp_path):
    notebook = write_notebook(tmp_path / "fails_once.ipynb", [FAILS_ONCE])
    done = cli("run", str(notebook), "-r", "3", "--follow")
    assert done.returncode == 1, done.stderr
    out = done.stdout.splitlines()
    for index in (1, 2, 3):
        assert f"[{index}] replica {index} of 3" in out
    assert "[2] RuntimeError: replica 2 fails the first time" in out
    assert "[1] finished" in out and "[2] finished" not in out
    assert "run fails-once: failed (2/3 Completed, 1 Failed)" in out
    failed_row = r"^2\s+fails-once-2\s+\w+\s+Failed\s+.*canfar-jlab: stopped at code cell 1"
    assert re.search(failed_row, done.stdout, re.M)
    err = done.stderr.splitlines()
    assert err[0].startswith("run fails-once: 3 replica(s) of fails_once.ipynb on the local engine")
    assert any(re.fullmatch(r"\[fails-once\] \d/3 (Pending|Running).*\(\d+ s\)", e) for e in err)
    assert err[-1].startswith("[fails-once] 2/3 Completed, 1 Failed")

    again = cli("rerun", "fails-once", "--failed", "--follow")
    assert again.returncode == 0, again.stderr
    assert without_markers(again.stdout).splitlines()[:2] == ["[2] replica 2 of 3", "[2] finished"]
    assert "[1]" not in again.stdout and "[3]" not in again.stdout
    assert "run fails-once: completed (3/3 Completed)" in again.stdout
    assert again.stderr.startswith(
        "run fails-once: running replica(s) 2 again (the launch snapshot)\n"
    )
    assert cli_here("rerun", "fails-once", "--failed") == (
        0,
        "",
        "run fails-once has no Failed or NotCreated replica to run again\n",
    )

    code, listed, _ = cli_here("ps", "--all")
    assert code == 0
    assert listed.startswith("RUN fails-once  completed  3/3 Completed  created ")
    sessions = json.loads(cli_here("ps", "--all", "--json")[1])
    owned = sorted((s["replica"], s["status"]) for s in sessions if s.get("run") == "fails-once")
    # replica 2's first session (Failed) still belongs to the run, as an earlier attempt
    assert owned == [(1, "Completed"), (2, "Completed"), (2, "Failed"), (3, "Completed")]
    runs = json.loads(cli_here("ps", "--all", "--json", "--runs")[1])
    assert [(r["name"], r["state"]) for r in runs] == [("fails-once", "completed")]

    code, logs, _ = cli_here("logs", "fails-once")
    assert code == 0
    assert without_markers(logs).splitlines() == [
        "[1] replica 1 of 3",
        "[1] finished",
        "[2] replica 2 of 3",
        "[2] finished",
        "[3] replica 3 of 3",
        "[3] finished",
    ]
    code, deleted, _ = cli_here("delete", "fails-once")
    assert code == 0
    assert deleted.startswith("deleted run fails-once: sessions ")
    assert len(deleted.split(":")[1].split(",")) == 4  # three replicas and the retry
    assert (tmp_path / "runs" / "fails-once" / "run.json").is_file()


def test_refused_and_bad_runs_are_one_line_errors_with_exit_codes(cli, cli_here, tmp_path):
    asks = write_notebook(tmp_path / "asks.ipynb", ["x = 1", "answer = input()"])
    refused = cli("run", str(asks), "-r", "2")
    assert refused.returncode == 2
    assert refused.stderr == (
        "canfar-jlab: cannot run asks.ipynb as batch: code cell 2, line 1: input() waits for "
        "someone to type, and a batch replica has no keyboard\n"
    )
    assert not (tmp_path / "runs").exists()
    for args, code, message in (
        (("run", str(asks), "-e", "NOEQUALS"), 2, "canfar-jlab: -e 'NOEQUALS': expected K=V"),
        (("run", str(asks), "-r", "300"), 2, "canfar-jlab: replicas: Input should be less"),
        (("run", str(asks), "-p", "n=2"), 2, "canfar-jlab: parameters given but no code cell"),
        (("rerun", "no-such-run", "--failed"), 4, "canfar-jlab: no run named 'no-such-run'"),
        (("logs", "no-such-run"), 4, "canfar-jlab: "),
    ):
        done, _, err = cli_here(*args)
        assert done == code, (args, err)
        assert err.startswith(message) and err.count("\n") == 1, err


NEEDS_PEOPLE = [
    "x = input()",
    "import getpass\npassword = getpass.getpass()",
    "import tkinter",
    "from ipywidgets import interact\ninteract(lambda n: n, n=2)",
]


def test_a_refusal_lists_every_problem_in_order_and_json_gives_them_all(cli_here, tmp_path):
    notebook = write_notebook(tmp_path / "people.ipynb", NEEDS_PEOPLE)
    code, out, err = cli_here("run", str(notebook), "-r", "2")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "canfar-jlab: cannot run people.ipynb as batch (4 problems):",
        "  code cell 1, line 1: input() waits for someone to type, and a batch replica has no "
        "keyboard",
        "  code cell 2, line 2: getpass() waits for someone to type, and a batch replica has no "
        "keyboard; pass secrets in an environment variable",
        "  code cell 3, line 1: tkinter opens desktop windows, and a batch replica has no display",
        "  code cell 4, line 2: warning: ipywidgets interact() runs once with its default values "
        "in batch (nobody moves the widgets); set the values in code or as run parameters to "
        "vary them",
    ]
    code, out, err = cli_here("run", str(notebook), "-r", "2", "--json")
    assert code == 2
    problems = json.loads(out)
    assert [(p["cell"], p["line"], p["severity"]) for p in problems] == [
        (1, 1, "error"),
        (2, 2, "error"),
        (3, 1, "error"),
        (4, 2, "warning"),
    ]
    assert "getpass()" in problems[1]["message"]
    assert err.startswith("canfar-jlab: cannot run people.ipynb as batch (4 problems):\n")
    assert not (tmp_path / "runs").exists()


def test_a_warning_is_shown_and_the_end_names_each_replicas_notebook_and_files(cli_here, tmp_path):
    notebook = write_notebook(
        tmp_path / "writes.ipynb",
        [
            # flagged (a warning) but not run: widgets' kernel messages are not this test's
            "from ipywidgets import interact\nif False:\n    interact(lambda n: n, n=2)",
            "import os\nopen('result.txt', 'w').write(os.environ['REPLICA_ID'])",
        ],
    )
    code, out, err = cli_here("run", str(notebook), "-r", "2", "--follow", "--interval", "0.2")
    assert code == 0, err
    assert err.splitlines()[0].startswith("code cell 1, line 3: warning: ipywidgets interact()")
    for index in (1, 2):
        line = (
            f"replica {index}: executed replicas/{index}/executed.ipynb; "
            f"files replicas/{index}/result.txt"
        )
        assert line in out.splitlines(), out
    code, shown, _ = cli_here("ps", "writes")
    assert code == 0
    assert "  replica 2: executed replicas/2/executed.ipynb; files replicas/2/result.txt" in shown
    run = json.loads(cli_here("ps", "writes", "--json")[1])
    assert run["warnings"][0].startswith("code cell 1, line 3: warning: ipywidgets interact()")


def test_the_cli_does_not_build_jsonschemas_iri_grammars(tmp_path):
    """`canfar-jlab run` imports nbformat, hence jsonschema, which imports rfc3987_syntax when
    installed and compiles its grammars for seconds; the CLI blocks that optional import."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from canfar_jlab.cli import main\n"
        "main(['config', 'get', 'runs-root'])\n"
        "import canfar_jlab.export, jsonschema\n"
        "print('loaded' if sys.modules.get('rfc3987_syntax') else 'blocked')\n"
    )
    env = {**__import__("os").environ, "CANFAR_JLAB_CONFIG": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "blocked"
