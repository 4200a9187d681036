"""The run store on disk: atomic run.json, no lost updates, names, and refusals."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from runs_support import client_for, run_to_end, write_notebook

from canfar_jlab.models import ReplicaAttempt, ReplicaStatus
from canfar_jlab.runs import (
    LaunchRefused,
    LaunchRequest,
    Replica,
    Run,
    RunNameInUse,
    RunNotFound,
    RunSpec,
    RunStore,
    launch,
)
from canfar_jlab.runs.launcher import base_name

QUICK = "import os\nprint('replica', os.environ['REPLICA_ID'])"


class JsonWatcher(threading.Thread):
    """Reads a file as fast as it can and records every parse failure and distinct content."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.reads = 0
        self.failures: list[str] = []
        self.versions: set[str] = set()

    def run(self) -> None:
        stopping = False
        while not stopping:
            # Pace the reads (the machine is shared); one last read once told to stop, so the
            # version written just before the stop is always seen.
            stopping = self.stop.wait(0.0005)
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                if self.reads:
                    self.failures.append("run.json vanished")
                continue
            try:
                json.loads(text)
            except ValueError as error:
                self.failures.append(f"{error}: {text[-80:]!r}")
            self.reads += 1
            self.versions.add(text)

    def __enter__(self) -> JsonWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(10)


def synthetic_run(store: RunStore, name: str, replicas: int = 2, **fields) -> Run:
    folder = store.claim(name)
    run = Run(
        name=name,
        notebook="/nowhere/x.ipynb",
        notebook_sha256="0" * 64,
        created=datetime.now(timezone.utc),
        folder=str(folder),
        script="x.py",
        service=fields.pop("service", "local-engine"),
        spec=RunSpec(image="img", replicas=replicas, argv=["python", "r.py", "x.py"]),
        replicas=[Replica(index=i, name=f"{name}-{i}", **fields) for i in range(1, replicas + 1)],
    )
    store.write(run)
    return run


def test_concurrent_writers_lose_nothing_and_readers_always_see_json(tmp_path):
    store = RunStore(tmp_path / "runs")
    synthetic_run(store, "busy-run", replicas=2)
    other = RunStore(tmp_path / "runs")  # another process's view: its own cache

    def writer(which: RunStore, index: int) -> None:
        for n in range(60):
            which.update(
                "busy-run",
                lambda run, n=n: run.replica(index).attempts.append(
                    ReplicaAttempt(status=ReplicaStatus.FAILED, error=f"attempt {n}")
                ),
            )

    with JsonWatcher(store.root / "busy-run" / "run.json") as watcher:
        threads = [
            threading.Thread(target=writer, args=(s, i)) for s, i in ((store, 1), (other, 2))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert watcher.failures == []
    assert watcher.reads > 10 and len(watcher.versions) > 5
    final = RunStore(tmp_path / "runs").get("busy-run")
    for index in (1, 2):
        errors = [a.error for a in final.replica(index).attempts]
        assert errors == [f"attempt {n}" for n in range(60)]
    assert [p.name for p in (store.root / "busy-run").iterdir() if p.name.endswith(".tmp")] == []


async def test_run_json_is_valid_json_at_every_moment_of_a_live_run(engine, tmp_path):
    notebook = write_notebook(tmp_path / "watched.ipynb", [QUICK])
    store = RunStore(tmp_path / "runs")
    with JsonWatcher(store.root / "watched" / "run.json") as watcher:
        async with client_for(engine) as client:
            run = await launch(LaunchRequest(notebook=str(notebook), replicas=4), client, store)
            run, _ = await run_to_end(run.name, client, store)
    assert run.state == "completed"
    assert watcher.failures == []
    states = {json.loads(text)["state"] for text in watcher.versions}
    assert states == {"active", "completed"} and watcher.reads > 10


def test_store_lists_newest_first_and_refuses_path_tricks(tmp_path):
    store = RunStore(tmp_path / "runs")
    synthetic_run(store, "first")
    synthetic_run(store, "second")
    (store.root / "not-a-run").mkdir()
    (store.root / "broken").mkdir()
    (store.root / "broken" / "run.json").write_text("{half")
    assert [run.name for run in store.list()] == ["second", "first"]
    for name in ("../first", "first/..", "", "Second", "x" * 80):
        with pytest.raises(RunNotFound):
            store.get(name)
    with pytest.raises(RunNotFound):
        store.get("not-a-run")
    with pytest.raises(RunNameInUse):
        store.claim("first")


def test_default_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CANFAR_JLAB_RUNS", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere"
    monkeypatch.delenv("CANFAR_JLAB_RUNS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert RunStore().root == tmp_path / "canfar-runs"


def test_run_names_follow_skaha_rules():
    assert base_name(Path("My Notebook (v2).ipynb")) == "my-notebook-v2"
    assert base_name(Path("__.ipynb")) == "run"
    assert base_name(Path("Ünïcode_Ünïcode.ipynb")) == "unicode-unicode"
    long = base_name(Path("a" * 100 + ".ipynb"))
    assert len(long) == 55 and f"{long}-999-256"[:63]
    with pytest.raises(ValueError, match="run name"):
        LaunchRequest(notebook="x.ipynb", name="Has Space")
    with pytest.raises(ValueError, match="longer than 59"):
        LaunchRequest(notebook="x.ipynb", name="a" * 60)


async def test_names_in_use_get_a_suffix_unless_chosen(engine, tmp_path):
    notebook = write_notebook(tmp_path / "again.ipynb", [QUICK])
    store = RunStore(tmp_path / "runs")
    async with client_for(engine) as client:
        first = await launch(LaunchRequest(notebook=str(notebook)), client, store)
        second = await launch(LaunchRequest(notebook=str(notebook)), client, store)
        assert (first.name, second.name) == ("again", "again-2")
        assert first.replica(1).name == "again"  # one replica: the run's own name
        before = {s.id for s in await client.list_sessions()}
        with pytest.raises(RunNameInUse, match="'again' is in use"):
            await launch(LaunchRequest(notebook=str(notebook), name="again"), client, store)
        assert {s.id for s in await client.list_sessions()} == before
        for run in (first, second):
            await run_to_end(run.name, client, store)


async def test_a_runs_folder_skaha_cannot_carry_is_refused(engine, tmp_path):
    notebook = write_notebook(tmp_path / "spaced.ipynb", [QUICK])
    store = RunStore(tmp_path / "my runs")
    async with client_for(engine) as client:
        with pytest.raises(LaunchRefused, match="contains a space"):
            await launch(LaunchRequest(notebook=str(notebook)), client, store)
        with pytest.raises(LaunchRefused, match="no notebook at"):
            await launch(LaunchRequest(notebook=str(tmp_path / "missing.ipynb")), client, store)
    assert not store.root.exists()
