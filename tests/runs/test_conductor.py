"""The run conductor (issue 17) on the real local engine: retries, the timeout backstop, the
--max-running cap and the pilot, conducted by the test's own follow and by the detached
conductor process that launch starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fixtures_engine import wait_for
from runs_support import archived, client_for, run_to_end, wait_until, write_notebook

from canfar_jlab.runs import (
    LaunchRequest,
    ReplicaStatus,
    RunService,
    RunStore,
    launch,
    rerun_failed,
)
from canfar_jlab.runs.conductor import CONDUCTOR_LOG, PILOT_FAILED, retry_delay
from canfar_jlab.runs.sizing import cores_for, ram_for

# Fails its first two tries (counted in a marker file in the run folder), then succeeds.
FAILS_TWICE = """
import os
from pathlib import Path
replica = os.environ["REPLICA_ID"]
marker = Path(os.environ["CANFAR_RUN_DIR"]) / f"tries-{replica}"
tries = int(marker.read_text()) + 1 if marker.exists() else 1
marker.write_text(str(tries))
print(f"replica {replica} try {tries}")
if tries <= 2:
    raise RuntimeError(f"try {tries} fails")
print("finished")
"""


def _tries(run) -> list[str]:
    return [a.why for a in run.replica(1).attempts]


async def test_a_replica_that_fails_twice_succeeds_on_its_second_retry(engine, cli_env, tmp_path):
    notebook = write_notebook(tmp_path / "flaky.ipynb", [FAILS_TWICE])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    async with client_for(engine) as client:
        run = await launch(LaunchRequest(notebook=str(notebook), retries=2), client, store)
        assert run.spec.retries == 2
        run, _ = await run_to_end(run.name, client, store, timeout=180)
    replica = run.replica(1)
    assert run.state == "completed", (replica.status, replica.error)
    assert replica.attempt_count == 3 and _tries(run) == ["retry", "retry"]
    folder = Path(run.folder)
    for number, attempt in enumerate(replica.attempts, start=1):
        assert attempt.status is ReplicaStatus.FAILED and f"try {number} fails" in attempt.error
        assert attempt.log == f"logs/replica-1.attempt-{number}.log"
        assert f"replica 1 try {number}\n" in (folder / attempt.log).read_text()
    assert "replica 1 try 3\nfinished\n" in archived(run, 1)
    # Each retry waited its delay after the attempt before it ended (2 s, then 4 s).
    ends = [a.ended for a in replica.attempts]
    starts = [a.started for a in replica.attempts[1:]] + [replica.started]
    for number in (1, 2):
        assert (starts[number - 1] - ends[number - 1]).total_seconds() >= retry_delay(number) - 1
    ids = {a.session_id for a in replica.attempts} | {replica.session_id}
    assert len(ids) == 3  # three sessions, all named flaky-1
    assert (folder / "replicas" / "1").is_dir()


async def test_a_replica_past_its_timeout_is_stopped_and_recorded_timed_out(
    engine, cli_env, tmp_path
):
    # The replica freezes its runner (so nothing inside it can end the notebook at the
    # timeout): the conductor's backstop stops it after the timeout and its grace.
    freezes = """
