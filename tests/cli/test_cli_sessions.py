"""`canfar-jlab ps | logs | images | stats | delete`, run as a real process against the fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from client_support import TEST_TOKEN
from fake_skaha import Status

REPO = Path(__file__).resolve().parents[2]


def test_ps_shows_active_sessions_and_all_with_json(cli_fake, fake):
    running = fake.add_session("job-1", cpuCoresInUse="0.5", ramInUse="1.25")
    done = fake.add_session("job-2", status="Completed")
    table = cli_fake("ps")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "STATUS", "TYPE"]
    assert len(rows) == 1 and rows[0].split()[:3] == [running, "job-1", "Running"]
    assert "0.5" in rows[0] and "1.25" in rows[0]
    listed = json.loads(cli_fake("ps", "--all", "--json").stdout)
    assert {s["id"]: s["status"] for s in listed} == {running: "Running", done: "Completed"}
    assert listed[0]["connectURL"] == ""  # Skaha's own field names


def test_logs_once_and_followed_to_the_end(cli_fake, fake):
    sid = fake.add_session("talker")
    fake.append_log(sid, "first\n")

    def finish(session_id: str, count: int) -> None:
        if count == 2:
            fake.append_log(session_id, "second\nthird")
            fake.set_status(session_id, "Completed")

    once = cli_fake("logs", sid)
    assert (once.returncode, once.stdout) == (0, "first\n")
    fake.on_log_read = finish
    followed = cli_fake("logs", "-f", sid, "--interval", "0.05")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "first\nsecond\nthird"


def test_images_stats_and_delete(cli_fake, fake):
    images = cli_fake("images")
    assert images.returncode == 0
    assert images.stdout.splitlines()[2].split() == ["images.canfar.net/skaha/base:1", "headless"]
    stats = cli_fake("stats")
    assert stats.returncode == 0
    assert stats.stdout.splitlines()[:2] == [
        "cores:    12 allocated of 96 capacity (84 free at most)",
        "ram (GB): 48.5 allocated of 512 capacity (463.5 free at most)",
    ]
    assert json.loads(cli_fake("stats", "--json").stdout)["cores"]["cpuCoresAvailable"] == 96
    sid = fake.add_session("doomed")
    deleted = cli_fake("delete", sid, "abcdefgh")
    assert deleted.stdout.splitlines() == [f"deleted {sid}"]
    # Skaha answers a delete of an unknown id with 200; the CLI says nothing matched (issue 11).
    assert deleted.returncode == 4
    assert deleted.stderr.startswith("canfar-jlab: no run named 'abcdefgh', no replica")
    assert sid not in fake.sessions


@pytest.mark.parametrize(
    ("args", "token", "code", "message"),
    [
        (
            ("ps",),
            "tok-wrong",
            3,
            "canfar-jlab: 127.0.0.1 refused the credential from the CANFAR_TOKEN environment "
            "variable (HTTP 401: invalid or expired token); set a fresh CANFAR_TOKEN",
        ),
        (
            ("logs", "abcdefgh"),
            TEST_TOKEN,
            4,
            # one clear message when nothing matches, never "HTTP 404" (issue 11)
            "canfar-jlab: no run named 'abcdefgh', no replica of that name and no session "
            "with that id (runs in ",
        ),
        (("logs", "../etc"), TEST_TOKEN, 4, "canfar-jlab: no run named '../etc', no replica"),
    ],
)
def test_failures_are_one_line_with_a_telling_exit_code(cli_fake, args, token, code, message):
    done = cli_fake(*args, token=token)
    assert done.returncode == code and done.stderr.strip().startswith(message), done.stderr
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_an_unusable_service_url_is_a_one_line_credentials_error(cli_fake):
    done = cli_fake("ps", CANFAR_URL="http://example.org/skaha/v1")
    assert done.returncode == 3
    assert done.stderr.strip() == (
        "canfar-jlab: refusing to send credentials over plain http to example.org; use https"
    )


def test_a_service_that_fails_is_exit_code_5(cli_fake, fake):
    fake.fail_next("GET session", Status(500, "unexpected exception: boom"))
    done = cli_fake("ps")
    assert done.returncode == 5
    assert done.stderr.strip().endswith("HTTP 500: unexpected exception: boom")


def test_ps_all_shows_no_sessions_table_when_every_session_is_a_runs(cli_fake, fake, tmp_path):
    """`ps --all` lists the runs, then the sessions outside runs: none, no table (not an empty
    header under the runs); one outside, the table."""
    import nbformat

    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), notebook
    )
    image = "images.canfar.net/skaha/base:1"
    # The fake reads run folders directly: no copying to a storage service.
    env = {"CANFAR_JLAB_STAGE": "never", "CANFAR_JLAB_RUNS": str(tmp_path / "runs")}
    launched = cli_fake("run", str(notebook), "-r", "2", "--name", "tiny", "--image", image, **env)
    assert launched.returncode == 0, launched.stderr
    listed = cli_fake("ps", "--all", **env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("RUN tiny  active")
    assert not any(line.split()[:2] == ["ID", "NAME"] for line in listed.stdout.splitlines())
    assert not listed.stdout.endswith("\n\n")
    loose = fake.add_session("by-hand")
    listed = cli_fake("ps", "--all", **env)
    header = next(line for line in listed.stdout.splitlines() if line.split()[:2] == ["ID", "NAME"])
    assert listed.stdout.splitlines()[-1].split()[:2] == [loose, "by-hand"] and header
