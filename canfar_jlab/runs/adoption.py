"""Adopting by name: a replica whose create was sent but whose session was never recorded (its
launcher died, or the service's answer was lost) takes the session the service lists under its
name. Shared by the launch (never create twice), the reconciler and the renewal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..models import Replica, ReplicaStatus, Run, Session

# A replica recorded NotCreated by an interrupted launch is adopted by name this long after.
ADOPT_WINDOW = timedelta(hours=2)
CLOCK_SLACK = timedelta(seconds=5)
INTERRUPTED = "the launch was interrupted before this replica was created"


def may_adopt(run: Run) -> bool:
    """A recent run with a replica recorded NotCreated by an interrupted launch: a session of
    that name showing up later is still adopted (a service's listing may lag its creates)."""
    recent = datetime.now(timezone.utc) - run.created < ADOPT_WINDOW
    return recent and any(awaiting_adoption(replica) for replica in run.replicas)


def awaiting_adoption(replica: Replica) -> bool:
    return replica.session_id is None and (
        replica.status is ReplicaStatus.PENDING
        or (replica.status is ReplicaStatus.NOT_CREATED and replica.error == INTERRUPTED)
    )


def adopt_by_name(run: Run, replica: Replica, listed: dict[str, Session]) -> Session | None:
    """The session the service holds under this replica's name that no replica or attempt of
    the run has recorded and that is not older than the replica's create (names are chosen
    free of live sessions, but a finished one of an earlier run may linger)."""
    known = {
        session_id
        for each in run.steps
        for session_id in (each.session_id, *(a.session_id for a in each.attempts))
        if session_id
    }
    since = (replica.submitted or run.created) - CLOCK_SLACK
    found = [
        session
        for session in listed.values()
        if session.name == replica.name
        and session.id not in known
        and (session.start_time is None or session.start_time >= since)
    ]
    found.sort(key=lambda s: (s.start_time or datetime.max.replace(tzinfo=timezone.utc), s.id))
    return found[0] if found else None
