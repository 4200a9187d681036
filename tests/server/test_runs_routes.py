"""Runs over REST against the local engine: launch from a notebook on disk, watch it end
without any browser, re-run the failed replica, delete; and the inputs that must be refused."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
import tornado.httpclient
from runs_support import write_notebook
from server_config import server_config
from server_rest import rest_error, rest_json


def _notebook(path, *cells: str) -> str:
    return write_notebook(path, list(cells)).name


# Replica 2 fails until a marker file exists next to the notebook.
FAILS_UNTIL_FIXED = """
import os, pathlib
rid = os.environ['REPLICA_ID']
print('replica', rid, 'of', os.environ['REPLICA_COUNT'])
if rid == '2' and not pathlib.Path('fixed').exists():
    raise RuntimeError('replica 2 is broken')
"""


@pytest.fixture
def jp_server_config(jp_server_config, runs_root):
    return server_config({"runs_root": str(runs_root)})


async def _until_ended(jp_fetch, name: str, timeout: float = 60.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        _, run = await rest_json(jp_fetch, "runs", name)
        if run["state"] != "active" and all(r["log"] for r in run["replicas"]):
            return run
        assert loop.time() < deadline, f"run {name} still {run['counts']}"
        await asyncio.sleep(0.2)


async def test_launch_watch_rerun_failed_and_delete(jp_fetch, jp_root_dir, runs_root):
    _notebook(jp_root_dir / "work" / "sweep.ipynb", FAILS_UNTIL_FIXED)
    code, run = await rest_json(
        jp_fetch, "runs", method="POST", body={"notebook": "work/sweep.ipynb", "replicas": 3}
    )
    assert code == 201
    assert [r["name"] for r in run["replicas"]] == [f"{run['name']}-{i}" for i in (1, 2, 3)]
    assert all(r["session_id"] for r in run["replicas"])
    assert run["folder_relative"] == f"canfar-runs/{run['name']}"

    # No browser watches: the server's own poll still follows the run and archives its logs.
    ended = await _until_ended(jp_fetch, run["name"])
    assert ended["state"] == "failed"
    assert ended["counts"] == {"Completed": 2, "Failed": 1}
    failed = ended["replicas"][1]
    log = (runs_root / run["name"] / failed["log"]).read_text()
    assert "replica 2 is broken" in log and "Traceback" in log

    _, listed = await rest_json(jp_fetch, "runs")
    assert run["name"] in [r["name"] for r in listed["runs"]]

    (jp_root_dir / "work" / "fixed").write_text("")
    code, rerun = await rest_json(
        jp_fetch, "runs", run["name"], "rerun", method="POST", body={"failed_only": True}
    )
    assert rerun["replicas"][1]["session_id"] != failed["session_id"]
    assert [r["session_id"] for i, r in enumerate(rerun["replicas"]) if i != 1] == [
        r["session_id"] for i, r in enumerate(ended["replicas"]) if i != 1
    ]
    again = await _until_ended(jp_fetch, run["name"])
    assert again["state"] == "completed" and again["counts"] == {"Completed": 3}

    code, deleted = await rest_json(jp_fetch, "runs", run["name"], method="DELETE")
    assert set(deleted["deleted"]) >= {r["session_id"] for r in again["replicas"]}
    assert (runs_root / run["name"] / "run.json").is_file()  # the folder stays
    _, listed = await rest_json(jp_fetch, "runs")
    assert run["name"] not in [r["name"] for r in listed["runs"]]  # but the run leaves the list
    _, gone = await rest_json(jp_fetch, "runs", run["name"])
    assert gone["deleted"]


async def test_preview_creates_nothing_and_shows_problems(jp_fetch, jp_root_dir, runs_root):
    _notebook(jp_root_dir / "ask.ipynb", "x = 1", "name = input('who? ')")
    _, preview = await rest_json(
        jp_fetch, "runs", "preview", method="POST", body={"notebook": "ask.ipynb", "replicas": 2}
    )
    assert [p["cell"] for p in preview["problems"]] == [2]
    assert [r["env"]["REPLICA_ID"] for r in preview["replicas"]] == ["1", "2"]
    assert not runs_root.exists() or not any(runs_root.iterdir())

    code, message = await rest_error(
        jp_fetch, "runs", body={"notebook": "ask.ipynb", "replicas": 2}
    )
    assert code == 400 and "input" in message and "2" in message
    assert not runs_root.exists() or not any(runs_root.iterdir())
    _, sessions = await rest_json(jp_fetch, "sessions")
    assert not [s for s in sessions["sessions"] if s["name"].startswith("ask")]


@pytest.mark.parametrize(
    ("notebook", "expected"),
    [
        ("../outside.ipynb", 400),
        ("/etc/passwd", 400),
        ("work/../../outside.ipynb", 400),
        ("escape/link.ipynb", 400),  # a symlink inside the root to a notebook outside it
        ("notes.txt", 400),
        ("missing.ipynb", 404),
    ],
)
async def test_notebook_paths_stay_inside_the_root(
    jp_fetch, jp_root_dir, tmp_path_factory, runs_root, notebook, expected
):
    outside = tmp_path_factory.mktemp("outside") / "secret.ipynb"
    _notebook(outside, "print('not yours')")
    (jp_root_dir / "escape").mkdir(exist_ok=True)
    link = jp_root_dir / "escape" / "link.ipynb"
    if not link.exists():
        os.symlink(outside, link)
    (jp_root_dir / "notes.txt").write_text("hi")
    code, message = await rest_error(jp_fetch, "runs", body={"notebook": notebook, "replicas": 1})
    assert code == expected
    assert "notebook" in message
    assert str(outside) not in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notebook": "a.ipynb", "replicas": 0}, "replicas"),
        ({"notebook": "a.ipynb", "replicas": 1, "cores": "many"}, "cores"),
        ({"notebook": "a.ipynb", "replicas": 1, "surprise": True}, "surprise"),
        ({"replicas": 1}, "notebook"),
        ({"notebook": "a.ipynb", "name": "Not A Name!"}, "name"),
    ],
)
async def test_bad_launch_requests_name_the_field(jp_fetch, jp_root_dir, runs_root, body, field):
    _notebook(jp_root_dir / "a.ipynb", "print(1)")
    code, message = await rest_error(jp_fetch, "runs", body=body)
    assert code == 400 and field in message


async def test_unknown_run_is_404(jp_fetch):
    code, message = await rest_error(jp_fetch, "runs", "no-such-run", method="GET")
    assert code == 404 and "no-such-run" in message
    code, _ = await rest_error(jp_fetch, "runs", "no-such-run", "rerun", body={})
    assert code == 404


async def test_post_and_delete_need_the_xsrf_token_with_cookie_login(
    jp_fetch, jp_serverapp, jp_root_dir, runs_root
):
    """A browser logged in by cookie must also send the _xsrf token on POST and DELETE."""
    _notebook(jp_root_dir / "a.ipynb", "print(1)")
    no_token = {"Authorization": ""}
    # A token in the URL logs the browser in: the server answers with a login cookie.
    login = await jp_fetch(
        "api", "status", params={"token": jp_serverapp.identity_provider.token}, headers=no_token
    )
    cookies = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie"))
    assert "username-" in cookies, "cookie login failed"
    with_cookie = {**no_token, "Cookie": cookies}
    status = await jp_fetch("canfar-jlab", "runs", headers=with_cookie)
    assert status.code == 200  # the cookie alone is a valid login for reads
    for method, parts, body in (
        ("POST", ("canfar-jlab", "runs"), json.dumps({"notebook": "a.ipynb"})),
        ("POST", ("canfar-jlab", "runs", "preview"), json.dumps({"notebook": "a.ipynb"})),
        ("DELETE", ("canfar-jlab", "runs", "some-run"), None),
        ("DELETE", ("canfar-jlab", "sessions", "abcd1234"), None),
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await jp_fetch(*parts, method=method, body=body, headers=with_cookie)
        assert info.value.code == 403, (method, parts, info.value.code)
    assert not runs_root.exists()


async def _messages_until(ws, predicate, timeout: float = 60.0) -> list[dict]:
    seen = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), timeout)
        assert raw is not None, "the live channel closed"
        seen.append(json.loads(raw))
        if predicate(seen[-1]):
            return seen


async def test_run_end_is_told_once_and_only_to_tabs_that_were_watching(
    jp_fetch, jp_ws_fetch, jp_root_dir, runs_root
):
    _notebook(jp_root_dir / "quick.ipynb", "print('done')")
    watching = await jp_ws_fetch("canfar-jlab", "live")
    watching.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    _, run = await rest_json(
        jp_fetch, "runs", method="POST", body={"notebook": "quick.ipynb", "replicas": 2}
    )
    seen = await _messages_until(
        watching, lambda m: m["type"] == "run_ended" and m["run"]["name"] == run["name"]
    )
    assert seen[-1]["run"]["state"] == "completed"

    # A tab that comes after the end sees the run as completed, and no end notice for it.
    late = await jp_ws_fetch("canfar-jlab", "live")
    late.write_message(json.dumps({"op": "subscribe", "topic": "sessions"}))
    first = json.loads(await asyncio.wait_for(late.read_message(), 30))
    assert first["type"] == "sessions"
    assert [r["state"] for r in first["runs"] if r["name"] == run["name"]] == ["completed"]
    # Several more list polls go by (the poll interval is 2 s): none brings a run_ended.
    later = [json.loads(await asyncio.wait_for(late.read_message(), 30)) for _ in range(2)]
    more = await _messages_until(watching, lambda m: m["type"] == "sessions")
    for message in [*later, *more]:
        assert message["type"] != "run_ended", message
    watching.close()
    late.close()


async def test_rerun_with_more_memory_is_refused_when_no_replica_ran_out(jp_fetch, jp_root_dir):
    _notebook(jp_root_dir / "work" / "small.ipynb", "print('fits')")
    _, run = await rest_json(
        jp_fetch, "runs", method="POST", body={"notebook": "work/small.ipynb", "replicas": 1}
    )
    ended = await _until_ended(jp_fetch, run["name"])
    assert ended["state"] == "completed" and ended["replicas"][0]["oom"] is False
    code, message = await rest_error(
        jp_fetch, "runs", run["name"], "rerun", body={"more_memory": True}
    )
    assert code == 409
    assert message == f"run {run['name']} has no replica that ran out of memory"
    _, after = await rest_json(jp_fetch, "runs", run["name"])
    assert after["replicas"][0]["attempts"] == []
