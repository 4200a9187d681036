"""Runs on a Skaha-like service (CANFAR cannot run here: tests/fake_skaha.py stands in over
real HTTP): the image must be chosen, replicas run `python3` from the image, whole logs are
archived, and a re-run whose create reply is lost is reconciled by name, never sent twice."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from fake_skaha import FakeSkaha, LoseReply
from runs_support import cell, write_notebook

from canfar_jlab.credentials import Credentials, Secret
from canfar_jlab.runs import (
    LaunchRefused,
    LaunchRequest,
    ReplicaStatus,
    RunStore,
    launch,
    reconcile,
    rerun_failed,
)
from canfar_jlab.skaha import RetryPolicy, SkahaClient

TOKEN = "fake-token-0123456789abcdef"
IMAGE = "images.canfar.net/skaha/astroml:latest"


def client_for(fake: FakeSkaha) -> SkahaClient:
    credentials = Credentials(
        base_url=fake.url, source="a test token", kind="environment", token=Secret(TOKEN)
    )
    return SkahaClient(
        credentials, reconcile_delay=0.05, retry=RetryPolicy(attempts=2, base_delay=0.01)
    )


async def test_an_image_is_required_and_replicas_run_python3_from_it(tmp_path, monkeypatch):
    notebook = write_notebook(
        tmp_path / "sweep.ipynb", [cell("n = 1", "parameters"), "print(n * 2)"]
    )
    store = RunStore(tmp_path / "runs")
    request = LaunchRequest(
        notebook=str(notebook), replicas=2, cores=2, env={"SURVEY": "cfht"}, parameters={"n": 5}
    )
    monkeypatch.delenv("CANFAR_JLAB_IMAGE", raising=False)
    with FakeSkaha(TOKEN) as fake:
        async with client_for(fake) as client:
            with pytest.raises(LaunchRefused, match=r"choose an image to run on 127\.0\.0\.1"):
                await launch(request, client, store)
            assert fake.recorded("POST") == [] and not store.root.exists()
            monkeypatch.setenv("CANFAR_JLAB_IMAGE", IMAGE)
            run = await launch(request, client, store)
        posts = [dict(parse_qsl(r.body.decode())) for r in fake.recorded("POST")]
        sessions = sorted(fake.sessions.values(), key=lambda s: s["name"])
    assert run.service == fake.url and run.spec.image == IMAGE
    assert [p["cores"] for p in posts] == ["2", "2"] and "ram" not in posts[0]
    assert [s["name"] for s in sessions] == ["sweep-1", "sweep-2"]
    for index, session in enumerate(sessions, start=1):
        assert session["cmd"] == "python3"
        assert session["args"] == f"{run.folder}/canfar_runner.py {run.folder}/sweep.py"
        assert dict(item.split("=", 1) for item in session["env"]) == {
            "SURVEY": "cfht",
            "OMP_NUM_THREADS": "2",
            "CANFAR_RUN_DIR": run.folder,
            "CANFAR_RUN_OUTPUTS": f"{run.folder}/outputs",
            "CANFAR_RUN_NAME": "sweep",
            "REPLICA_ID": str(index),
            "REPLICA_COUNT": "2",
        }
    assert "n = 5" in (store.root / "sweep" / "sweep.py").read_text()


async def test_whole_logs_are_archived_and_a_lost_rerun_reply_is_found_by_name(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CANFAR_JLAB_IMAGE", IMAGE)
    notebook = write_notebook(tmp_path / "job.ipynb", ["print('hi')"])
    store = RunStore(tmp_path / "runs")
    with FakeSkaha(TOKEN) as fake:
        async with client_for(fake) as client:
            run = await launch(LaunchRequest(notebook=str(notebook), replicas=3), client, store)
            first, second, third = (r.session_id for r in run.replicas)
            fake.append_log(first, "one\n")
            fake.set_status(first, "Completed")
            fake.append_log(second, "Traceback (most recent call last):\nRuntimeError: boom\n")
            fake.set_status(second, "Failed")
            await reconcile(store, await client.list_sessions(), client)
            run = store.get("job")
            assert [r.status.value for r in run.replicas] == ["Completed", "Failed", "Running"]
            assert (store.root / "job" / run.replica(1).log).read_text() == "one\n"
            assert run.replica(2).error == "RuntimeError: boom"

            fake.fail_next("POST session", LoseReply())  # created, but the reply never comes
            run = await rerun_failed("job", client, store)
            named = fake.sessions_named("job-2")
        assert fake.creates == 4  # three, then replica 2 once: never sent twice
    again = run.replica(2)
    assert again.status is ReplicaStatus.PENDING and again.error is None
    assert {s["id"] for s in named} == {second, again.session_id}
    retry = next(s for s in named if s["id"] == again.session_id)
    env = dict(item.split("=", 1) for item in retry["env"])
    assert (env["REPLICA_ID"], env["REPLICA_COUNT"]) == ("2", "3")
    assert [(a.session_id, a.log) for a in again.attempts] == [
        (second, "logs/replica-2.attempt-1.log")
    ]
    assert "RuntimeError: boom" in (store.root / "job" / again.attempts[0].log).read_text()
    assert [run.replica(i).session_id for i in (1, 3)] == [first, third]


OOM_EVENTS = (
    "TYPE      REASON      AGE   FROM      MESSAGE\n"
    "Warning   OOMKilled   5s    kubelet   Container job exited with exit code 137\n"
)


async def test_a_replica_killed_for_memory_on_skaha_is_out_of_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("CANFAR_JLAB_IMAGE", IMAGE)
    notebook = write_notebook(tmp_path / "big.ipynb", ["print('hi')"])
    store = RunStore(tmp_path / "runs")
    with FakeSkaha(TOKEN) as fake:
        async with client_for(fake) as client:
            run = await launch(LaunchRequest(notebook=str(notebook), replicas=2), client, store)
            first, second = (r.session_id for r in run.replicas)
            # Both killed from outside mid-run (their reports never ended); the service says
            # why for the first only.
            for index, session_id in ((1, first), (2, second)):
                folder = store.root / "big" / "replicas" / str(index)
                folder.mkdir(parents=True)
                report = {"session_id": session_id, "state": "running", "started": None}
                (folder / "status.json").write_text(json.dumps(report))
                fake.append_log(session_id, "working\n")
                fake.set_status(session_id, "Failed")
            fake.events[first] = OOM_EVENTS
            await reconcile(store, await client.list_sessions(), client)
    run = store.get("big")
    assert run.replica(1).oom and run.replica(1).error == (
        "out of memory: Warning OOMKilled 5s kubelet Container job exited with exit code 137"
    )
    assert not run.replica(2).oom
    assert run.replica(2).error.startswith("killed from outside: its last heartbeat was at")
