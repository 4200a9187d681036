"""A preview shows the env each replica is created with: the preview and the launch build it
through the same functions (launcher.planned_run, then actions.replica_env: session_spec's env
plus replica_vars), so what the user checks is what the replicas get."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from export.conftest import write_notebook
from runs_support import archived, client_for, run_to_end

from canfar_jlab.models import LaunchRequest
from canfar_jlab.runs import RunStore, launch, launcher, preview
from canfar_jlab.runs.actions import replica_vars, spec_of

KEYS = ["REPLICA_ID", "REPLICA_COUNT", "CANFAR_RUN_DIR", "CANFAR_RUN_OUTPUTS", "CANFAR_RUN_NAME",
        "OMP_NUM_THREADS", "MY_SETTING", "PREVIEW_TOKEN", "CANFAR_JLAB_TIMEOUT"]  # fmt: skip
PRINT_ENV = f"""
import json, os
print("ENV " + json.dumps({{key: os.environ.get(key) for key in {KEYS!r}}}))
"""


async def test_the_preview_env_is_the_env_replicas_get(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PREVIEW_TOKEN", "not-shown-in-previews")
    notebook = write_notebook(tmp_path / "envcheck.ipynb", [PRINT_ENV])
    store = RunStore(tmp_path / "runs")
    request = LaunchRequest(
        notebook=str(notebook),
        replicas=2,
        cores=1,
        env={"MY_SETTING": "x1"},
        secret_env=["PREVIEW_TOKEN"],
        timeout_seconds=900,
    )
    async with client_for(engine) as client:
        shown = await preview(request, store, client)
        run = await launch(request, client, store)
        assert run.name == shown.name
        for replica, planned in zip(run.replicas, shown.replicas, strict=True):
            created = spec_of(run, replica).env | replica_vars(replica.index, 2)
            assert planned.env == created | {"PREVIEW_TOKEN": "(secret)"}
        run, _ = await run_to_end(run.name, client, store)
    assert run.state == "completed", [r.error for r in run.replicas]
    for replica, planned in zip(run.replicas, shown.replicas, strict=True):
        line = next(li for li in archived(run, replica.index).splitlines() if li.startswith("ENV "))
        got = json.loads(line.removeprefix("ENV "))
        expected = {key: planned.env.get(key) for key in KEYS}
        assert expected["PREVIEW_TOKEN"] == "(secret)"  # the value itself is never shown
        assert got == {**expected, "PREVIEW_TOKEN": "not-shown-in-previews"}
        assert got["REPLICA_ID"] == str(replica.index) and got["OMP_NUM_THREADS"] == "1"
        assert got["CANFAR_JLAB_TIMEOUT"] == "900"


ENV_BUILDERS = {"run_env", "run_env_of", "replica_vars", "session_spec", "spec_of"}
ENV_NAMES = {"CANFAR_RUN_DIR", "CANFAR_RUN_OUTPUTS", "CANFAR_RUN_NAME", "CANFAR_JLAB_TIMEOUT",
             "OMP_NUM_THREADS", "REPLICA_ID", "REPLICA_COUNT"}  # fmt: skip


def test_the_preview_builds_no_env_of_its_own():
    # The replica env has one home (actions.run_env_of, through session_spec and replica_env):
    # the preview asks replica_env for it and the launcher never builds one itself.
    source = Path(launcher.__file__).read_text()
    tree = ast.parse(source)
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert "replica_env" in called and "session_spec" in called
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not imported & (ENV_BUILDERS - {"session_spec"}), "launcher.py builds a replica env"
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert not strings & ENV_NAMES, "launcher.py names replica env variables itself"
    assert not any(name.endswith("_ENV") for name in imported)  # e.g. actions.RUN_DIR_ENV
