"""`%%canfar` with issue 17's options: a capped run shows its Waiting replicas in `%canfar ps`,
a retried replica its tries; the flags are the CLI's (canfar_jlab.launch_args)."""

from __future__ import annotations

import re

from magic_support import cell, line, replica_lines

from canfar_jlab.runs import RunStore

FAILS_ONCE = (
    "import os, pathlib\n"
    "marker = pathlib.Path(os.environ['CANFAR_RUN_DIR']) / 'tried'\n"
    "if not marker.exists():\n"
    "    marker.touch()\n"
    "    raise RuntimeError('the first try fails')\n"
    "print('second try')"
)


def test_a_capped_run_shows_waiting_replicas_and_a_retry_its_tries(shell, runs_root):
    shown = cell(
        shell,
        "%%canfar -r 3 --max-running 1 --name capped\n"
        "import os, time\ntime.sleep(1)\nprint('replica', os.environ['REPLICA_ID'])",
    )
    assert shown.success and shown.stderr == ""
    assert "launched run capped: 1 of 3 replica(s) created" in shown.text
    table = line(shell, "ps capped").text
    assert "TRIES" in table
    assert re.search(r"capped-3\s+-\s+Waiting\s+1\b.*waiting in run: \d of 1 running", table)
    followed = line(shell, "logs capped -f")
    assert replica_lines(followed.stdout) == {i: [f"replica {i}"] for i in (1, 2, 3)}
    assert RunStore(runs_root).get("capped").state == "completed"

    shown = cell(shell, f"%%canfar --retries 1 --name retried\n{FAILS_ONCE}")
    assert shown.success
    followed = line(shell, "logs retried -f")
    assert "second try" in followed.stdout
    run = RunStore(runs_root).get("retried")
    assert run.state == "completed" and [a.why for a in run.replica(1).attempts] == ["retry"]
    assert re.search(r"retried\s+\S+\s+Completed\s+2\b", line(shell, "ps retried").text)


def test_a_bad_timeout_is_one_line(shell):
    message = cell(shell, "%%canfar --timeout 5x --name never\nprint(1)").error_line()
    assert "--timeout" in message and "not a duration" in message
