"""SIGKILL the Jupyter server at a random moment of a 10-replica launch, 20 times: after a
restart and one list, every session that exists is recorded in its run, none is NotCreated,
and re-running the failed replicas never gives a REPLICA_ID a second session."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import nbformat
from crash_harness import TRIALS, check_every_session_recorded, doubled, sessions_by_name
from fixtures_engine import wait_for
from nbformat.v4 import new_code_cell, new_notebook

from canfar_jlab.cli import main
from canfar_jlab.runs import RunStore

TOKEN = "crash-test-token"
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JupyterServer:
    """A real `jupyter server` process with canfar_jlab, its runs under `runs`."""

    def __init__(self, root: Path, runs: Path, environ: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={TOKEN}",
                "--ServerApp.jpserver_extensions={'canfar_jlab': True}",
                f"--CanfarJlabApp.runs_root={runs}",
                "--CanfarJlabApp.list_interval=0.2",
                "--allow-root",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environ,
            cwd=REPO,
        )
        wait_for(self._answers, timeout=120, what="the Jupyter server to answer")

    def _answers(self) -> bool:
        assert self.process.poll() is None, "the Jupyter server exited"
        try:
            return httpx.get(f"{self.url}/api/status", headers=self.headers, timeout=2).is_success
        except httpx.HTTPError:
            return False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {TOKEN}"}

    def post(self, path: str, body: dict) -> None:
        try:
            httpx.post(
                f"{self.url}/canfar-jlab/{path}", json=body, headers=self.headers, timeout=60
            )
        except httpx.HTTPError:
            pass  # killed meanwhile

    def get(self, path: str) -> dict:
        reply = httpx.get(f"{self.url}/canfar-jlab/{path}", headers=self.headers, timeout=60)
        reply.raise_for_status()
        return reply.json()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def test_killing_the_jupyter_server_mid_launch_never_loses_or_doubles_a_replica(
    queueing_engine, tmp_path, monkeypatch
):
    root = tmp_path / "root"
    runs = tmp_path / "runs"
    root.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("print('hello')")]), root / "tiny.ipynb")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
    environ.update(
        CANFAR_JLAB_HOME=str(queueing_engine.home),
        CANFAR_JLAB_CONFIG=str(tmp_path / "config"),
        HOME=str(tmp_path),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        PYTHONPATH=os.pathsep.join([str(REPO), environ.get("PYTHONPATH", "")]),
    )
    chance = random.Random(1111)
    names = [f"srv-{trial}" for trial in range(TRIALS)]
    for name in names:
        server = JupyterServer(root, runs, environ)
        body = {"notebook": "tiny.ipynb", "replicas": 10, "name": name}
        posting = threading.Thread(target=server.post, args=("runs", body), daemon=True)
        posting.start()
        record = runs / name / "run.json"
        wait_for(lambda r=record, p=posting: r.exists() or not p.is_alive(), timeout=60)
        time.sleep(chance.uniform(0.0, 0.25))
        server.kill()
        posting.join(timeout=60)

    # Restart the server; one list of the runs brings them up to date.
    server = JupyterServer(root, runs, environ)
    try:
        listed = {run["name"]: run for run in server.get("runs")["runs"]}
    finally:
        server.kill()
    assert sorted(listed) == sorted(names)
    store = RunStore(runs)
    never_created = check_every_session_recorded(
        store, names, sessions_by_name(queueing_engine, "srv-")
    )
    for name, value in (("CANFAR_JLAB_HOME", queueing_engine.home), ("CANFAR_JLAB_RUNS", runs)):
        monkeypatch.setenv(name, str(value))
    for name in names:
        assert main(["rerun", name, "--failed"]) == 0
    assert doubled(queueing_engine, "srv-") == []
    print(f"{never_created} of {TRIALS * 10} replicas were not created before the kill")
