"""A run launched while no Jupyter server was up (from the CLI, or before a restart) is
followed by the next server that starts: its end recorded and its logs archived, with no
browser and no request."""

from __future__ import annotations

import asyncio

import nbformat
import pytest
from server_config import server_config

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.models import LaunchRequest
from canfar_jlab.runs import RunStore, launch
from canfar_jlab.skaha import SkahaClient


@pytest.fixture
def runs_root(tmp_path):
    return tmp_path / "runs"


@pytest.fixture
def launched(runs_root, tmp_path):
    """A 2-replica run launched through the core API before the server starts."""
    notebook = tmp_path / "hello.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nprint('hello from', os.environ['REPLICA_ID'])")
    ]
    nbformat.write(nb, notebook)

    async def go():
        async with SkahaClient(engine_credentials()) as client:
            request = LaunchRequest(notebook=str(notebook), replicas=2)
            return await launch(request, client, RunStore(runs_root))

    return asyncio.run(go())


@pytest.fixture
def jp_server_config(jp_server_config, runs_root, launched):
    return server_config({"runs_root": str(runs_root), "list_interval": 0.2})


async def test_server_start_resumes_following_active_runs(jp_serverapp, runs_root, launched):
    # pytest-jupyter initialises the server without starting its loop; `_post_start` is what
    # ServerApp.start() schedules once the loop runs, and it calls the extensions' start hooks.
    await jp_serverapp._post_start()
    store = RunStore(runs_root)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        run = store.get(launched.name)
        if run.state != "active" and all(r.log for r in run.replicas):
            break
        assert loop.time() < deadline, f"not followed: {run.counts}"
        await asyncio.sleep(0.1)
    assert run.state == "completed"
    for replica in run.replicas:
        text = (runs_root / run.name / replica.log).read_text()
        assert f"hello from {replica.index}" in text
