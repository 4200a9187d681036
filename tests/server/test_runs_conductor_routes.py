"""Issue 17's launch options over REST: the preview shows them, a launch records them and the
server's own polling conducts the run (the cap), bad values are one-line 400s."""

from __future__ import annotations

import asyncio

import pytest
from runs_support import write_notebook
from server_config import server_config
from server_rest import rest_error, rest_json


def _notebook(path, *cells: str) -> str:
    return write_notebook(path, list(cells)).name


@pytest.fixture
def jp_server_config(jp_server_config, runs_root):
    return server_config({"runs_root": str(runs_root)})


async def test_preview_and_launch_carry_the_conductor_options(jp_fetch, jp_root_dir, runs_root):
    _notebook(jp_root_dir / "work" / "capped.ipynb", "import os\nprint(os.environ['REPLICA_ID'])")
    _notebook(jp_root_dir / "work" / "combine.ipynb", "print('reduce')")
    body = {
        "notebook": "work/capped.ipynb",
        "replicas": 3,
        "retries": 2,
        "timeout_seconds": 600,
        "max_running": 1,
    }
    _, preview = await rest_json(jp_fetch, "runs", "preview", method="POST", body=body)
    assert (preview["retries"], preview["timeout_seconds"], preview["max_running"]) == (2, 600, 1)
    assert [r["waiting"] for r in preview["replicas"]] == [
        None,
        "waiting in run: 1 of 1 running",
        "waiting in run: 1 of 1 running",
    ]
    assert preview["replicas"][0]["env"]["CANFAR_JLAB_TIMEOUT"] == "600"
    assert not runs_root.exists() or not any(runs_root.iterdir())

    code, run = await rest_json(jp_fetch, "runs", method="POST", body=body)
    assert code == 201
    spec = run["spec"]
    assert (spec["retries"], spec["timeout_seconds"], spec["max_running"]) == (2, 600, 1)
    assert [r["status"] for r in run["replicas"]] == ["Pending", "Waiting", "Waiting"]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while True:  # the server conducts the run: no browser, no CLI
        _, run = await rest_json(jp_fetch, "runs", run["name"])
        if run["state"] != "active" and all(r["log"] for r in run["replicas"]):
            break
        assert loop.time() < deadline, run["counts"]
        await asyncio.sleep(0.2)
    assert run["counts"] == {"Completed": 3}
    ends = sorted(r["ended"] for r in run["replicas"])
    submitted = sorted(r["submitted"] for r in run["replicas"])
    assert submitted[1] >= ends[0] and submitted[2] >= ends[1]  # one at a time

    # --reduce NOTEBOOK: confined to the root like the notebook, copied into the run folder.
    _, preview = await rest_json(
        jp_fetch,
        "runs",
        "preview",
        method="POST",
        body={"notebook": "work/capped.ipynb", "reduce_notebook": "work/combine.ipynb"},
    )
    assert preview["reduce"] == "combine.ipynb"


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"retries": 11}, 400, "retries"),
        ({"retries": -1}, 400, "retries"),
        ({"timeout_seconds": 0}, 400, "timeout_seconds"),
        ({"max_running": 0}, 400, "max_running"),
        ({"pilot": "sometimes"}, 400, "pilot"),
        ({"reduce_notebook": "../outside.ipynb"}, 400, "notebook"),
        ({"reduce_notebook": "missing.ipynb"}, 404, "notebook"),
    ],
)
async def test_bad_conductor_options_are_one_line_errors(
    jp_fetch, jp_root_dir, runs_root, extra, code, field
):
    _notebook(jp_root_dir / "a.ipynb", "print(1)")
    for route in (("runs",), ("runs", "preview")):
        got, message = await rest_error(jp_fetch, *route, body={"notebook": "a.ipynb", **extra})
        assert got == code and field in message
    assert not runs_root.exists() or not any(runs_root.iterdir())
