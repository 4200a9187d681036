"""Runs: one promotion of a notebook to N batch replicas, with a folder that outlives them.

A run folder `<root>/<run-name>/` (root: `$CANFAR_JLAB_RUNS`, else the user's setting
`canfar-jlab config set runs-root PATH`, else `~/canfar-runs`) holds
the exported script and its runner, `run.json` (spec, notebook path and checksum, every
replica's session id, status, outcome and times), `logs/replica-<i>.log` archived as each
replica ends, and `outputs/` (passed to replicas as `CANFAR_RUN_OUTPUTS`, with the folder as
`CANFAR_RUN_DIR`). Runs launched from the server extension, the magic or the CLI land in the
same store, so every front door lists them.

- `launch`, `preview`: `launcher.py` (imported on first use: it needs the exporter)
- `RunService`: `service.py`, what every front door calls (launch, preview, list, get, logs,
  stop, delete, re-run, resolving a run / replica / session name)
- `Connection`: `connection.py`, one self-healing connection to the session service
- `stop_run`, `delete_run`, `create_missing` (the one creation path), `spec_of` (a replica's
  session spec, for launch, preview and re-run alike): `actions.py`; `rerun_failed`: `rerun.py`
- retries, the cap, the pilot: `conductor.py`; its detached process: `conductor_process.py`;
  the reduce step: `reduce.py`; adopting a session by name: `adoption.py`
- replicas' own status reports (`replicas/<i>/status.json`): `reports.py`
- `reconcile`, `busy`: `reconciler.py` (the session service is the source of truth)
- `follow_run`: `follow.py` (logs and progress until a run ends)
- `RunStore`: `store.py` (atomic run.json, per-run locks)
"""

from typing import Any

from ..errors import (
    ConnectionFailed,
    LaunchRefused,
    NoMatch,
    NothingToRerun,
    RunError,
    RunNameInUse,
    RunNotFound,
)
from ..models import LaunchRequest, Replica, ReplicaStatus, Run, RunSpec
from .actions import delete_run, stop_run
from .connection import Connection
from .follow import RunFollower, follow_run
from .reconciler import Reconciled, busy, needs_work, reconcile, service_of, session_json
from .rerun import rerun_failed
from .service import ReplicaLog, RunService, Target
from .store import RunStore, default_root

# Launching needs the exporter (nbconvert, nbformat: slow to import), so `launcher` is only
# imported when one of its names is first used; `ps` or `logs` never pay for it.
_LAUNCHER = {
    "Preview",
    "PreviewReplica",
    "launch",
    "preview",
    "resolve_image",
}


def __getattr__(name: str) -> Any:
    if name in _LAUNCHER:
        from . import launcher

        return getattr(launcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Connection",
    "ConnectionFailed",
    "LaunchRefused",
    "LaunchRequest",
    "NoMatch",
    "NothingToRerun",
    "Preview",
    "PreviewReplica",
    "Reconciled",
    "Replica",
    "ReplicaLog",
    "ReplicaStatus",
    "Run",
    "RunError",
    "RunFollower",
    "RunNameInUse",
    "RunNotFound",
    "RunService",
    "RunSpec",
    "RunStore",
    "Target",
    "busy",
    "default_root",
    "delete_run",
    "follow_run",
    "launch",
    "needs_work",
    "preview",
    "reconcile",
    "rerun_failed",
    "resolve_image",
    "service_of",
    "session_json",
    "stop_run",
]
