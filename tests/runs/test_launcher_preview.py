"""A preview shows the env each replica is created with: the preview and the launch build it
through the same functions (launcher.planned_run, then actions.run_env_of / session_spec, plus
actions.replica_vars per replica), so what the user checks is what the replicas get."""

from __future__ import annotations

import json

from export.conftest import write_notebook
from runs_support import archived, client_for, run_to_end

from canfar_jlab.models import LaunchRequest
from canfar_jlab.runs import RunStore, launch, preview

KEYS = ["REPLICA_ID", "REPLICA_COUNT", "CANFAR_RUN_DIR", "CANFAR_RUN_OUTPUTS", "CANFAR_RUN_NAME",
        "OMP_NUM_THREADS", "MY_SETTING", "PREVIEW_TOKEN"]  # fmt: skip
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
    )
    async with client_for(engine) as client:
        shown = await preview(request, store, client)
        run = await launch(request, client, store)
        assert run.name == shown.name
        run, _ = await run_to_end(run.name, client, store)
    assert run.state == "completed", [r.error for r in run.replicas]
    for replica, planned in zip(run.replicas, shown.replicas, strict=True):
        line = next(li for li in archived(run, replica.index).splitlines() if li.startswith("ENV "))
        got = json.loads(line.removeprefix("ENV "))
        expected = {key: planned.env.get(key) for key in KEYS}
        assert expected["PREVIEW_TOKEN"] == "(secret)"  # the value itself is never shown
        assert got == {**expected, "PREVIEW_TOKEN": "not-shown-in-previews"}
        assert got["REPLICA_ID"] == str(replica.index) and got["OMP_NUM_THREADS"] == "1"
