"""`%canfar renew RUN [--hours H]` in an IPython shell against the real local engine."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from fixtures_engine import wait_for
from magic_support import line

from canfar_jlab.models import Replica, ReplicaStatus, Run, RunSpec
from canfar_jlab.runs import RunStore


def test_renew_a_run_and_its_refusals(shell, runs_root, local_engine, tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(600)\n")
    with local_engine.client() as http:
        query = {"name": "magic-renew", "image": "images.canfar.net/skaha/base:1"}
        reply = http.post("/session", params=query | {"cmd": sys.executable, "args": str(script)})
        session_id = reply.text.strip()
        try:
            wait_for(lambda: http.get(f"/session/{session_id}").json()["status"] == "Running")
            store = RunStore(runs_root)
            store.claim("magic-renew")
            store.write(
                Run(
                    name="magic-renew",
                    notebook="/tmp/nb.ipynb",
                    notebook_sha256="0" * 64,
                    created=datetime.now(timezone.utc),
                    folder=str(runs_root / "magic-renew"),
                    script="nb.py",
                    service="local-engine",
                    spec=RunSpec(image="images.canfar.net/skaha/base:1", replicas=1),
                    replicas=[
                        Replica(
                            index=1,
                            name="magic-renew",
                            session_id=session_id,
                            status=ReplicaStatus.RUNNING,
                        )
                    ],
                )
            )
            shown = line(shell, "renew magic-renew --hours 24")
            assert shown.stderr == ""
            lines = shown.text.splitlines()
            assert lines[0] == "run magic-renew:"
            assert lines[1].startswith(f"[1] magic-renew {session_id}: skipped until ")
            assert lines[1].endswith("h left already)")  # 14 days left, more than 24 h
            assert line(shell, "renew nope").error_line().startswith("canfar: ")
        finally:
            http.delete(f"/session/{session_id}")
