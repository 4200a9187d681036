"""A site per run: with several logins in ~/.canfar/config.yaml, a run launched with `site`
goes to that server, records it in run.json, and later actions (renew) reach it even after
the active login changed. Two Skaha look-alikes on 127.0.0.1 stand in for two SRCNet sites."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from fake_skaha import FakeSkaha
from runs_support import write_notebook

from canfar_jlab.credentials import CredentialsError, config_sites, resolve_credentials
from canfar_jlab.runs import LaunchRequest, RunStore, delete_run, launch
from canfar_jlab.runs.renew import renew_run
from canfar_jlab.runs.sites import run_client
from canfar_jlab.skaha import open_client

IMAGE = "images.canfar.net/skaha/astroml:latest"


def login(token: str, expiry: float) -> dict:
    return {"mode": "oidc", "token": {"access": token}, "expiry": {"access": expiry}}


@pytest.fixture
def two_sites(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".canfar").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("CANFAR_URL", "CANFAR_TOKEN", "CANFAR_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CANFAR_JLAB_IMAGE", IMAGE)
    with FakeSkaha("token-a") as a, FakeSkaha("token-b") as b:
        expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).timestamp()
        config = {
            "version": 2,
            "active": {"authentication": "cadc", "server": "canfar"},
            "authentication": {
                "cadc": {
                    "mode": "oidc",
                    "token": {"access": "token-a"},
                    "expiry": {"access": expiry},
                },
                "srcnet": {
                    "mode": "oidc",
                    "token": {"access": "token-b"},
                    "expiry": {"access": expiry},
                },
            },
            "servers": {
                "canfar": {"idp": "cadc", "url": f"{a.root}/skaha", "version": "v1"},
                "espSRC": {"idp": "srcnet", "url": f"{b.root}/skaha", "version": "v1"},
            },
        }
        path = home / ".canfar" / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        yield a, b, path


def test_sites_and_their_credentials(two_sites):
    a, b, _ = two_sites
    assert config_sites() == ["canfar", "espSRC"]
    assert resolve_credentials().base_url == a.url
    chosen = resolve_credentials(site="espSRC")
    assert (chosen.base_url, chosen.site) == (b.url, "espSRC")
    assert resolve_credentials(site="srcnet").token.reveal() == "token-b"  # a login's key
    with pytest.raises(CredentialsError, match=r"no site 'nowhere' .*\(sites: canfar, espSRC\)"):
        resolve_credentials(site="nowhere")


async def test_a_run_keeps_its_site_for_later_actions(two_sites, tmp_path):
    a, b, path = two_sites
    notebook = write_notebook(tmp_path / "sweep.ipynb", ["print(1)"])
    store = RunStore(tmp_path / "runs")
    async with await open_client() as client:  # the active site: canfar
        run = await launch(
            LaunchRequest(notebook=str(notebook), replicas=2, site="espSRC"), client, store
        )
    assert run.site == "espSRC" and run.service == b.url
    assert len(b.recorded("POST")) == 2 and a.recorded("POST") == []
    on_disk = json.loads((Path(run.folder) / "run.json").read_text())
    assert on_disk["site"] == "espSRC"

    # The user switches the active login; the run still lives on espSRC.
    config = yaml.safe_load(path.read_text())
    config["active"] = {"authentication": "cadc", "server": "canfar"}
    path.write_text(yaml.safe_dump(config))
    async with await open_client() as client, run_client(store.get(run.name), client) as there:
        assert there.credentials.site == "espSRC" and there is not client
        report = await renew_run(store.get(run.name), there)
    assert {r.outcome for r in report.replicas} == {"unchanged"}  # the fake keeps its expiry
    assert len(b.recorded("POST", "/session/" + run.replicas[0].session_id)) == 1
    assert not [r for r in a.requests if r.method == "POST"]
    # Deleting it from a client of the active site deletes it on its own site.
    async with await open_client() as client:
        deleted = await delete_run(run.name, client, store)
    assert sorted(deleted) == sorted(r.session_id for r in run.replicas)
    assert b.sessions == {} and a.recorded("DELETE") == []


def test_cli_site_flag_and_an_unknown_site(two_sites, tmp_path):
    import os
    import subprocess
    import sys

    a, b, _ = two_sites
    notebook = write_notebook(tmp_path / "cli.ipynb", ["print(1)"])
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
    environ |= {"CANFAR_JLAB_RUNS": str(tmp_path / "runs"), "CANFAR_JLAB_IMAGE": IMAGE}
    environ["CANFAR_JLAB_STAGE"] = "never"  # the fake sites read this folder directly

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "canfar_jlab", *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=Path(__file__).resolve().parents[2],
            timeout=120,
        )

    done = cli("run", str(notebook), "--site", "espSRC", "--json")
    assert done.stderr == ""  # (exit code 1: --json without --follow reports an active run)
    assert json.loads(done.stdout)["site"] == "espSRC" and len(b.recorded("POST")) == 1
    refused = cli("run", str(notebook), "--site", "nowhere")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "no site 'nowhere'" in refused.stderr and a.recorded("POST") == []
    assert not (tmp_path / "runs" / "cli-2").exists()  # refused before anything was made


def test_ps_logs_and_events_of_a_run_go_to_its_own_site(two_sites, tmp_path, monkeypatch, capsys):
    import asyncio

    from canfar_jlab.cli import main

    a, b, _ = two_sites
    notebook = write_notebook(tmp_path / "far.ipynb", ["print(1)"])
    store = RunStore(tmp_path / "runs")
    first, second = asyncio.run(_service_reads_far(store, notebook, b))
    asked_a = [r.path for r in a.recorded("GET") if first in r.path or second in r.path]
    assert asked_a == []  # nothing about the run went to the active site

    # The CLI doors, from the active login, reach the same site.
    monkeypatch.setenv("CANFAR_JLAB_RUNS", str(tmp_path / "runs"))
    b.append_log(second, "and done\n")
    b.set_status(second, "Completed")
    assert main(["ps", "far", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in shown["replicas"]] == ["Completed", "Completed"]
    assert main(["logs", "far-2"]) == 0
    assert capsys.readouterr().out == "[2] still going\n[2] and done\n"
    assert [r.path for r in a.recorded("GET") if second in r.path] == []


async def _service_reads_far(store: RunStore, notebook: Path, b: FakeSkaha) -> tuple[str, str]:
    """Launch run `far` on espSRC from the active site's client; ps, logs and events of it
    through the run service reach espSRC."""
    from canfar_jlab.runs import RunService

    async with await open_client() as client:  # the active site: canfar
        service = RunService(store, client)
        run = await service.launch(
            LaunchRequest(notebook=str(notebook), replicas=2, site="espSRC", name="far")
        )
        first, second = (r.session_id for r in run.replicas)
        b.append_log(first, "hello from espSRC\n")
        b.set_status(first, "Completed")
        b.append_log(second, "still going\n")

        # ps RUN: brought up to date from espSRC's listing, not the active site's
        assert (await service.get("far")).replica(1).status.value == "Completed"
        logs = await service.logs(await service.resolve("far"))
        assert [shown.text for shown in logs] == ["hello from espSRC\n", "still going\n"]
        events = await service.events(await service.resolve("far"))
        assert [(replica.index, text) for replica, text in events] == [(1, ""), (2, "")]
    asked = {(r.path.rsplit("/", 1)[-1], dict(r.query).get("view")) for r in b.recorded("GET")}
    assert {(first, "events"), (second, "events"), (second, "logs")} <= asked
    return first, second
