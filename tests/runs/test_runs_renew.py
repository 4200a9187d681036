"""Renewing a run's live replicas through Skaha's renew action, on the real local engine (which
applies Skaha's rule: extend to elapsed + renewal period only when less than that remains), from
the core, the CLI and REST's error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fixtures_engine import RunningEngine, wait_for

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.models import Replica, ReplicaStatus, Run, RunSpec
from canfar_jlab.runs import RunStore
from canfar_jlab.runs.reconciler import INTERRUPTED
from canfar_jlab.runs.renew import NothingToRenew, renew_run
from canfar_jlab.skaha import SkahaClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_engine(engine_factory) -> RunningEngine:
    """Sessions with a 2-minute deadline that renew may take to 1 hour."""
    return engine_factory(cores=4, deadline=120, renew_extension=3600)


def start_sleepers(engine: RunningEngine, tmp_path: Path, names: list[str]) -> list[str]:
    script = tmp_path / "sleep.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    ids = []
    with engine.client() as http:
        for name in names:
            query = {"name": name, "image": "images.canfar.net/skaha/base:1"}
            query |= {"cmd": sys.executable, "args": str(script)}
            reply = http.post("/session", params=query)
            assert reply.status_code == 200, reply.text
            ids.append(reply.text.strip())
        wait_for(
            lambda: all(http.get(f"/session/{i}").json()["status"] == "Running" for i in ids),
            what="the sleepers to run",
        )
    return ids


def record(store: RunStore, name: str, ids: list[str], service: str) -> Run:
    replicas = [
        Replica(index=i, name=f"{name}-{i}", session_id=sid, status=ReplicaStatus.RUNNING)
        for i, sid in enumerate(ids, start=1)
    ]
    replicas.append(
        Replica(
            index=len(ids) + 1,
            name=f"{name}-{len(ids) + 1}",
            session_id="zdone123",
            status=ReplicaStatus.COMPLETED,
        )
    )
    store.claim(name)
    run = Run(
        name=name,
        notebook="/tmp/nb.ipynb",
        notebook_sha256="0" * 64,
        created=datetime.now(timezone.utc),
        folder=str(store.root / name),
        script="nb.py",
        service=service,
        spec=RunSpec(image="images.canfar.net/skaha/base:1", replicas=len(replicas)),
        replicas=replicas,
    )
    store.write(run)
    return run


def delete_all(engine: RunningEngine, ids: list[str]) -> None:
    with engine.client() as http:
        for session_id in ids:
            http.delete(f"/session/{session_id}")


async def test_renew_extends_every_live_replica_as_skaha_does(short_engine, tmp_path):
    ids = start_sleepers(short_engine, tmp_path, ["long-1", "long-2"])
    try:
        store = RunStore(tmp_path / "runs")
        run = record(store, "long", ids, "local-engine")
        async with SkahaClient(engine_credentials(short_engine.home, start=False)) as client:
            report = await renew_run(run, client)
            assert [(r.index, r.outcome) for r in report.replicas] == [
                (1, "renewed"),
                (2, "renewed"),
            ]  # replica 3 has ended: not asked
            for replica in report.replicas:
                gained = (replica.expiry - replica.expiry_before).total_seconds()
                assert 3000 < gained < 3600 and replica.note is None
            # Now an hour is left: asking for at least half an hour renews nothing ...
            again = await renew_run(run, client, hours=0.5)
            assert {r.outcome for r in again.replicas} == {"skipped"}
            assert again.replicas[0].note.endswith("h left already")
            # ... and asking for two says the service gives no more than its period.
            more = await renew_run(run, client, hours=2)
            assert {r.outcome for r in more.replicas} == {"unchanged"}
            assert "less than the 2 h asked: the service gives no more" in more.replicas[0].note
            assert more.replicas[0].note.startswith(
                "its deadline is already 1.0 h away; Skaha renews a session only when less than"
            )  # why nothing moved, plainly
            assert more.lines()[0].startswith(f"[1] long-1 {ids[0]}: unchanged until ")
    finally:
        delete_all(short_engine, ids)


async def test_replicas_the_record_has_not_tied_to_a_session_yet_are_renewed(
    short_engine, tmp_path
):
    """A launch records names before creating; until it (or the reconciler) records the session
    ids, the replicas run and print. Renew finds their sessions by name, as adoption does,
    instead of answering "no live replica"."""
    created = datetime.now(timezone.utc) - timedelta(seconds=30)  # recorded, then created
    ids = start_sleepers(short_engine, tmp_path, ["early-1", "early-2"])
    try:
        store = RunStore(tmp_path / "runs")
        store.claim("early")
        run = Run(
            name="early",
            notebook="/tmp/nb.ipynb",
            notebook_sha256="0" * 64,
            created=created,
            folder=str(store.root / "early"),
            script="nb.py",
            service="local-engine",
            spec=RunSpec(image="images.canfar.net/skaha/base:1", replicas=2),
            replicas=[
                Replica(index=1, name="early-1", status=ReplicaStatus.PENDING),  # launching
                Replica(
                    index=2,
                    name="early-2",
                    status=ReplicaStatus.NOT_CREATED,
                    error=INTERRUPTED,
                    ended=created,
                ),  # a launch killed before it recorded the create
            ],
        )
        store.write(run)
        async with SkahaClient(engine_credentials(short_engine.home, start=False)) as client:
            report = await renew_run(run, client)
        assert [(r.index, r.session_id, r.outcome) for r in report.replicas] == [
            (1, ids[0], "renewed"),
            (2, ids[1], "renewed"),
        ]
    finally:
        delete_all(short_engine, ids)


async def test_nothing_to_renew_once_the_replicas_ended(short_engine, tmp_path):
    ids = start_sleepers(short_engine, tmp_path, ["gone-1"])
    store = RunStore(tmp_path / "runs")
    run = record(store, "gone", ids, "local-engine")
    delete_all(short_engine, ids)
    async with SkahaClient(engine_credentials(short_engine.home, start=False)) as client:
        with pytest.raises(NothingToRenew, match="run gone has no live replica to renew"):
            await renew_run(run, client)


def test_cli_renew(short_engine, tmp_path):
    ids = start_sleepers(short_engine, tmp_path, ["cli-1"])
    try:
        store = RunStore(tmp_path / "runs")
        record(store, "cli", ids, "local-engine")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
        environ |= {
            "HOME": str(tmp_path),
            "CANFAR_JLAB_HOME": str(short_engine.home),
            "CANFAR_JLAB_RUNS": str(store.root),
        }

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "canfar_jlab", *args],
                capture_output=True,
                text=True,
                env=environ,
                cwd=REPO,
                timeout=60,
            )

        shown = cli("renew", "cli", "--hours", "0.1")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0] == "run cli:"
        assert shown.stdout.splitlines()[1].startswith(f"[1] cli-1 {ids[0]}: renewed until ")
        as_json = json.loads(cli("renew", "cli", "--json").stdout)
        assert as_json["run"] == "cli" and as_json["replicas"][0]["outcome"] == "unchanged"
        missing = cli("renew", "nope")
        assert missing.returncode == 4 and "nope" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        delete_all(short_engine, ids)
