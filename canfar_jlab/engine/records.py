"""What the engine remembers about a session and its events."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..statuses import SESSION_ENDED

PENDING = "Pending"
RUNNING = "Running"
TERMINATING = "Terminating"
COMPLETED = "Completed"
FAILED = "Failed"
FINAL_STATUSES = SESSION_ENDED
STATUSES = (PENDING, RUNNING, TERMINATING, COMPLETED, FAILED)

GIB = 1024**3


@dataclass
class SessionRecord:
    """One headless session: its request, where it is in its life, and how it ended."""

    id: str
    name: str
    image: str
    type: str
    userid: str
    cmd: str
    args: list[str]
    env: list[tuple[str, str]]
    cores: float | None  # None: flexible
    ram: float | None  # GiB; None: flexible (no memory limit)
    gpus: int | None
    created: float
    deadline: float  # seconds after start, like Kubernetes' activeDeadlineSeconds
    status: str = PENDING
    seq: int = 0  # arrival order, for first-come-first-served scheduling
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    end_reason: str | None = None  # exit | deadline | lost | launch
    supervisor_pid: int | None = None
    supervisor_ctime: float | None = None
    deleting: bool = False

    @property
    def fixed(self) -> bool:
        """Skaha calls a session fixed when its memory request equals its limit: `ram` given."""
        return self.ram is not None

    @property
    def alloc_cores(self) -> int:
        """Cores held against capacity while it runs; a flexible session holds one."""
        return max(1, int(self.cores)) if self.cores is not None else 1

    @property
    def alloc_ram(self) -> int:
        """Bytes held against memory capacity (flexible sessions reserve none)."""
        return int(self.ram * GIB) if self.ram is not None else 0

    @property
    def omp_threads(self) -> int:
        return max(1, int(self.cores)) if self.cores is not None else 1

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass
class Event:
    """A Kubernetes-style event row: TYPE REASON MESSAGE FIRST-TIME LAST-TIME."""

    type: str  # Normal | Warning
    reason: str
    message: str
    first: float
    last: float = field(default=0.0)

    def __post_init__(self) -> None:
        if not self.last:
            self.last = self.first
