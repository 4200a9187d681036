"""The run's own records: what a front door asks for (`LaunchRequest`) and what run.json
keeps (`Run`, its `RunSpec`, `Replica`s and their attempts). One promotion of a notebook to
N replicas (canfar_jlab.runs); the Skaha wire models are in `models/skaha.py`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
)

from .. import statuses
from .skaha import (
    ENV_NAME_PATTERN,
    MAX_ENV_COUNT,
    MAX_IMAGE_LENGTH,
    MAX_PARAMETERS_BYTES,
    MAX_PARAMETERS_DEPTH,
    MAX_REPLICAS,
    SESSION_NAME_PATTERN,
    SessionSpec,
    SessionStatus,
    _short,
    check_json_bounds,
)

# A run's name is also its folder name and the prefix of its replicas' session names
# (`name-1` .. `name-256`), so it must leave room for `-256` within Skaha's 63 characters.
RUN_NAME_MAX = 59


class ReplicaStatus(str, Enum):
    """A replica's state: Skaha's session statuses, plus NotCreated (its create failed)."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    UNKNOWN = "Unknown"
    NOT_CREATED = "NotCreated"
    # Issue 17: not created yet, held back by the run itself (the --max-running cap, the
    # pilot, a retry's delay); and ended by the run's --timeout.
    WAITING = "Waiting"
    TIMED_OUT = "TimedOut"

    @classmethod
    def of(cls, status: SessionStatus) -> ReplicaStatus:
        return cls(status.value)

    def __str__(self) -> str:
        return self.value


