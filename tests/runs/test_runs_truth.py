"""One truthful run record: times and outcomes from the replicas' own reports, crash-safe
launches, stop vs delete, re-run from the notebook, names of every kind, one runs root.

Replicas here write `replicas/<i>/status.json` themselves, as the contract's runner does, so
the reader is tested against real replicas on the real engine."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from crash_harness import TRIALS, check_every_session_recorded, doubled, sessions_by_name
from fixtures_engine import wait_for
from runs_support import REPO, client_for, printed, wait_until, without_markers, write_notebook
from status_report import KILLED, SLEEPS_3, assert_real_run, engine_lifetime

from canfar_jlab.runs import (
    Connection,
    LaunchRequest,
    ReplicaStatus,
    RunService,
    RunStore,
)


def _engine_sessions(engine, prefix: str) -> list[dict]:
    with engine.client() as http:
        return [s for s in http.get("/session").json() if s["name"].startswith(prefix)]


def _all_ended(engine, prefix: str, count: int) -> bool:
    sessions = _engine_sessions(engine, prefix)
    return len(sessions) == count and all(s["status"] in ("Completed", "Failed") for s in sessions)


def _seconds(replica: dict) -> float:
    started = datetime.fromisoformat(replica["started"])
    ended = datetime.fromisoformat(replica["ended"])
    return (ended - started).total_seconds()


def test_an_unwatched_cli_run_read_late_has_its_real_duration(cli, cli_here, engine, tmp_path):
    notebook = write_notebook(tmp_path / "sleeps.ipynb", [SLEEPS_3])
    done = cli("run", str(notebook), "-r", "2", "--name", "sleeps")
    assert done.returncode == 0, done.stderr
    run_folder = tmp_path / "runs" / "sleeps"
    ids = [r["session_id"] for r in json.loads((run_folder / "run.json").read_text())["replicas"]]
    real = {session: engine_lifetime(engine.home, session) for session in ids}
    time.sleep(5)  # nobody looks for a while: the record must not take the time it is read
    code, out, err = cli_here("ps", "sleeps", "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["state"] == "completed"
    for replica in run["replicas"]:
        assert _seconds(replica) >= 3.0, replica
        # The real run, as the engine measured the replica's process: started, ended and
        # their difference, each to 1 s.
        assert_real_run(replica, real[replica["session_id"]])
        assert replica["exit_code"] == 0
        assert replica["peak_rss_bytes"] > 10 * 2**20
        assert replica["cpu_seconds"] > 0
        assert replica["cell"]["index"] == replica["cell"]["total"] == 1
        assert replica["attempt_count"] == 1
        assert replica["executed_notebook"] == f"replicas/{replica['index']}/executed.ipynb"
    assert run["duration_seconds"] >= 3.0
    code, table, _ = cli_here("ps", "sleeps-2")  # the table shows the same facts
    assert code == 0 and "MiB" in table and "1/1" in table


async def test_a_replica_killed_from_outside_is_reported_with_its_heartbeat_and_oom(
    engine, tmp_path
):
    notebook = write_notebook(tmp_path / "killed.ipynb", [KILLED])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        service = RunService(store, client)
        run = await service.launch(
            LaunchRequest(notebook=str(notebook), replicas=3, ram=1, name="killed")
        )

        async def ended():
            return (await service.get(run.name)).state != "active"

        await wait_until(ended, timeout=120, what="the run to end")
    final = store.get("killed")
    likely, plain, known = final.replicas
    assert likely.status is plain.status is known.status is ReplicaStatus.FAILED
    assert likely.oom and not plain.oom and known.oom
    assert "OOMKilled" in known.error  # the engine's own word for its kill
    assert likely.error.startswith("likely out of memory: its last heartbeat was at "), likely
    assert plain.error.startswith("killed from outside: its last heartbeat was at "), plain
    assert "in code cell 1 of 1" in plain.error
    assert likely.ended == likely.heartbeat


# ---------------------------------------------------------------- crash-safe launch

TINY = "print('hello')"


def _cli_process(environ: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "canfar_jlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environ,
        cwd=REPO,
    )


def test_killing_the_cli_mid_launch_never_loses_or_doubles_a_replica(
    queueing_engine, tmp_path, monkeypatch
):
    from canfar_jlab.cli import main

    runs = tmp_path / "runs"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
    environ.update(
        CANFAR_JLAB_HOME=str(queueing_engine.home), CANFAR_JLAB_RUNS=str(runs), HOME=str(tmp_path)
    )
    for name in ("CANFAR_JLAB_HOME", "CANFAR_JLAB_RUNS"):
        monkeypatch.setenv(name, environ[name])
    notebook = write_notebook(tmp_path / "tiny.ipynb", [TINY])
    chance = random.Random(11)
    names = [f"crash-{trial}" for trial in range(TRIALS)]
    for name in names:
        process = _cli_process(environ, "run", str(notebook), "-r", "10", "--name", name)
        record = runs / name / "run.json"
        # A random moment of the launch: from its record appearing (every replica named,
        # nothing created yet) to after its last create.
        wait_for(lambda r=record, p=process: r.exists() or p.poll() is not None, timeout=60)
        time.sleep(chance.uniform(0.0, 0.25))
        process.send_signal(signal.SIGKILL)
        process.wait()

    # After the crash: one listing through any door.
    assert main(["ps", "--all"]) == 0
    store = RunStore(runs)
    sessions = sessions_by_name(queueing_engine, "crash-")
    never_created = check_every_session_recorded(store, names, sessions)
    for name in names:
        assert main(["rerun", name, "--failed"]) == 0
    assert doubled(queueing_engine, "crash-") == []
    for name in names:
        assert all(r.session_id for r in store.get(name).replicas)
    print(f"{never_created} of {TRIALS * 10} replicas were not created before the kill")


# ---------------------------------------------------------------- connection


async def test_a_connection_finds_a_restarted_engine_for_every_call(engine_factory, tmp_path):
    from canfar_jlab.credentials import engine_credentials
    from canfar_jlab.engine.control import ensure_engine, stop_engine

    running = engine_factory(cores=2)
    notebook = write_notebook(tmp_path / "tiny.ipynb", [TINY])
    store = RunStore(tmp_path / "runs")
    connection = Connection(resolve=lambda url: engine_credentials(running.home))
    async with connection:
        service = RunService(store, connection)
        assert await connection.list_sessions() == []
        before = connection.credentials.base_url
        await asyncio.to_thread(stop_engine, running.home)
        await asyncio.to_thread(ensure_engine, running.home)
        preview = await service.preview(LaunchRequest(notebook=str(notebook), replicas=2))
        assert preview.image
        run = await service.launch(LaunchRequest(notebook=str(notebook), replicas=2))
        assert connection.credentials.base_url != before
        assert all(r.session_id for r in run.replicas)


# ---------------------------------------------------------------- stop, delete, names


async def test_stop_keeps_the_record_and_logs_delete_marks_it_deleted(engine, tmp_path):
    waits = "import time\nprint('started', flush=True)\ntime.sleep(120)"
    notebook = write_notebook(tmp_path / "waits.ipynb", [waits])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        service = RunService(store, client)
        run = await service.launch(LaunchRequest(notebook=str(notebook), replicas=2))

        async def printed():
            shown = await service.logs(await service.resolve(run.name))
            return all(without_markers(each.text).startswith("started") for each in shown)

        await wait_until(printed, what="both replicas to print")
        one = await service.stop(run.name, [1])  # RUN-1 alone
        assert one.state == "active" and one.replica(1).status is ReplicaStatus.FAILED
        stopped = await service.stop(run.name)
        assert stopped.state == "stopped"
        for replica in stopped.replicas:
            log = (Path(run.folder) / replica.log).read_text()
            assert without_markers(log) == "started\n"
        assert (await service.get(run.name)).state == "stopped"
        await service.delete(run.name)
        assert (await service.get(run.name)).state == "deleted"
        names = [r.name for r in await service.runs(include_deleted=True)]
        assert run.name in names


async def test_every_kind_of_name_resolves_and_nothing_matching_is_one_line(engine, tmp_path):
    notebook = write_notebook(tmp_path / "names.ipynb", [TINY])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        service = RunService(store, client)
        run = await service.launch(LaunchRequest(notebook=str(notebook), replicas=3))
        by_run = await service.resolve(run.name)
        assert by_run.run.name == run.name and by_run.index is None
        by_replica = await service.resolve(f"{run.name}-3")
        assert (by_replica.run.name, by_replica.index) == (run.name, 3)
        by_session = await service.resolve(run.replica(2).session_id)
        assert (by_session.run.name, by_session.index) == (run.name, 2)
        with pytest.raises(Exception) as info:
            await service.resolve("nothing-here-9")
        message = str(info.value)
        assert message.startswith("no run named 'nothing-here-9', no replica of that name and")
        assert "\n" not in message and "404" not in message


def test_cli_logs_ps_and_stop_take_replica_names(cli, cli_here, engine, tmp_path):
    notebook = write_notebook(tmp_path / "named.ipynb", [TINY])
    done = cli("run", str(notebook), "-r", "2", "--name", "named", "--follow")
    assert done.returncode == 0, done.stderr
    code, out, err = cli_here("logs", "named-2")
    assert code == 0 and "[2] hello" in printed(out), err
    assert all(line.startswith("[2] ") for line in printed(out))  # replica 2's log only
    code, out, _ = cli_here("ps", "named-1", "--json")
    assert code == 0 and json.loads(out)["name"] == "named"
    session = json.loads(out)["replicas"][0]["session_id"]
    code, out, _ = cli_here("logs", session)
    assert code == 0 and "[1] hello" in printed(out)
    assert all(line.startswith("[1] ") for line in printed(out))
    code, _, err = cli_here("logs", "named-9")
    assert code == 4 and err.startswith("canfar-jlab: no run named 'named-9'")
    assert "HTTP" not in err
    code, out, _ = cli_here("stop", "named")
    assert code == 0 and out.startswith("stopped run named: 2/2 Completed")
    code, out, _ = cli_here("delete", "named")
    assert code == 0
    runs = json.loads(cli_here("ps", "--all", "--runs", "--json")[1])
    assert [(r["name"], r["state"]) for r in runs] == [("named", "deleted")]


def test_rerun_from_the_notebook_runs_the_fixed_cell(cli, cli_here, tmp_path):
    broken = "raise RuntimeError('broken cell')"
    notebook = write_notebook(tmp_path / "fixme.ipynb", [broken])
    done = cli("run", str(notebook), "-r", "1", "--name", "fixme", "--follow")
    assert done.returncode == 1
    write_notebook(notebook, ["print('fixed')"])
    again = cli("rerun", "fixme", "--failed", "--follow")
    assert "changed since run fixme was launched; running the launch snapshot" in again.stderr
    assert again.returncode == 1  # the snapshot is still broken
    fixed = cli("rerun", "fixme", "--failed", "--from-notebook", "--follow")
    assert fixed.returncode == 0, fixed.stderr
    assert "[1] fixed" in fixed.stdout
    run = json.loads(cli_here("ps", "fixme", "--json")[1])
    replica = run["replicas"][0]
    assert replica["attempt_count"] == 3
    logs = [a["log"] for a in replica["attempts"]] + [replica["log"]]
    assert logs == [
        "logs/replica-1.attempt-1.log",
        "logs/replica-1.attempt-2.log",
        "logs/replica-1.log",
    ]
    texts = [(tmp_path / "runs" / "fixme" / log).read_text() for log in logs]
    assert "broken cell" in texts[0] and "broken cell" in texts[1] and "fixed" in texts[2]


# ---------------------------------------------------------------- one runs root


def test_one_runs_root_setting_for_every_door(tmp_path, monkeypatch):
    from canfar_jlab.cli import main
    from canfar_jlab.runs import default_root

    monkeypatch.delenv("CANFAR_JLAB_RUNS", raising=False)
    monkeypatch.delenv("CANFAR_JLAB_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / "canfar-runs"
    assert main(["config", "set", "runs-root", str(tmp_path / "lab" / "canfar-runs")]) == 0
    assert default_root() == tmp_path / "lab" / "canfar-runs"
    assert RunStore().root == tmp_path / "lab" / "canfar-runs"
    settings = json.loads((tmp_path / "config" / "canfar-jlab" / "settings.json").read_text())
    assert settings == {"runs-root": str(tmp_path / "lab" / "canfar-runs")}
    # --if-unset (make lab) leaves a user's choice alone; the env var overrides the setting.
    assert main(["config", "set", "runs-root", str(tmp_path / "other"), "--if-unset"]) == 0
    assert default_root() == tmp_path / "lab" / "canfar-runs"
    monkeypatch.setenv("CANFAR_JLAB_RUNS", str(tmp_path / "env-runs"))
    assert default_root() == tmp_path / "env-runs"
    monkeypatch.delenv("CANFAR_JLAB_RUNS")
    assert main(["config", "unset", "runs-root"]) == 0
    assert default_root() == tmp_path / "home" / "canfar-runs"
