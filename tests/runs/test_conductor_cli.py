"""`canfar-jlab run` with issue 17's flags: bad values are one-line errors that create nothing,
and `ps` shows a capped run's Waiting replicas and their tries."""

from __future__ import annotations

import re
from pathlib import Path

from fixtures_engine import wait_for
from runs_support import write_notebook

from canfar_jlab.runs import RunStore
from canfar_jlab.runs.conductor import duration_text, parse_duration


def test_durations_read_as_the_flag_documents():
    assert [parse_duration(t) for t in ("30s", "90m", "2h", "1d", "45", "1.5h")] == [
        30,
        5400,
        7200,
        86400,
        45,
        5400,
    ]
    assert [duration_text(s) for s in (3, 30, 5400, 7200, 86400, 61)] == [
        "3s",
        "30s",
        "90m",
        "2h",
        "1d",
        "61s",
    ]


def test_bad_conductor_flags_are_one_line_errors(cli, cli_here, tmp_path):
    notebook = write_notebook(tmp_path / "a.ipynb", ["print(1)"])
    (tmp_path / "a.txt").write_text("not a notebook")
    for args, message in (
        (("--retries", "11"), "canfar-jlab: retries: Input should be less than or equal to 10"),
        (("--max-running", "0"), "canfar-jlab: max_running: Input should be greater"),
        (("--reduce", str(tmp_path / "none.ipynb")), "canfar-jlab: no notebook at"),
        (("--reduce", str(tmp_path / "a.txt")), "canfar-jlab: --reduce: a.txt is not a notebook"),
    ):
        code, _, err = cli_here("run", str(notebook), *args)
        assert code == 2, (args, err)
        assert err.startswith(message) and err.count("\n") == 1, err
    done = cli("run", str(notebook), "--timeout", "5x")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        "argument --timeout: '5x' is not a duration (examples: 30s, 90m, 2h, 1d, 3600)"
    )
    assert not (tmp_path / "runs").exists()


def test_ps_shows_a_capped_runs_waiting_replicas_and_their_tries(cli_here, cli_env, tmp_path):
    naps = "import os, time\ntime.sleep(2)\nprint('replica', os.environ['REPLICA_ID'])"
    notebook = write_notebook(tmp_path / "queued.ipynb", [naps])
    code, _, err = cli_here("run", str(notebook), "-r", "3", "--max-running", "1")
    assert code == 0, err
    code, out, _ = cli_here("ps", "queued")
    assert code == 0
    assert re.search(r"REPLICA\s+NAME\s+SESSION\s+STATUS\s+TRIES", out)
    assert re.search(r"queued-3\s+-\s+Waiting\s+1\s.*waiting in run: \d of 1 running", out)
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    # Nobody follows: the conductor process the launch started runs the rest.
    wait_for(lambda: store.get("queued").counts == {"Completed": 3}, 120, "the capped run")
    log = Path(store.get("queued").folder) / "logs" / "conductor.log"
    wait_for(lambda: "conductor done" in log.read_text(), 30, "the conductor to exit")