def check_run_name(name: str) -> str:
    """`name` lower-cased if it can name a run (and, with `-N`, its replicas); else ValueError."""
    name = name.strip().lower()
    if len(name) > RUN_NAME_MAX:
        raise ValueError(
            f"run name {_short(name)!r} is longer than {RUN_NAME_MAX} characters (its replicas are "
            "named NAME-1 .. NAME-N within Skaha's 63)"
        )
    if not SESSION_NAME_PATTERN.match(name):
        raise ValueError(
            f"run name {_short(name)!r} must be 1-{RUN_NAME_MAX} characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    return name


class LaunchRequest(BaseModel):
    """What a front door asks for: run `notebook` as `replicas` batch replicas.

    Empty `cores`/`ram` mean flexible resources. `parameters` override the notebook's cell
    tagged `parameters` (JSON values). `env` reaches every replica.
    """

    model_config = ConfigDict(extra="forbid")

    notebook: str = Field(min_length=1)
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    name: str | None = None
    image: str | None = None
    cores: int | None = Field(default=None, ge=1, le=256)
    ram: int | None = Field(default=None, ge=1, le=512, description="GB")
    gpus: int | None = Field(default=None, ge=0, le=28)
    env: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Sweeps (canfar_jlab.sweep): list values of `parameters` are swept when `sweep` is true;
    # or `sweep_rows`, one object per replica (the CLI reads them from --sweep FILE; a server
    # reads a file only after confining its path). The rows set `replicas` unless given.
    sweep: bool = False
    sweep_rows: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    site: str | None = Field(default=None, max_length=100, description="config server name")
    # Names of variables of the launching process's environment that replicas get; their
    # values are read at launch and never written to run.json, a response or a log.
    secret_env: list[str] = Field(default_factory=list, max_length=MAX_ENV_COUNT)
    # Issue 17: how the run conducts its replicas (recorded in RunSpec).
    retries: int = Field(0, ge=0, le=10, description="re-create a Failed replica up to N times")
    timeout_seconds: int | None = Field(default=None, ge=1, le=14 * 86400)
    max_running: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    pilot: bool = False
    reduce_notebook: str | None = Field(default=None, description="run once after all succeed")

    @field_validator("notebook")
    @classmethod
    def _notebook(cls, value: str) -> str:
        # Linux limits: 4,096 bytes a path, 255 a file name; NUL ends a C string.
        if "\x00" in value:
            raise ValueError("not a valid path (NUL byte)")
        if len(value.encode()) > 4096:
            raise ValueError("the path is longer than 4096 bytes")
        if any(len(part.encode()) > 255 for part in value.split("/")):
            raise ValueError("a file name in the path is longer than 255 bytes")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_json_bounds(value, "parameters", MAX_PARAMETERS_DEPTH, MAX_PARAMETERS_BYTES)
        return value

    @field_validator("sweep_rows")
    @classmethod
    def _sweep_rows(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is not None:  # a row per replica: bounded like parameters, 16x the room
            check_json_bounds(value, "sweep rows", MAX_PARAMETERS_DEPTH, 16 * MAX_PARAMETERS_BYTES)
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: list[str]) -> list[str]:
        for name in value:
            if not ENV_NAME_PATTERN.match(name):
                raise ValueError(f"{_short(name)!r} is not a valid environment variable name")
        return list(dict.fromkeys(value))

    @field_validator("name", "image", "cores", "ram", "gpus", "site", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_run_name(value)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_IMAGE_LENGTH:
            raise ValueError(f"the image name is longer than {MAX_IMAGE_LENGTH} characters")
        if value is not None and (any(ch.isspace() for ch in value.strip()) or "\x00" in value):
            raise ValueError(f"image {_short(value)!r} contains whitespace")
        return None if value is None else value.strip()

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("env must be an object of NAME: value")
        for key, val in value.items():
            if not isinstance(val, str):  # null or [1] would silently become "None" or "[1]"
                raise ValueError(f"env {_short(str(key))}: values must be strings")
        return SessionSpec._env(value)  # Skaha's rules for env entries, checked up front


class ReplicaAttempt(BaseModel):
    """An earlier session of a replica that was run again (`rerun_failed`, a retry, a re-run
    with more memory: `why` says which)."""

    session_id: str | None = None
    why: str | None = None  # "rerun", "retry", "more-memory"
    oom: bool = False
    cores: int | None = None
    ram: int | None = None
    status: ReplicaStatus
    error: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    log: str | None = None
    exit_code: int | None = None
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None


class Replica(BaseModel):
    """One of a run's N sessions. `index` is its REPLICA_ID (1-based).

    `log` is the archived log's path relative to the run folder, set when the replica has ended
    and its log was saved (`log_partial` while it holds only what was there at a delete,
    `log_lost` when the service forgot the session before its whole log could be saved).
    `attempts` keeps the earlier sessions of a replica that was run again.
    """

    index: int = Field(ge=0)  # 0: the run's reduce step (issue 17)
    name: str
    session_id: str | None = None
    status: ReplicaStatus = ReplicaStatus.PENDING
    error: str | None = None
    submitted: datetime | None = None  # when its create was sent
    started: datetime | None = None
    ended: datetime | None = None
    log: str | None = None
    log_partial: bool = False
    log_lost: bool = False  # the service forgot the session before its (whole) log was saved
    attempts: list[ReplicaAttempt] = Field(default_factory=list)
    # From the replica's own status report (replicas/<i>/status.json, canfar_jlab.runs.reports)
    exit_code: int | None = None
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None
    cell: dict[str, Any] | None = None  # {"index", "total", "first_line"}: where it is/was
    heartbeat: datetime | None = None
    executed_notebook: str | None = None  # relative to the run folder
    files: list[str] = Field(default_factory=list)  # relative to the run folder
    parameters: dict[str, Any] | None = None
    oom: bool = False  # likely (or known) out of memory
    reason: str | None = None  # why it is Pending (or Waiting in the run), when known
    # Issue 17: this replica's own resources when they differ from the run's spec (a pilot's
    # sizing, a re-run with more memory); when a Waiting replica's retry is due.
    cores: int | None = None
    ram: int | None = None  # GB
    retry_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempt_count(self) -> int:
        return len(self.attempts) + 1

    @property
    def is_ended(self) -> bool:
        """Will not change any more (until run again)."""
        if self.status.value in statuses.REPLICA_ENDED:
            return True
        return self.status is ReplicaStatus.UNKNOWN and self.ended is not None

    @property
    def is_failed(self) -> bool:
        return self.is_ended and self.status is not ReplicaStatus.COMPLETED


class RunSpec(BaseModel):
    """What every replica of the run was created with."""

    image: str
    cores: int | None = None
    ram: int | None = None
    gpus: int | None = None
    env: dict[str, str] = Field(default_factory=dict)
    replicas: int = Field(ge=1, le=MAX_REPLICAS)
    parameters: dict[str, Any] = Field(default_factory=dict)
    sweep: list[dict[str, Any]] | None = None  # row i-1: replica i's values over `parameters`
    secret_env: list[str] = Field(default_factory=list, description="names only, never values")
    argv: list[str] = Field(default_factory=list, description="cmd + args of every replica")
    # Issue 17 (see LaunchRequest). `reduce`: None (no reduce step), "cells" (the snapshot's
    # cells tagged `reduce`) or a notebook file name in the run folder (--reduce NOTEBOOK).
    retries: int = 0
    timeout_seconds: int | None = None
    max_running: int | None = None
    pilot: bool = False
    reduce: str | None = None


class StagedRun(BaseModel):
    """Where a run launched from outside CANFAR was copied for its replicas (issue 16):
    `folder` and `outputs` are the `/arc` paths the replicas use; `storage` the VOSpace service."""

    folder: str
    outputs: str
    storage: str
    files: list[str] = Field(default_factory=list)


class Run(BaseModel):
    """One promotion of a notebook: the content of the run folder's `run.json`.

    `folder` is absolute; `script` is relative to it. `service` says which session service
    holds the replicas (`local-engine`, or the Skaha base URL). `counts` and `state` are
    derived from the replicas: `active` until every replica has ended, then `completed` when
    all completed, else `failed`.
    """

    format: int = 1
    name: str
    notebook: str
    notebook_sha256: str
    created: datetime
    folder: str
    folder_relative: str | None = None  # set by the server extension when under its root
    script: str
    service: str
    spec: RunSpec
    replicas: list[Replica]
    deleted: datetime | None = None  # when its sessions were deleted; the folder stays
    stopped: datetime | None = None  # when the user stopped it; record and logs stay
    # Who is creating its sessions right now ({"pid", "host", "boot"}): a reader that finds
    # this launcher gone adopts sessions by name and marks the rest NotCreated at once.
    launcher: dict[str, Any] | None = None
    # Issue 17: the reduce step (index 0, name RUN-reduce) once it is created; the pilot's
    # measured sizing ({"cores", "ram", "peak_rss_bytes", "cpu_seconds", "wall_seconds"}).
    reduce: Replica | None = None
    sizing: dict[str, Any] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def started(self) -> datetime | None:
        times = [r.started for r in self.replicas if r.started is not None]
        return min(times) if times else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ended(self) -> datetime | None:
        if not all(r.is_ended for r in self.replicas) or self.reduce_pending:
            return None
        steps = [*self.replicas, *([self.reduce] if self.reduce else [])]
        times = [r.ended for r in steps if r.ended is not None]
        return max(times) if times else None

    @property
    def reduce_pending(self) -> bool:
        """The run has a reduce step that every replica succeeding calls for, not ended yet."""
        if self.spec.reduce is None or self.stopped is not None or self.deleted is not None:
            return False
        if any(r.status is not ReplicaStatus.COMPLETED for r in self.replicas):
            return False
        return self.reduce is None or not self.reduce.is_ended

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        started, ended = self.started, self.ended
        return (ended - started).total_seconds() if started and ended else None

    site: str | None = None  # the ~/.canfar/config.yaml server it runs on; later actions use it
    staged: StagedRun | None = None  # copied to CANFAR storage; outputs stay there
    # The pre-launch check's warnings ("code cell 3, line 1: warning: ..."): shown, not refused
    warnings: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for replica in self.replicas:
            counts[replica.status.value] = counts.get(replica.status.value, 0) + 1
        return counts

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> str:
        if self.deleted is not None:
            return "deleted"
        if not all(replica.is_ended for replica in self.replicas) or self.reduce_pending:
            return "active"
        if self.stopped is not None:
            return "stopped"
        steps = [*self.replicas, *([self.reduce] if self.reduce else [])]
        return "failed" if any(step.is_failed for step in steps) else "completed"

    def replica(self, index: int) -> Replica:
        if index == 0:  # the reduce step (issue 17)
            if self.reduce is None:
                raise IndexError("the run has no reduce step yet")
            return self.reduce
        return self.replicas[index - 1]

    @property
    def steps(self) -> list[Replica]:
        """The replicas, then the reduce step once it exists (issue 17)."""
        return [*self.replicas, *([self.reduce] if self.reduce else [])]
