"""Launching from outside CANFAR: the run is copied to the user's CANFAR storage through its
VOSpace API, the replicas run from there, and a launch that cannot be staged is refused before
any session exists. A Skaha look-alike and a VOSpace 2.1 service on 127.0.0.1 stand in for
CANFAR (tests/fake_skaha.py, tests/fake_vospace.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml
from fake_skaha import FakeSkaha
from fake_vospace import FakeVOSpace
from runs_support import write_notebook

from canfar_jlab.credentials import Credentials, Secret, resolve_credentials
from canfar_jlab.runs import (
    LaunchRefused,
    LaunchRequest,
    ReplicaStatus,
    RunStore,
    launch,
    preview,
    rerun_failed,
)
from canfar_jlab.runs.staging import needs_staging
from canfar_jlab.skaha import SkahaClient

TOKEN = "staging-token-0123456789"
IMAGE = "images.canfar.net/skaha/astroml:latest"


@pytest.fixture
def laptop(tmp_path, monkeypatch):
    """A JupyterLab outside CANFAR: no skaha_sessionid, runs under the laptop's home."""
    monkeypatch.delenv("CANFAR_JLAB_STAGE", raising=False)
    monkeypatch.delenv("skaha_sessionid", raising=False)
    for name in ("CANFAR_URL", "CANFAR_TOKEN", "CANFAR_JLAB_STAGE_ROOT", "CANFAR_JLAB_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CANFAR_JLAB_IMAGE", IMAGE)
    home = tmp_path / "home"
    (home / ".canfar").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    with FakeSkaha(TOKEN) as skaha, FakeVOSpace(TOKEN) as storage:
        skaha.add_session("lab", type="notebook")  # tells the user name: tester
        yield skaha, storage, home


def write_config(home: Path, skaha: FakeSkaha, storage: FakeVOSpace | None) -> None:
    server = {"idp": "srcnet", "url": f"{skaha.root}/skaha", "version": "v1"}
    if storage is not None:
        server["storage"] = {"arc": {"uri": storage.uri, "url": storage.url}}
    expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).timestamp()
    config = {
        "version": 2,
        "active": {"authentication": "srcnet", "server": "lab"},
        "authentication": {
            "srcnet": {"mode": "oidc", "token": {"access": TOKEN}, "expiry": {"access": expiry}}
        },
        "servers": {"lab": server},
    }
    path = home / ".canfar" / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


async def test_a_laptop_launch_is_staged_and_runs_from_arc(laptop, tmp_path):
    skaha, storage, home = laptop
    write_config(home, skaha, storage)
    notebook = write_notebook(tmp_path / "reduce.ipynb", ["print('hello')"])
    store = RunStore(tmp_path / "runs")
    async with SkahaClient(resolve_credentials()) as client:
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=2), client, store)
    remote = f"/arc/home/tester/canfar-runs/{run.name}"
    assert run.staged is not None
    assert (run.staged.folder, run.staged.outputs) == (remote, f"{remote}/outputs")
    assert run.staged.storage == storage.url
    relative = remote.removeprefix("/arc/")
    assert f"{relative}/outputs" in storage.containers
    local = Path(run.folder)
    for name in ("canfar_runner.py", run.script):
        assert storage.files[f"{relative}/{name}"] == (local / name).read_bytes()
    assert set(run.staged.files) >= {"canfar_runner.py", run.script}
    # The replicas run the staged copy, with the staged folders as their run dir and outputs.
    posts = [parse_qsl(r.body.decode()) for r in skaha.recorded("POST")]
    assert len(posts) == 2
    fields = dict(posts[0])
    assert fields["args"].split() == [f"{remote}/canfar_runner.py", f"{remote}/{run.script}"]
    env = dict(value.split("=", 1) for key, value in posts[0] if key == "env")
    assert env["CANFAR_RUN_DIR"] == remote and env["CANFAR_RUN_OUTPUTS"] == f"{remote}/outputs"
    assert str(tmp_path) not in json.dumps(posts)  # nothing points at the laptop
    assert json.loads((local / "run.json").read_text())["staged"]["outputs"] == f"{remote}/outputs"
    # The bearer token went to the storage service, and only as a header.
    assert {s.authorization for s in storage.seen} == {f"Bearer {TOKEN}"}

    # Running a failed replica again uses the staged copy too.
    skaha.set_status(run.replicas[1].session_id, "Failed")
    store.update(run.name, lambda r: setattr(r.replicas[1], "status", ReplicaStatus.FAILED))
    async with SkahaClient(resolve_credentials()) as client:
        await rerun_failed(run.name, client, store)
    again = dict(
        value.split("=", 1)
        for key, value in parse_qsl(skaha.recorded("POST")[-1].body.decode())
        if key == "env"
    )
    assert again["CANFAR_RUN_DIR"] == remote


async def test_a_configured_project_folder(laptop, tmp_path, monkeypatch):
    skaha, storage, home = laptop
    write_config(home, skaha, storage)
    storage.containers.add("projects/survey")
    monkeypatch.setenv("CANFAR_JLAB_STAGE_ROOT", "/arc/projects/survey/runs")
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    async with SkahaClient(resolve_credentials()) as client:
        run = await launch(LaunchRequest(notebook=str(notebook)), client, RunStore(tmp_path / "r"))
    assert run.staged.folder == f"/arc/projects/survey/runs/{run.name}"
    assert f"projects/survey/runs/{run.name}/outputs" in storage.containers


