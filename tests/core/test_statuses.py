"""One place says which statuses are active, live and ended (canfar_jlab/statuses.py); the
models answer from it and no other module spells its own set of status names."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest

from canfar_jlab import statuses
from canfar_jlab.models import Replica, ReplicaStatus, SessionStatus

PACKAGE = Path(__file__).parents[2] / "canfar_jlab"
NAMES = set(statuses.REPLICA_STATUSES)


def test_the_enums_are_the_status_names():
    assert tuple(s.value for s in SessionStatus) == statuses.SESSION_STATUSES
    assert {s.value for s in ReplicaStatus} == NAMES
    assert set(statuses.SHOWN_ORDER) == NAMES  # Waiting and TimedOut are shown too


@pytest.mark.parametrize("status", list(SessionStatus))
def test_session_status_answers_from_the_sets(status):
    assert status.is_active == (status.value in statuses.SESSION_ACTIVE)
    assert status.is_live == (status.value in statuses.SESSION_LIVE)
    assert status.is_terminal == (status.value in statuses.SESSION_ENDED)
    assert not (status.is_live and status.is_terminal)


@pytest.mark.parametrize("status", list(ReplicaStatus))
def test_a_replica_is_ended_by_the_one_set(status):
    replica = Replica(index=1, name="r-1", status=status)
    expected = status.value in statuses.REPLICA_ENDED
    assert replica.is_ended == expected
    if status is ReplicaStatus.UNKNOWN:  # vanished: ended once its end is recorded
        ended = replica.model_copy(update={"ended": datetime.now(timezone.utc)})
        assert ended.is_ended


def _status_sets(tree: ast.AST):
    """Literal tuples, sets and lists of two or more strings, all of them status names."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.Set, ast.List)) and len(node.elts) >= 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) == len(node.elts) and all(isinstance(v, str) for v in values):
                if set(values) <= NAMES:
                    yield node.lineno, values


def test_no_other_module_spells_a_set_of_statuses():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "statuses.py":
            continue
        for line, values in _status_sets(ast.parse(path.read_text())):
            found.append(f"{path.relative_to(PACKAGE)}:{line} {values}")
    assert not found, "status sets outside statuses.py: " + "; ".join(found)


def test_the_scan_sees_a_status_set():
    tree = ast.parse('ACTIVE = ("Pending", "Running", "Terminating")')
    assert list(_status_sets(tree)) == [(1, ["Pending", "Running", "Terminating"])]
