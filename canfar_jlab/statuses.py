"""Which statuses mean what: the one place (in Python) that says which session and replica
statuses count as active, live or ended. `models.SessionStatus` and `models.ReplicaStatus`
answer from these sets, and so do the server's `?active=1` filter, the engine, the launcher's
name check and renewal. The frontend shows the server's run `state` instead of recomputing it.

Plain strings, standard library only: the engine's control imports this without pydantic.
"""

from __future__ import annotations

PENDING = "Pending"
RUNNING = "Running"
TERMINATING = "Terminating"
COMPLETED = "Completed"
FAILED = "Failed"
UNKNOWN = "Unknown"  # the service does not say (or the session vanished)
NOT_CREATED = "NotCreated"  # a replica whose create failed
WAITING = "Waiting"  # a replica held back by its run (cap, pilot, retry delay)
TIMED_OUT = "TimedOut"  # a replica ended by its run's timeout

SESSION_STATUSES = (PENDING, RUNNING, TERMINATING, COMPLETED, FAILED, UNKNOWN)
REPLICA_STATUSES = (*SESSION_STATUSES, NOT_CREATED, WAITING, TIMED_OUT)
# The order a run's replica counts are shown in (`3/10 Running, 2 Waiting, 5 Completed`).
SHOWN_ORDER = (RUNNING, PENDING, WAITING, TERMINATING, COMPLETED, FAILED, TIMED_OUT, UNKNOWN,
               NOT_CREATED)  # fmt: skip

# Running or about to: listed as active by `ps`, renewable.
SESSION_ACTIVE = frozenset({PENDING, RUNNING})
# Exists on the service: holds its name and its resources (a session being deleted too).
SESSION_LIVE = SESSION_ACTIVE | {TERMINATING}
# Finished on the service: will not change any more.
SESSION_ENDED = frozenset({COMPLETED, FAILED})
# A replica that will not change any more (until run again); Unknown too once its end is
# recorded (`Replica.is_ended`).
REPLICA_ENDED = SESSION_ENDED | {TIMED_OUT, NOT_CREATED}

# A run's `state` (models.Run.state); every state but "active" is final.
RUN_STATES = ("active", "completed", "failed", "stopped", "deleted")
RUN_ENDED = frozenset(RUN_STATES) - {"active"}
