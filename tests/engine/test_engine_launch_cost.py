"""What a replica costs beyond itself: the supervisor records in exit.json the CPU it spent on
each replica, by phase and in all, and the replica's own, which bench/engine_launch.py sums to
say where launch CPU goes."""

from __future__ import annotations

import json

from engine_helpers import create, delete, wait_status


def test_exit_record_says_what_the_supervisor_and_the_replica_cost(engine) -> None:
    with engine.client() as client:
        session_id = create(client, "costed", "exit", "0")
        assert wait_status(client, session_id, "Completed", "Failed") == "Completed"
        exit_file = engine.home / "engine" / "sessions" / session_id / "exit.json"
        cpu = json.loads(exit_file.read_text())["cpu"]
        delete(client, session_id)
    assert cpu["replica"] > 0  # a Python interpreter ran
    assert 0 < cpu["supervisor"] < cpu["replica"]  # the supervisor is lighter than it
    assert 0 < cpu["starting"] <= cpu["supervisor"]  # its start, until the replica ran
    phases = ("starting", "logs", "memory", "ending")
    assert abs(sum(cpu[phase] for phase in phases) - cpu["supervisor"]) < 1e-9
