"""Every door, one record: runs launched through REST, the CLI and %canfar appear in the
other two with the same state, under `make lab`'s runs-root setting and under the default;
and each door launches without a failure right after the local engine restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from server_config import server_config
from server_rest import rest_json
from status_report import SLEEPS_3, assert_real_run, engine_lifetime

from canfar_jlab.cli import main
from canfar_jlab.engine.control import engine_status, ensure_engine, stop_engine
from canfar_jlab.paths import set_user_setting
from canfar_jlab.runs import default_root

TINY = "print('hello')"


def _notebook(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    return path


async def _until(jp_fetch, name: str, timeout: float = 90.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, run = await rest_json(jp_fetch, "runs", name)
        if run["state"] != "active" and all(r["log"] for r in run["replicas"]):
            return run
        assert asyncio.get_running_loop().time() < deadline, run["counts"]
        await asyncio.sleep(0.2)


def _real_runs(names: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """{session id: the replica's real run as the engine measured it} for these runs."""
    from canfar_jlab.paths import data_home

    sessions = []
    for name in names:
        record = json.loads((default_root() / name / "run.json").read_text())
        sessions += [replica["session_id"] for replica in record["replicas"]]
    return {session: engine_lifetime(data_home(), session) for session in sessions}


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

    code, _ = await rest_json(
        jp_fetch,
        "runs",
        method="POST",
        body={"notebook": "work/sleeps.ipynb", "replicas": 2, "name": "from-rest"},
    )
    assert code == 201
    watching = asyncio.ensure_future(asyncio.to_thread(_real_runs, ("from-rest",)))
    assert await _cli("run", str(tiny), "-r", "1", "--name", "from-cli") == 0
    _magic(f"batch {tiny} -r 1 --name from-magic")

    real = await watching
    ended = {name: await _until(jp_fetch, name) for name in ("from-rest", "from-cli", "from-magic")}
    for replica in ended["from-rest"]["replicas"]:
        assert_real_run(replica, real[replica["session_id"]])
        assert replica["exit_code"] == 0 and replica["attempt_count"] == 1
    _, listed = await rest_json(jp_fetch, "runs")
    rest_states = {run["name"]: run["state"] for run in listed["runs"]}
    assert rest_states == dict.fromkeys(("from-rest", "from-cli", "from-magic"), "completed")
    assert await asyncio.to_thread(_cli_runs) == rest_states
    for run in listed["runs"]:
        assert Path(run["folder"]).parent == root
        if root_choice == "make-lab-setting":  # the file browser can open every run folder
            assert run["folder_relative"] == f"canfar-runs/{run['name']}"


@pytest.mark.parametrize("root_choice", ["default"], indirect=True)
async def test_every_door_records_the_real_run_when_read_30_s_later(
    jp_fetch, jp_root_dir, root_choice
):
    """A replica sleeping 3 s, launched from REST, from the CLI without --follow and from
    %canfar, read by nobody for 30 s: started, ended and their difference are the replica's
    real run (its process, as the engine measured it) to 1 s, through REST and the CLI."""
    sleeps = _notebook(jp_root_dir / "sleeps.ipynb", SLEEPS_3)
    body = {"notebook": "sleeps.ipynb", "name": "late-rest"}
    assert (await rest_json(jp_fetch, "runs", method="POST", body=body))[0] == 201
    assert await _cli("run", str(sleeps), "--name", "late-cli") == 0
    _magic(f"batch {sleeps} --name late-magic")
    names = ("late-rest", "late-cli", "late-magic")
    real = await asyncio.to_thread(_real_runs, names)
    await asyncio.sleep(30)  # nobody reads the runs: the record must not take when it is read
    shown = {name: await _until(jp_fetch, name) for name in names}
    shown_by_cli = await asyncio.to_thread(_cli_ps, names)
    for name in names:
        for door in (shown[name], shown_by_cli[name]):
            assert door["state"] == "completed", door
            for replica in door["replicas"]:
                assert_real_run(replica, real[replica["session_id"]])


def _cli_ps(names: tuple[str, ...]) -> dict[str, dict]:
    from contextlib import redirect_stdout
    from io import StringIO

    shown = {}
    for name in names:
        out = StringIO()
        with redirect_stdout(out):
            assert main(["ps", name, "--json"]) == 0
        shown[name] = json.loads(out.getvalue())
    return shown


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
    code, _ = await rest_json(
        jp_fetch, "runs", method="POST", body={"notebook": "tiny.ipynb", "name": "before"}
    )
    assert code == 201
    before = engine_status(own_engine_home)
    await asyncio.to_thread(stop_engine, own_engine_home)
    after = await asyncio.to_thread(ensure_engine, own_engine_home)
    assert after.url != before.url or after.token() != before.token_file.read_text()

    # No other route first: preview and launch themselves find the new engine.
    code, preview = await rest_json(
        jp_fetch, "runs", "preview", method="POST", body={"notebook": "tiny.ipynb"}
    )
    assert code == 200 and preview["image"]
    code, run = await rest_json(
        jp_fetch, "runs", method="POST", body={"notebook": "tiny.ipynb", "name": "after-rest"}
    )
    assert code == 201 and all(r["session_id"] for r in run["replicas"])
    assert await _cli("run", str(tiny), "--name", "after-cli") == 0
    _magic(f"batch {tiny} --name after-magic")
    for name in ("after-rest", "after-cli", "after-magic"):
        assert (await _until(jp_fetch, name))["state"] == "completed"