async def test_no_storage_known_refuses_before_any_session(laptop, tmp_path):
    skaha, _, home = laptop
    write_config(home, skaha, None)  # a site whose storage nobody named
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    store = RunStore(tmp_path / "runs")
    async with SkahaClient(resolve_credentials()) as client:
        with pytest.raises(LaunchRefused) as caught:
            await launch(LaunchRequest(notebook=str(notebook)), client, store)
    message = str(caught.value)
    assert "this Jupyter server does not run in a CANFAR session" in message
    assert "no storage service is known for 127.0.0.1" in message
    assert "set CANFAR_JLAB_STORAGE_URL" in message  # the fix
    assert skaha.recorded("POST") == [] and not store.root.exists()


async def test_storage_refusing_the_copy_refuses_the_launch(laptop, tmp_path):
    skaha, storage, home = laptop
    write_config(home, skaha, storage)
    storage.read_only = True
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    store = RunStore(tmp_path / "runs")
    async with SkahaClient(resolve_credentials()) as client:
        with pytest.raises(
            LaunchRefused, match=r"cannot copy the run to /arc/home/tester/.*HTTP 403"
        ):
            await launch(LaunchRequest(notebook=str(notebook)), client, store)
    assert skaha.recorded("POST") == [] and list(store.root.iterdir()) == []


def test_when_staging_is_needed(tmp_path, monkeypatch):
    monkeypatch.delenv("CANFAR_JLAB_STAGE", raising=False)
    remote = SkahaClient(
        Credentials(
            base_url="https://ws-uv.canfar.net/skaha/v1",
            source="t",
            kind="explicit",
            token=Secret("t"),
        )
    )
    engine = SkahaClient(
        Credentials(
            base_url="http://127.0.0.1:1/skaha/v1",
            source="t",
            kind="local-engine",
            token=Secret("t"),
        )
    )
    monkeypatch.delenv("skaha_sessionid", raising=False)
    assert needs_staging(remote, Path("/arc/home/me/canfar-runs"))  # not in a session
    assert not needs_staging(engine, tmp_path)  # the local engine reads local folders
    monkeypatch.setenv("skaha_sessionid", "abcd1234")
    assert not needs_staging(remote, Path("/arc/home/me/canfar-runs"))
    assert needs_staging(remote, tmp_path)  # in a session, but the folder is not on /arc
    monkeypatch.setenv("CANFAR_JLAB_STAGE", "never")
    assert not needs_staging(remote, tmp_path)


def test_cli_says_where_the_outputs_stay(laptop, tmp_path):
    import os
    import subprocess
    import sys

    skaha, storage, home = laptop
    write_config(home, skaha, storage)
    notebook = write_notebook(tmp_path / "cli.ipynb", ["print(1)"])
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CANFAR_", "skaha_"))}
    environ |= {"HOME": str(home), "CANFAR_JLAB_RUNS": str(tmp_path / "runs")}
    environ["CANFAR_JLAB_IMAGE"] = IMAGE
    done = subprocess.run(
        [sys.executable, "-m", "canfar_jlab", "run", str(notebook)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    said = done.stdout + done.stderr
    assert "staged to /arc/home/tester/canfar-runs/cli; outputs stay in " in said, said
    assert "/arc/home/tester/canfar-runs/cli/outputs" in said
    assert TOKEN not in said


async def test_the_user_name_from_the_tokens_claims(tmp_path, monkeypatch):
    """No session yet to tell the user name: an OIDC access token's preferred_username does."""
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"preferred_username": "alice"}).encode())
    jwt = f"eyJhbGciOiJub25lIn0.{claims.decode().rstrip('=')}.c2ln"
    monkeypatch.delenv("CANFAR_JLAB_STAGE", raising=False)
    monkeypatch.delenv("skaha_sessionid", raising=False)
    monkeypatch.delenv("CANFAR_JLAB_STAGE_ROOT", raising=False)
    monkeypatch.setenv("CANFAR_JLAB_IMAGE", IMAGE)
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    with FakeSkaha(jwt) as skaha, FakeVOSpace(jwt, homes=("home/alice",)) as storage:
        monkeypatch.setenv("CANFAR_JLAB_STORAGE_URL", storage.url)
        monkeypatch.setenv("CANFAR_JLAB_STORAGE_URI", storage.uri)
        credentials = Credentials(
            base_url=skaha.url, source="a test token", kind="explicit", token=Secret(jwt)
        )
        async with SkahaClient(credentials) as client:
            run = await launch(
                LaunchRequest(notebook=str(notebook)), client, RunStore(tmp_path / "runs")
            )
    assert run.staged.folder == f"/arc/home/alice/canfar-runs/{run.name}"


async def test_preview_shows_the_staged_folder_or_why_it_cannot_be(laptop, tmp_path):
    skaha, storage, home = laptop
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    store = RunStore(tmp_path / "runs")
    write_config(home, skaha, storage)
    async with SkahaClient(resolve_credentials()) as client:
        shown = await preview(LaunchRequest(notebook=str(notebook), replicas=2), store, client)
    remote = f"/arc/home/tester/canfar-runs/{shown.name}"
    assert shown.staged_folder == remote and shown.argv[1] == f"{remote}/canfar_runner.py"
    assert shown.replicas[1].env["CANFAR_RUN_OUTPUTS"] == f"{remote}/outputs"
    assert storage.seen == [] and skaha.recorded("POST") == []  # nothing made to find out
    write_config(home, skaha, None)
    async with SkahaClient(resolve_credentials()) as client:
        with pytest.raises(LaunchRefused, match="no storage service is known"):
            await preview(LaunchRequest(notebook=str(notebook)), store, client)
