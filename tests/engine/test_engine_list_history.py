"""The session list does not grow with history: finished sessions are listed for an hour (as
Skaha lists them), older ones are served by id until the retention sweep forgets them."""

from __future__ import annotations

import time

from fixtures_engine import start_engine

from canfar_jlab.engine.layout import EngineLayout
from canfar_jlab.engine.records import COMPLETED, SessionRecord
from canfar_jlab.engine.session_store import SessionStore


def _history(home, count: int, ended_ago: float, prefix: str) -> list[str]:
    """`count` sessions that finished `ended_ago` seconds ago, written as the engine would."""
    layout = EngineLayout(home)
    layout.ensure_dirs()
    store = SessionStore(layout.database)
    now = time.time()
    ids = []
    for i in range(count):
        rec = SessionRecord(
            id=f"{prefix}{i:07d}",
            name=f"old-{i}",
            image="images.canfar.net/skaha/base:latest",
            type="headless",
            userid="tester",
            cmd="python",
            args=["-c", "print(1)"],
            env=[],
            cores=1,
            ram=None,
            gpus=None,
            created=now - ended_ago - 60,
            deadline=86400,
            status=COMPLETED,
            started=now - ended_ago - 50,
            ended=now - ended_ago,
            exit_code=0,
            end_reason="exit",
        )
        store.insert(rec)
        store.update(rec)
        ids.append(rec.id)
    store.close()
    return ids


def test_ten_thousand_old_sessions_cost_a_list_nothing(tmp_path_factory) -> None:
    empty_home = tmp_path_factory.mktemp("no-history")
    full_home = tmp_path_factory.mktemp("history")
    old = _history(full_home, 10_000, ended_ago=2 * 3600, prefix="o")
    recent = _history(full_home, 3, ended_ago=10 * 60, prefix="r")
    engines = [start_engine(empty_home, retention=7 * 86400), start_engine(full_home)]
    try:
        with engines[0].client() as none, engines[1].client() as full:
            assert none.get("/session").content == b"[]"
            listed = full.get("/session").json()
            # Only the three that ended ten minutes ago are listed; 10,000 older ones are not.
            assert sorted(s["id"] for s in listed) == recent
            assert full.get("/session", params={"status": "Completed"}).json() == listed
            # ... and are still served by id, with their logs (empty here).
            reply = full.get(f"/session/{old[1234]}")
            assert reply.status_code == 200 and reply.json()["status"] == "Completed"
            assert full.get(f"/session/{old[0]}", params={"view": "logs"}).status_code == 200
    finally:
        for running in engines:
            running.stop()


def test_a_session_that_just_ended_is_listed(engine) -> None:
    with engine.client() as client:
        reply = client.post(
            "/session",
            data={
                "name": "ends-now",
                "image": "images.canfar.net/skaha/base:latest",
                "cmd": "true",
            },
        )
        session_id = reply.text.strip()
        deadline = time.monotonic() + 30
        while True:
            listed = {s["id"]: s["status"] for s in client.get("/session").json()}
            if listed.get(session_id) in ("Completed", "Failed"):
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.delete(f"/session/{session_id}")
