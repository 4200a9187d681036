"""Runs on the local engine under the issue-15 defences: the RAM request bounds the replica's
whole process tree and the run record names the limit; `--secret-env` values reach replicas
and nothing else."""

from __future__ import annotations

import argparse
import hashlib
import json

from runs_support import archived, client_for, run_to_end, write_notebook

from canfar_jlab.launch_args import add_launch_options, launch_request
from canfar_jlab.runs import ReplicaStatus, RunStore, launch, preview

# Three children holding 700 MiB each: 2.1 GiB in all, each well under a 1 GiB limit.
THREE_CHILDREN = """
import subprocess, sys
hold = "b = b'x' * (700 << 20)\\nprint('holding', flush=True)\\nimport time\\ntime.sleep(600)"
kids = [subprocess.Popen([sys.executable, '-c', hold]) for _ in range(3)]
for kid in kids:
    kid.wait()
print('all children ended')
"""


async def test_a_replica_whose_children_pass_ram_together_is_oomkilled(engine, tmp_path):
    notebook = write_notebook(tmp_path / "tree.ipynb", [THREE_CHILDREN])
    store = RunStore(tmp_path / "runs")
    parser = argparse.ArgumentParser()
    add_launch_options(parser)
    request = launch_request(str(notebook), parser.parse_args(["--ram", "1"]))
    async with client_for(engine) as client:
        run = await launch(request, client, store)
        run, _ = await run_to_end(run.name, client, store, timeout=180)
    replica = run.replica(1)
    assert replica.status is ReplicaStatus.FAILED
    log = archived(run, 1)
    assert "OOMKilled" in log and "RAM limit of 1 GiB (ram=1)" in log
    assert "all children ended" not in log
    # What the run record reads (run.json, the REST routes, `canfar-jlab ps`):
    assert "OOMKilled" in replica.error and "1 GiB" in replica.error
    on_disk = json.loads((store.root / run.name / "run.json").read_text())
    assert "OOMKilled" in on_disk["replicas"][0]["error"]


SHOW_SECRET = """
import hashlib, os, pathlib
got = os.environ.get('CANFAR_TEST_CLI_SECRET', '').encode()
out = pathlib.Path(os.environ['CANFAR_RUN_OUTPUTS'])
(out / 'digest').write_text(hashlib.sha256(got).hexdigest())
print('digest written')
"""


async def test_secret_env_flag_passes_a_value_only_to_replicas(engine, tmp_path, monkeypatch):
    secret = "cli-secret-31f9a"
    monkeypatch.setenv("CANFAR_TEST_CLI_SECRET", secret)
    notebook = write_notebook(tmp_path / "secret.ipynb", [SHOW_SECRET])
    store = RunStore(tmp_path / "runs")
    parser = argparse.ArgumentParser()
    add_launch_options(parser)
    args = parser.parse_args(["--secret-env", "CANFAR_TEST_CLI_SECRET", "-e", "PLAIN=1"])
    request = launch_request(str(notebook), args)
    assert request.secret_env == ["CANFAR_TEST_CLI_SECRET"]
    async with client_for(engine) as client:
        shown = await preview(request, store, client)
        assert shown.replicas[0].env["CANFAR_TEST_CLI_SECRET"] == "(secret)"
        run = await launch(request, client, store)
        run, lines = await run_to_end(run.name, client, store)
    folder = store.root / run.name
    assert (folder / "outputs" / "digest").read_text() == hashlib.sha256(
        secret.encode()
    ).hexdigest()
    assert run.spec.secret_env == ["CANFAR_TEST_CLI_SECRET"]
    assert "CANFAR_TEST_CLI_SECRET" not in run.spec.env
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    assert secret not in shown.model_dump_json() + run.model_dump_json() + str(lines)
