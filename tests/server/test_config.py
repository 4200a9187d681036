"""The config route: the version handshake the sidebar relies on."""

from __future__ import annotations

import json

import canfar_jlab


async def test_config_reports_version_and_backend(jp_fetch, jp_base_url):
    # pytest-jupyter's default base_url is "/a%40b/": a route built without it would 404 here.
    assert jp_base_url != "/"
    response = await jp_fetch("canfar-jlab", "config")
    assert response.code == 200
    payload = json.loads(response.body)
    assert payload["version"] == canfar_jlab.__version__
    assert payload["backend"]["kind"] in {"local", "skaha"}
