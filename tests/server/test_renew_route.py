"""REST `POST canfar-jlab/runs/NAME/renew` against the suite's local engine: the report, and
the refusals (unknown run 404, nothing live 409, bad hours 400), each one line."""

from __future__ import annotations

import json
import sys

import pytest
import tornado.httpclient
from fixtures_engine import start_engine, wait_for
from server_config import server_config

from canfar_jlab.models import Replica, ReplicaStatus, Run, RunSpec
from canfar_jlab.paths import data_home
from canfar_jlab.runs import RunStore


@pytest.fixture
def jp_server_config(jp_server_config, runs_root):
    return server_config({"runs_root": str(runs_root)})


def _run(store: RunStore, name: str, session_id: str, status: ReplicaStatus) -> None:
    from datetime import datetime, timezone

    store.claim(name)
    store.write(
        Run(
            name=name,
            notebook="/tmp/nb.ipynb",
            notebook_sha256="0" * 64,
            created=datetime.now(timezone.utc),
            folder=str(store.root / name),
            script="nb.py",
            service="local-engine",
            spec=RunSpec(image="images.canfar.net/skaha/base:1", replicas=1),
            replicas=[Replica(index=1, name=name, session_id=session_id, status=status)],
        )
    )


async def _post(jp_fetch, name: str, body: dict) -> tuple[int, dict]:
    try:
        response = await jp_fetch(
            "canfar-jlab", "runs", name, "renew", method="POST", body=json.dumps(body)
        )
    except tornado.httpclient.HTTPClientError as error:
        text = error.response.body.decode()
        assert "Traceback" not in text
        return error.code, json.loads(text)
    return response.code, json.loads(response.body)


async def test_renew_route(jp_fetch, runs_root, tmp_path):
    engine = start_engine(data_home(), cores=8)
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(600)\n")
    with engine.client() as http:
        query = {"name": "kept", "image": "images.canfar.net/skaha/base:1"}
        reply = http.post("/session", params=query | {"cmd": sys.executable, "args": str(script)})
        session_id = reply.text.strip()
        try:
            wait_for(lambda: http.get(f"/session/{session_id}").json()["status"] == "Running")
            store = RunStore(runs_root)
            _run(store, "kept", session_id, ReplicaStatus.RUNNING)
            _run(store, "over", "zdone123", ReplicaStatus.COMPLETED)

            code, report = await _post(jp_fetch, "kept", {"hours": 1000})
            assert code == 200 and report["run"] == "kept" and report["hours"] == 1000
            (replica,) = report["replicas"]
            assert replica["session_id"] == session_id and replica["outcome"] == "unchanged"
            assert replica["note"].startswith("its deadline is already 14.0 days away; Skaha")
            assert replica["expiry"] is not None

            assert await _post(jp_fetch, "over", {}) == (
                409,
                {"message": "run over has no live replica to renew", "reason": None},
            )
            code, error = await _post(jp_fetch, "nope", {})
            assert code == 404
            code, error = await _post(jp_fetch, "kept", {"hours": -1})
            assert code == 400 and error["message"].startswith("hours:")
        finally:
            http.delete(f"/session/{session_id}")
