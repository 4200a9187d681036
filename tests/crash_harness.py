"""The crash trials' shared harness (issue 11): a door (the `canfar-jlab run` process, the
Jupyter server) is SIGKILLed at a random moment of a 10-replica launch, TRIALS times; then
the runs are checked against the engine's own sessions: every session that exists is recorded
in its run, a replica is NotCreated only when no session of its name exists, and re-running
the failed replicas never gives a REPLICA_ID a second session.

Used by tests/runs/test_runs_truth.py (the CLI) and tests/server/test_runs_crash.py (the
server); the `queueing_engine` fixture is in fixtures_engine.py.
"""

from __future__ import annotations

from canfar_jlab.runs import ReplicaStatus, RunStore

TRIALS = 20
REPLICAS = 10


def sessions_by_name(engine, prefix: str) -> dict[str, list[str]]:
    """{session name: [ids]} of the engine's sessions named `prefix...`, from the engine."""
    found: dict[str, list[str]] = {}
    with engine.client() as http:
        for session in http.get("/session").json():
            if session["name"].startswith(prefix):
                found.setdefault(session["name"], []).append(session["id"])
    return found


def check_every_session_recorded(
    store: RunStore, names: list[str], sessions: dict[str, list[str]]
) -> int:
    """Assert that each replica of runs `names` records the one session of its name (or is
    NotCreated when there is none); return how many were never created."""
    never_created = 0
    for name in names:
        for replica in store.get(name).replicas:
            existing = sessions.get(replica.name, [])
            assert len(existing) <= 1, f"{replica.name} has {len(existing)} sessions"
            if existing:
                assert replica.session_id == existing[0], f"{replica.name} not adopted"
                assert replica.status is not ReplicaStatus.NOT_CREATED
            else:
                assert replica.status is ReplicaStatus.NOT_CREATED, replica
                never_created += 1
    return never_created


def doubled(engine, prefix: str) -> list[str]:
    """Session names (`prefix...`) the engine has more than one session of."""
    return [name for name, ids in sessions_by_name(engine, prefix).items() if len(ids) > 1]
