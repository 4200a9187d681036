"""Out of memory on the real local engine (issue 17): a replica past its RAM is Failed with
`oom` and "out of memory"; re-running it with more memory gives it twice its peak, rounded up
to the engine's /context options, or is refused with the reason."""

from __future__ import annotations

import asyncio

import pytest
from runs_support import client_for, run_to_end, write_notebook

from canfar_jlab.cli import main
from canfar_jlab.runs import LaunchRequest, NothingToRerun, ReplicaStatus, RunService, RunStore
from canfar_jlab.runs import launch as launch_run
from canfar_jlab.runs.sizing import TooLarge, ram_for

# ~1.5 GB written (bytes repetition touches every page) in the kernel: past a 1 GiB limit.
GREEDY = "data = b'x' * 1_500_000_000\nprint('held', len(data) // 10**6, 'MB')"
GIB = 2**30


async def _out_of_memory(engine, tmp_path, name: str):
    notebook = write_notebook(tmp_path / f"{name}.ipynb", [GREEDY])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        run = await launch_run(
            LaunchRequest(notebook=str(notebook), replicas=1, cores=1, ram=1), client, store
        )
        run, _ = await run_to_end(run.name, client, store)
    return run, store


async def test_a_replica_past_its_ram_reruns_with_twice_its_peak_and_succeeds(engine, tmp_path):
    run, store = await _out_of_memory(engine, tmp_path, "greedy")
    replica = run.replica(1)
    assert replica.status is ReplicaStatus.FAILED and replica.oom, replica
    assert replica.error.startswith("out of memory (OOMKilled): the replica's processes held ")
    assert "over its RAM limit of 1 GiB" in replica.error
    async with client_for(engine) as client:
        service = RunService(store, client)
        context = await client.context()
        rerun = await service.rerun(run.name, more_memory=True)
        again = rerun.replica(1)
        # Killed at its 1 GiB limit: it needed more than the limit, so twice the limit at least.
        expected = ram_for(max(replica.peak_rss_bytes or 0, GIB), 2, context)
        assert again.ram == expected == 3 and again.cores == 1
        assert again.session_id != replica.session_id
        attempt = again.attempts[-1]
        assert attempt.why == "more-memory" and attempt.oom and attempt.status.value == "Failed"
        assert attempt.log == "logs/replica-1.attempt-1.log"
        session = await client.get_session(again.session_id)
        assert session.requested_ram is not None and session.requested_ram.startswith("3")
        run, lines = await run_to_end(run.name, client, store)
        with pytest.raises(NothingToRerun, match="no replica that ran out of memory"):
            await service.rerun(run.name, more_memory=True)
    assert run.state == "completed", run.replica(1).error
    assert "held 1500 MB" in lines[1]
    assert run.replica(1).ram == 3 and not run.replica(1).oom


async def test_more_memory_than_the_service_offers_is_refused_with_the_reason(
    engine_factory, tmp_path, monkeypatch, capsys
):
    small = engine_factory(cores=2, memory_gb=2)  # RAM options 1 and 2 GB
    run, store = await _out_of_memory(small, tmp_path, "too-big")
    assert run.replica(1).oom
    async with client_for(small) as client:
        with pytest.raises(TooLarge) as refused:
            await RunService(store, client).rerun(run.name, more_memory=True)
    message = str(refused.value)
    assert message.startswith(f"replica 1 of {run.name} needs 2.15 GB (twice its peak of 1.07")
    assert message.endswith("but the largest RAM the local engine offers is 2 GB")
    assert store.get(run.name).replica(1).attempts == []  # nothing was touched
    # The CLI says the same, as a refusal.
    monkeypatch.setenv("CANFAR_JLAB_HOME", str(small.home))
    monkeypatch.setenv("CANFAR_JLAB_RUNS", str(store.root))
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["rerun", run.name, "--more-memory"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
