"""REST with several logins in ~/.canfar/config.yaml: `GET config` lists the sites for the
form, and a launch with `site` goes to that site and records it. Two Skaha look-alikes on
127.0.0.1 stand in for two SRCNet sites."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

import nbformat
import pytest
import yaml
from credentials_in_use import CREDENTIALS_IN_USE
from fake_skaha import FakeSkaha
from server_config import server_config

TOKEN_A, TOKEN_B = ("site-" + secrets.token_hex(8) for _ in range(2))
CREDENTIALS_IN_USE.update({TOKEN_A, TOKEN_B})


@pytest.fixture
def jp_server_config(jp_server_config, runs_root):
    return server_config({"runs_root": str(runs_root)})


@pytest.fixture
def sites(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".canfar").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CANFAR_JLAB_IMAGE", "images.canfar.net/skaha/astroml:latest")
    with FakeSkaha(TOKEN_A) as a, FakeSkaha(TOKEN_B) as b:
        expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).timestamp()

        def login(token: str) -> dict:
            return {"mode": "oidc", "token": {"access": token}, "expiry": {"access": expiry}}

        config = {
            "version": 2,
            "active": {"authentication": "cadc", "server": "canfar"},
            "authentication": {"cadc": login(TOKEN_A), "srcnet": login(TOKEN_B)},
            "servers": {
                "canfar": {"idp": "cadc", "url": f"{a.root}/skaha", "version": "v1"},
                "espSRC": {"idp": "srcnet", "url": f"{b.root}/skaha", "version": "v1"},
            },
        }
        path = home / ".canfar" / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        yield a, b


async def test_config_lists_sites_and_a_launch_goes_to_the_chosen_one(jp_fetch, jp_root_dir, sites):
    a, b = sites
    config = json.loads((await jp_fetch("canfar-jlab", "config")).body)
    assert config["sites"] == ["canfar", "espSRC"]
    assert config["backend"]["credential"]["site"] == "canfar"

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nb, jp_root_dir / "job.ipynb")
    body = {"notebook": "job.ipynb", "replicas": 2, "site": "espSRC"}
    response = await jp_fetch("canfar-jlab", "runs", method="POST", body=json.dumps(body))
    run = json.loads(response.body)
    assert response.code == 201 and run["site"] == "espSRC" and run["service"] == b.url
    assert len(b.recorded("POST")) == 2 and a.recorded("POST") == []
