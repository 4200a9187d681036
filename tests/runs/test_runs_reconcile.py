"""reconcile(), busy() and delete_run() against the real local engine."""

from __future__ import annotations

from pathlib import Path

from runs_support import client_for, wait_until, without_markers, write_notebook
from test_runs_store import synthetic_run

from canfar_jlab.runs import (
    LaunchRequest,
    ReplicaStatus,
    RunStore,
    busy,
    delete_run,
    launch,
    reconcile,
)

# Prints, then waits for a `go` file in the outputs folder (polling, as a job would).
WAITS_FOR_GO = """
import os, time
from pathlib import Path
print("started", os.environ["REPLICA_ID"], flush=True)
go = Path(os.environ["CANFAR_RUN_OUTPUTS"]) / "go"
while not go.exists():
    time.sleep(0.05)
print("released", os.environ["REPLICA_ID"])
"""


async def test_reconcile_tracks_statuses_archives_logs_and_reports_each_end_once(engine, tmp_path):
    notebook = write_notebook(tmp_path / "gated.ipynb", [WAITS_FOR_GO])
    store = RunStore(tmp_path / "runs")
    foreign = synthetic_run(
        store, "on-canfar", replicas=1, session_id="abc123", status=ReplicaStatus.RUNNING,
        service="https://ws-uv.canfar.net/skaha/v1",
    )  # fmt: skip
    async with client_for(engine) as client:
        first = await reconcile(store, await client.list_sessions(), client)
        assert first.ended == [] and first.owners == {}
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=2), client, store)
        ids = [r.session_id for r in run.replicas]

        async def both(status: str):
            done = await reconcile(store, await client.list_sessions(), client)
            current = next(r for r in done.runs if r.name == run.name)
            return done if all(r.status.value == status for r in current.replicas) else None

        running = await wait_until(lambda: both("Running"), what="both replicas Running")
        assert running.owners == {ids[0]: (run.name, 1), ids[1]: (run.name, 2)}
        assert running.ended == [] and busy(store, client) and busy(store)
        (store.root / run.name / "outputs" / "go").touch()

        reports = []

        async def ended():
            done = await reconcile(store, await client.list_sessions(), client)
            reports.extend(done.ended)
            return not busy(store, client)

        await wait_until(ended, what="the run to end and its logs to be saved")
        path = store.root / run.name / "run.json"
        stamp = path.stat().st_ino, path.stat().st_mtime_ns
        later = await reconcile(store, await client.list_sessions(), client)
        assert later.ended == []
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp  # nothing changed: no write
        fresh_view = await reconcile(RunStore(store.root), await client.list_sessions(), client)
        assert fresh_view.ended == []  # a new watcher's first look is not news
    assert [r.name for r in reports] == [run.name]
    final = store.get(run.name)
    assert final.state == "completed" and final.counts == {"Completed": 2}
    for replica in final.replicas:
        log = without_markers((Path(final.folder) / replica.log).read_text())
        assert log == f"started {replica.index}\nreleased {replica.index}\n"
        assert replica.started is not None and replica.ended >= replica.started
    assert store.get("on-canfar") == foreign  # another service's run is left alone
    assert busy(store)  # ... and still counts when no service is named


async def test_delete_run_saves_logs_and_records_the_replicas_as_deleted(engine, tmp_path):
    notebook = write_notebook(tmp_path / "stopped.ipynb", [WAITS_FOR_GO])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        run = await launch(LaunchRequest(notebook=str(notebook), replicas=2), client, store)
        ids = [r.session_id for r in run.replicas]

        async def printed():
            texts = [(await client.logs(session_id)).text for session_id in ids]
            return all(without_markers(text).startswith("started") for text in texts)

        await wait_until(printed, what="both replicas to print")
        deleted = await delete_run(run.name, client, store)
        assert sorted(deleted) == sorted(ids)
        run = store.get(run.name)
        assert run.state == "deleted"  # for every door (ps --all, REST, magic)
        for replica in run.replicas:
            assert replica.status is ReplicaStatus.FAILED
            assert replica.error == "deleted by the user before it ended"
            text = without_markers((Path(run.folder) / replica.log).read_text())
            assert text == f"started {replica.index}\n"

        async def gone():
            await reconcile(store, await client.list_sessions(), client)
            listed = {s.id for s in await client.list_sessions()}
            return not busy(store, client) and not listed & set(ids)

        await wait_until(gone, what="the sessions to go")
    final = store.get(run.name)
    assert [r.status for r in final.replicas] == [ReplicaStatus.FAILED] * 2
    assert all(r.log and not r.log_partial for r in final.replicas)  # saved at the delete
    assert (Path(final.folder) / final.script).is_file()  # the folder stays


async def test_a_session_that_vanishes_ends_the_run_as_its_report_says(engine, tmp_path):
    notebook = write_notebook(tmp_path / "vanishes.ipynb", [WAITS_FOR_GO])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        run = await launch(LaunchRequest(notebook=str(notebook)), client, store)
        session_id = run.replica(1).session_id

        async def printed():
            return without_markers((await client.logs(session_id)).text).startswith("started")

        await wait_until(printed, what="the replica to print")
        await client.delete(session_id)  # not through the run: nothing saved

        async def ended():
            await reconcile(store, await client.list_sessions(), client)
            return store.get(run.name).state != "active" and not busy(store, client)

        await wait_until(ended, what="the replica to be seen gone")
    replica = store.get(run.name).replica(1)
    assert replica.log_lost or replica.log is not None  # saved if seen ending, else lost
    # The session is gone, but the replica's own report says how it ended (its runner was
    # told to stop); without a report it would be Unknown.
    assert replica.status is ReplicaStatus.FAILED and replica.ended is not None
    assert replica.error and replica.exit_code not in (None, 0)
    assert not busy(store, client)