import os, signal, time, psutil
runner = psutil.Process().parent()
assert "canfar_runner.py" in " ".join(runner.cmdline()), runner.cmdline()
time.sleep(1)  # the runner prints the cell before
os.kill(runner.pid, signal.SIGSTOP)
time.sleep(300)
"""
    before = "import os\nprint('runner timeout', os.environ['CANFAR_JLAB_TIMEOUT'])"
    notebook = write_notebook(tmp_path / "stuck.ipynb", [before, freezes])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    async with client_for(engine) as client:
        # Long enough for the kernel to start on a loaded machine before the runner's deadline.
        request = LaunchRequest(notebook=str(notebook), timeout_seconds=10, retries=1)
        run = await launch(request, client, store)
        run, _ = await run_to_end(run.name, client, store, timeout=120)
        stopped = run.replica(1).session_id

        async def session_ended():
            listed = {s.id: s for s in await client.list_sessions()}
            return stopped not in listed or listed[stopped].status.is_terminal

        await wait_until(session_ended, 30, "the timed-out session to end")
    replica = run.replica(1)
    assert replica.status is ReplicaStatus.TIMED_OUT and run.state == "failed"
    assert replica.error == "timed out after 10s"
    assert replica.attempts == []  # a timed-out replica is not retried
    # Its log was saved before the stop; the runner was told the timeout (its own deadline).
    assert "runner timeout 10\n" in archived(run, 1)
    took = (replica.ended - replica.started).total_seconds()
    assert took >= 10


async def test_max_running_two_never_has_more_than_two_sessions_of_the_run(
    engine, cli_env, tmp_path
):
    naps = "import os, time\ntime.sleep(1.5)\nprint('replica', os.environ['REPLICA_ID'])"
    notebook = write_notebook(tmp_path / "capped.ipynb", [naps])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    async with client_for(engine) as client:
        request = LaunchRequest(notebook=str(notebook), replicas=5, max_running=2)
        run = await launch(request, client, store)
        names = {r.name for r in run.replicas}
        assert [r.status for r in run.replicas][2:] == [ReplicaStatus.WAITING] * 3
        assert run.replica(3).reason == "waiting in run: 2 of 2 running"
        assert sum(1 for r in run.replicas if r.session_id) == 2
        most, samples = 0, 0
        follow = asyncio.ensure_future(run_to_end(run.name, client, store, timeout=180))
        while not follow.done():
            sessions = await client.list_sessions()
            live = [s for s in sessions if s.name in names and not s.status.is_terminal]
            most, samples = max(most, len(live)), samples + 1
            await asyncio.sleep(0.1)
        run, lines = follow.result()
    assert run.state == "completed", [r.error for r in run.replicas]
    assert most == 2 and samples > 20
    assert sorted(lines) == [1, 2, 3, 4, 5]
    created = sorted(r.submitted for r in run.replicas)
    assert created[2] > created[1]  # the third only after a place was free


PILOT = """
import os, time
replica = int(os.environ["REPLICA_ID"])
if replica == 1:
    block = bytearray(900 * 10**6)  # the pilot's peak: ~1 GB
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(1)
print("replica", replica, "done")
"""


async def test_a_pilot_sizes_the_rest_of_a_five_replica_run(engine, cli_env, tmp_path):
    notebook = write_notebook(tmp_path / "piloted.ipynb", [PILOT])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    async with client_for(engine) as client:
        context = await client.context()
        run = await launch(
            LaunchRequest(notebook=str(notebook), replicas=5, pilot=True), client, store
        )
        assert [r.session_id is not None for r in run.replicas] == [True] + [False] * 4
        assert {r.reason for r in run.replicas[1:]} == {"waiting for the pilot"}
        run, _ = await run_to_end(run.name, client, store, timeout=180)
        sessions = {s.id: s for s in await client.list_sessions()}
    assert run.state == "completed", [r.error for r in run.replicas]
    pilot = run.replica(1)
    ram = ram_for(pilot.peak_rss_bytes, 1.5, context)
    wall = (pilot.ended - pilot.started).total_seconds()
    cores = cores_for(pilot.cpu_seconds, wall, context)
    assert pilot.peak_rss_bytes > 900 * 10**6 and ram >= 2
    assert run.sizing == {
        "cores": cores,
        "ram": ram,
        "peak_rss_bytes": pilot.peak_rss_bytes,
        "cpu_seconds": pilot.cpu_seconds,
        "wall_seconds": wall,
    }
    assert pilot.ram is None and pilot.cores is None
    for replica in run.replicas[1:]:
        assert (replica.ram, replica.cores) == (ram, cores)
        assert replica.submitted >= pilot.ended  # started only after the pilot ended
        session = sessions[replica.session_id]
        # The engine holds RAM in GiB and reports it in decimal GB, as Skaha does.
        assert round(session.requested_ram_gb * 10**9 / 2**30) == ram
        assert session.requested_cores == cores


async def test_a_failed_pilot_starts_nothing_else(engine, cli_env, tmp_path):
    fails = "import os\nif os.environ['REPLICA_ID'] == '1':\n    raise RuntimeError('pilot fails')"
    notebook = write_notebook(tmp_path / "bad-pilot.ipynb", [fails])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    async with client_for(engine) as client:
        request = LaunchRequest(notebook=str(notebook), replicas=4, pilot=True, retries=1)
        run = await launch(request, client, store)
        run, _ = await run_to_end(run.name, client, store, timeout=120)
        names = {s.name for s in await client.list_sessions()}
    assert run.state == "failed"
    pilot = run.replica(1)
    assert pilot.status is ReplicaStatus.FAILED and pilot.attempt_count == 2  # its retry too
    for replica in run.replicas[1:]:
        assert replica.status is ReplicaStatus.NOT_CREATED and replica.error == PILOT_FAILED
        assert replica.session_id is None and replica.name not in names


def test_a_cli_run_without_follow_is_retried_by_the_detached_conductor(cli, cli_env, tmp_path):
    notebook = write_notebook(tmp_path / "unwatched.ipynb", [FAILS_TWICE])
    done = cli("run", str(notebook), "--retries", "2")
    assert done.returncode == 0, done.stderr  # the CLI has exited: nobody follows the run
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])

    async def finished():
        run = store.get("unwatched")  # read from disk only: this test reconciles nothing
        replica = run.replica(1)
        return run if replica.status is ReplicaStatus.COMPLETED and replica.log else None

    run = asyncio.run(wait_until(finished, timeout=180, what="the retried replica to complete"))
    assert run.replica(1).attempt_count == 3 and _tries(run) == ["retry", "retry"]
    log = Path(run.folder) / CONDUCTOR_LOG
    wait_for(lambda: "conductor done" in log.read_text(), 30, "the conductor to exit")
    assert log.read_text().count("creating replica(s) 1") == 2  # the two retries


async def test_rerunning_failed_replicas_of_a_capped_run_keeps_the_cap(engine, cli_env, tmp_path):
    fails_once = (
        "import os, pathlib, time\n"
        "replica = os.environ['REPLICA_ID']\n"
        "marker = pathlib.Path(os.environ['CANFAR_RUN_DIR']) / f'tried-{replica}'\n"
        "time.sleep(1)\n"
        "if not marker.exists():\n"
        "    marker.touch()\n"
        "    raise RuntimeError('the first try fails')\n"
        "print('second try')"
    )
    notebook = write_notebook(tmp_path / "rerun-capped.ipynb", [fails_once])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    async with client_for(engine) as client:
        request = LaunchRequest(notebook=str(notebook), replicas=3, max_running=1)
        run = await launch(request, client, store)
        run, _ = await run_to_end(run.name, client, store, timeout=120)
        assert run.counts == {"Failed": 3}
        names = {r.name for r in run.replicas}
        run = await rerun_failed(run.name, client, store)
        assert [r.status for r in run.replicas][1:] == [ReplicaStatus.WAITING] * 2
        most = 0
        follow = asyncio.ensure_future(run_to_end(run.name, client, store, timeout=120))
        while not follow.done():
            sessions = await client.list_sessions()
            # sessions of the first try have ended: only the re-run's can be live
            live = [s for s in sessions if s.name in names and not s.status.is_terminal]
            most = max(most, len(live))
            await asyncio.sleep(0.1)
        run, _ = follow.result()
    assert run.counts == {"Completed": 3} and most == 1
    assert {a.why for r in run.replicas for a in r.attempts} == {"rerun"}


async def test_a_stopped_run_is_neither_retried_nor_continued(engine, cli_env, tmp_path):
    sleeps = "import time\nprint('started', flush=True)\ntime.sleep(60)"
    notebook = write_notebook(tmp_path / "halted.ipynb", [sleeps])
    store = RunStore(cli_env["CANFAR_JLAB_RUNS"])
    service = RunService(store, client_for(engine))
    async with service.connection as client:
        request = LaunchRequest(notebook=str(notebook), replicas=3, max_running=1, retries=2)
        run = await launch(request, client, store)

        async def running():
            run = await service.get("halted")
            return run.replica(1).status is ReplicaStatus.RUNNING

        await wait_until(running, 60, "replica 1 to run")
        run = await service.stop("halted")
        assert run.state == "stopped"
        log = Path(run.folder) / CONDUCTOR_LOG
        wait_for(lambda: "conductor done" in log.read_text(), 30, "the conductor to exit")
        run = await service.get("halted")
        names = {s.name for s in await client.list_sessions()}
    first = run.replica(1)
    assert first.status is ReplicaStatus.FAILED and first.attempts == []  # not retried
    assert first.error == "stopped by the user before it ended"
    for replica in run.replicas[1:]:
        assert replica.status is ReplicaStatus.NOT_CREATED and replica.session_id is None
        assert replica.error == "stopped by the user before it was created"
        assert replica.name not in names
