"""Every door, one record: runs launched through REST, the CLI and %canfar appear in the
other two with the same state, under `make lab`'s runs-root setting and under the default;
and each door launches without a failure right after the local engine restarts."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from server_config import server_config
from status_report import SLEEPS_3

from canfar_jlab.cli import main
from canfar_jlab.engine.control import engine_status, ensure_engine, stop_engine
from canfar_jlab.paths import set_user_setting
from canfar_jlab.runs import default_root

TINY = "print('hello')"


def _notebook(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    return path


async def _json(jp_fetch, *path, method="GET", body=None):
    kwargs = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = await jp_fetch("canfar-jlab", *path, **kwargs)
    return response.code, json.loads(response.body)


async def _until(jp_fetch, name: str, timeout: float = 90.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, run = await _json(jp_fetch, "runs", name)
        if run["state"] != "active" and all(r["log"] for r in run["replicas"]):
            return run
        assert asyncio.get_running_loop().time() < deadline, run["counts"]
        await asyncio.sleep(0.2)


def _engine_ends(ids: set[str], timeout: float = 90.0) -> dict[str, float]:
    """When the engine itself first lists each of these sessions as ended: {name: epoch s}."""
    import time

    import httpx

    from canfar_jlab.paths import data_home

    info = engine_status(data_home())
    assert info is not None
    headers = {"Authorization": f"Bearer {info.token()}"}
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=f"{info.url}/v1", headers=headers, trust_env=False) as http:
        while len(seen) < len(ids):
            assert time.monotonic() < deadline, f"{ids} did not end"
            for session in http.get("/session").json():
                if session["id"] in ids and session["status"] in (
                    "Completed",
                    "Failed",
                ):
                    seen.setdefault(session["name"], time.time())
            time.sleep(0.05)
    return seen


def _magic(text: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    try:
        shell.run_line_magic("load_ext", "canfar_jlab")
        with capture_output() as captured:
            shell.run_line_magic("canfar", text)
        assert captured.stderr == "", captured.stderr
    finally:
        InteractiveShell.clear_instance()


async def _cli(*args: str) -> int:
    """The CLI in this process (it runs its own event loop, so in a thread)."""
    return await asyncio.to_thread(main, list(args))


def _cli_runs() -> dict[str, str]:
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        assert main(["ps", "--all", "--runs", "--json"]) == 0
    return {run["name"]: run["state"] for run in json.loads(out.getvalue())}


@pytest.fixture(params=["make-lab-setting", "default"])
def root_choice(request, jp_root_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("CANFAR_JLAB_RUNS", raising=False)
    monkeypatch.setenv("CANFAR_JLAB_CONFIG", str(tmp_path / "config"))
    if request.param == "make-lab-setting":
        set_user_setting("runs-root", str(jp_root_dir / "canfar-runs"))
    return request.param


@pytest.fixture
def jp_server_config(jp_server_config, root_choice):
    return server_config()  # no runs_root: the server reads the user's setting


async def test_runs_from_every_door_appear_in_the_others(jp_fetch, jp_root_dir, root_choice):
    root = default_root()
    if root_choice == "make-lab-setting":
        assert root == jp_root_dir / "canfar-runs"
    _notebook(jp_root_dir / "work" / "sleeps.ipynb", SLEEPS_3)
    tiny = _notebook(jp_root_dir / "work" / "tiny.ipynb", TINY)

    code, launched = await _json(
        jp_fetch,
        "runs",
        method="POST",
        body={"notebook": "work/sleeps.ipynb", "replicas": 2, "name": "from-rest"},
    )
    assert code == 201
    # The real end: when the engine itself first lists each replica as ended.
    ids = {r["session_id"] for r in launched["replicas"]}
    watching = asyncio.ensure_future(asyncio.to_thread(_engine_ends, ids))
    assert await _cli("run", str(tiny), "-r", "1", "--name", "from-cli") == 0
    _magic(f"batch {tiny} -r 1 --name from-magic")

    seen_end = await watching
    ended = {name: await _until(jp_fetch, name) for name in ("from-rest", "from-cli", "from-magic")}
    for replica in ended["from-rest"]["replicas"]:
        started = datetime.fromisoformat(replica["started"]).timestamp()
        finished = datetime.fromisoformat(replica["ended"]).timestamp()
        assert 3.0 <= finished - started <= 11.0, replica  # the sleep, plus a kernel's start
        # The runner writes its end before its kernel has shut down: about 1 s on a busy machine.
        assert abs(finished - seen_end[replica["name"]]) <= 1.5, replica
        assert replica["exit_code"] == 0 and replica["attempt_count"] == 1
    _, listed = await _json(jp_fetch, "runs")
    rest_states = {run["name"]: run["state"] for run in listed["runs"]}
    assert rest_states == dict.fromkeys(("from-rest", "from-cli", "from-magic"), "completed")
    assert await asyncio.to_thread(_cli_runs) == rest_states
    for run in listed["runs"]:
        assert Path(run["folder"]).parent == root
        if root_choice == "make-lab-setting":  # the file browser can open every run folder
            assert run["folder_relative"] == f"canfar-runs/{run['name']}"


@pytest.fixture
def own_engine_home(tmp_path, monkeypatch):
    # An engine of this test's own: the suite's shared engine must not be restarted.
    home = tmp_path / "engine-home"
    monkeypatch.setenv("CANFAR_JLAB_HOME", str(home))
    yield home
    stop_engine(home, terminate_replicas=True)


@pytest.mark.parametrize("root_choice", ["default"], indirect=True)
async def test_every_door_launches_after_an_engine_restart(
    own_engine_home, jp_fetch, jp_root_dir, root_choice
):
    _notebook(jp_root_dir / "tiny.ipynb", TINY)
    tiny = jp_root_dir / "tiny.ipynb"
    code, _ = await _json(
        jp_fetch, "runs", method="POST", body={"notebook": "tiny.ipynb", "name": "before"}
    )
    assert code == 201
    before = engine_status(own_engine_home)
    await asyncio.to_thread(stop_engine, own_engine_home)
    after = await asyncio.to_thread(ensure_engine, own_engine_home)
    assert after.url != before.url or after.token() != before.token_file.read_text()

    # No other route first: preview and launch themselves find the new engine.
    code, preview = await _json(
        jp_fetch, "runs", "preview", method="POST", body={"notebook": "tiny.ipynb"}
    )
    assert code == 200 and preview["image"]
    code, run = await _json(
        jp_fetch, "runs", method="POST", body={"notebook": "tiny.ipynb", "name": "after-rest"}
    )
    assert code == 201 and all(r["session_id"] for r in run["replicas"])
    assert await _cli("run", str(tiny), "--name", "after-cli") == 0
    _magic(f"batch {tiny} --name after-magic")
    for name in ("after-rest", "after-cli", "after-magic"):
        assert (await _until(jp_fetch, name))["state"] == "completed"
