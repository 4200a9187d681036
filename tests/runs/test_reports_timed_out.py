"""A replica past its run's timeout on the real local engine (issue 17): the runner ends it at
CANFAR_JLAB_TIMEOUT and reports "timed_out"; the run record says TimedOut, whatever the session's
own status is, and `rerun --failed` runs it again."""

from __future__ import annotations

import json
import time
from pathlib import Path

from runs_support import client_for, run_to_end, wait_until, write_notebook

from canfar_jlab.runs import LaunchRequest, ReplicaStatus, RunStore, launch, rerun_failed

SLEEPS = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\nprint('woke up')"


async def test_a_replica_past_a_3s_timeout_ends_timed_out(engine, tmp_path):
    notebook = write_notebook(tmp_path / "sleepy.ipynb", [SLEEPS])
    store = RunStore(tmp_path / "runs")
    request = LaunchRequest(notebook=str(notebook), env={"CANFAR_JLAB_TIMEOUT": "3"})
    async with client_for(engine) as client:
        started = time.monotonic()
        run = await launch(request, client, store)
        run, _ = await run_to_end(run.name, client, store, timeout=60)
        took = time.monotonic() - started
        replica = run.replica(1)

        async def session_ended():
            session = await client.get_session(replica.session_id)
            return session if session.status.value in ("Completed", "Failed") else None

        session = await wait_until(session_ended, timeout=30, what="the session to end")
        assert session.status.value == "Failed"  # the service only knows it exited 124
        ran = (replica.ended - replica.started).total_seconds()
        assert 3 <= ran < 15, ran  # from the runner's start to its report's end
        assert replica.status is ReplicaStatus.TIMED_OUT, replica
        assert replica.error == "timed out after 3s" and replica.exit_code == 124
        assert replica.is_failed and run.state == "failed"
        assert took < 30  # seconds, not the 60 the cell sleeps
        folder = Path(run.folder)
        report = json.loads((folder / "replicas" / "1" / "status.json").read_text())
        assert report["state"] == "timed_out"
        log = (folder / replica.log).read_text()
        assert "(timed out after 3s, CANFAR_JLAB_TIMEOUT); the cells after it did not run" in log
        assert "woke up" not in log.splitlines()  # (the traceback quotes the source)

        again = await rerun_failed(run.name, client, store)  # TimedOut counts as failed
        assert again.replica(1).attempts[0].status is ReplicaStatus.TIMED_OUT
        run, _ = await run_to_end(run.name, client, store, timeout=60)
    assert run.replica(1).status is ReplicaStatus.TIMED_OUT
