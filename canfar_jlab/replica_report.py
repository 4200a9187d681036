"""A replica's own status report, ``replicas/<i>/status.json``, written by the runner.

The run service reads it (with the session's status) to say which cell a replica is in, why
it failed, how much memory and CPU it used, and which files it wrote. Format 1 (see
docs/runner.md)::

    {"format": 1, "replica": 3, "count": 10, "session_id": ..., "attempt": 1,
     "runner": "nbclient" | "script",
     "state": "running" | "completed" | "failed" | "timed_out" (CANFAR_JLAB_TIMEOUT, exit 124),
     "started": "...Z", "heartbeat": "...Z", "ended": "...Z" | null, "exit_code": 0 | null,
     "cell": {"index", "total", "first_line"} | null, "failed_cell": {...} | null,
     "error": "ValueError: bad pixel" | null, "stall": null | "kernel-start" | "cell",
     "peak_rss_bytes": int | null, "cpu_seconds": float | null, "files": [...]}

The file is replaced atomically (temp file in the same folder, then ``os.replace``) at the
start, at every cell, at least every `HEARTBEAT_SECONDS` from a daemon thread, and at the end,
so a reader never sees half a report, and a report whose heartbeat is old while its session
has ended means the replica was killed from outside.

Memory and CPU cover the whole process tree (the runner, its kernel, and what they start):
the thread samples the tree every `SAMPLE_SECONDS` and keeps the peak of the summed resident
memory; CPU is the live tree's user + system time plus what reaped children used. psutil is
used when importable, else /proc (Linux), else only this process's own rusage.

Standard library only at import time: export copies this file into the run folder beside the
runner, and the replica's image need not have canfar_jlab.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPORT_FORMAT = 1
REPORT_NAME = "status.json"
HEARTBEAT_SECONDS = 5.0  # the contract asks for at most 10 s between writes
SAMPLE_SECONDS = 1.0  # how often the process tree is measured for its peak memory
ERROR_MAX = 500
FIRST_LINE_MAX = 200
MAX_START_AGE = 300.0  # seconds: a runner reports within moments of its start, never later

try:  # resource is POSIX-only; the report still works without it
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]


def utc_stamp(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the contract spells it."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def process_started() -> datetime:
    """When this process began (its fork), not when Python got round to asking: the report's
    `started` is the replica's own run, and an interpreter's start and imports take up to a
    second on a busy node. Linux: the process's start in clock ticks since boot
    (/proc/self/stat) against the boot clock now; psutil's create_time is not used because it
    adds the boot time rounded to whole seconds. Elsewhere, or on anything odd: now."""
    now = time.time()
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as file:
            text = file.read()
        ticks = int(text[text.rfind(")") + 2 :].split()[19])  # field 22: starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        age = 0.0
    if not 0.0 <= age <= MAX_START_AGE:
        age = 0.0  # a clock that disagrees with /proc: better the moment we know
    return datetime.fromtimestamp(now - age, timezone.utc)


def first_line(source: str) -> str:
    """A cell's first non-blank line, shortened: enough for a person to recognise the cell."""
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:FIRST_LINE_MAX]
    return ""


def short_error(text: str) -> str:
    return " ".join(text.split())[:ERROR_MAX]


def write_json_atomically(path: Path, value: object) -> None:
    """Readers see the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(value, file, indent=1)
            file.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---- measuring the process tree -----------------------------------------------------------


class TreeMeter:
    """Peak summed RSS and CPU seconds of this process and all its descendants."""

    def __init__(self) -> None:
        self.peak_rss: int | None = None
        self.cpu: float | None = None
        # CPU of the live descendants only (the kernel and what it started): the runner's
        # own polling must not count as the kernel doing something.
        self.descendants_cpu: float | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        try:
            import psutil  # optional: the replica's image may not have it

            self._psutil = psutil
        except ImportError:
            self._psutil = None

    def sample(self) -> None:
        try:
            rss, cpu = self._measure()
        except Exception:  # a process vanishing mid-read, /proc missing: keep what we have
            rss, cpu = None, None
        self.descendants_cpu = cpu
        own_peak, reaped_peak, own_and_reaped_cpu = self._rusage()
        candidates = [v for v in (rss, own_peak, reaped_peak, self.peak_rss) if v is not None]
        self.peak_rss = max(candidates) if candidates else None
        total = (cpu or 0.0) + (own_and_reaped_cpu or 0.0)
        if cpu is not None or own_and_reaped_cpu is not None:
            self.cpu = round(max(total, self.cpu or 0.0), 3)

    def _rusage(self) -> tuple[int | None, int | None, float | None]:
        """Own peak, the largest reaped child's peak (bytes), own + reaped children's CPU."""
        if resource is None:
            return None, None, None
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        scale = 1 if sys.platform == "darwin" else 1024  # Linux reports kilobytes
        cpu = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
        return own.ru_maxrss * scale, reaped.ru_maxrss * scale, cpu

    def _measure(self) -> tuple[int | None, float | None]:
        """Current RSS of the whole tree, and CPU of the live descendants (self excluded)."""
        if self._psutil is not None:
            me = self._psutil.Process()
            rss = me.memory_info().rss
            cpu = 0.0
            for child in me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                    times = child.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
                except self._psutil.Error:
                    continue
            return rss, cpu
        if not os.path.isdir("/proc/self"):
            return None, None
        parents: dict[int, int] = {}
        stats: dict[int, list[str]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as file:
                    text = file.read()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()  # the name may hold spaces and ")"
            pid = int(entry)
            parents[pid] = int(fields[1])
            stats[pid] = fields
        me = os.getpid()
        tree, frontier = {me}, [me]
        while frontier:
            parent = frontier.pop()
            for pid, ppid in parents.items():
                if ppid == parent and pid not in tree:
                    tree.add(pid)
                    frontier.append(pid)
        rss = 0
        cpu_ticks = 0
        for pid in tree:
            fields = stats.get(pid)
            if fields is None:
                continue
            rss += int(fields[21]) * self._page  # field 24 of stat: rss in pages
            if pid != me:  # utime, stime, cutime, cstime: fields 14-17
                cpu_ticks += sum(int(value) for value in fields[11:15])
        return rss, cpu_ticks / self._ticks


# ---- the report --------------------------------------------------------------------------


class ReplicaReport:
    """Writes one replica's status.json; `start`, `cell` per cell, `finish` once."""

    def __init__(
        self,
        folder: Path,
        *,
        replica: int,
        count: int,
        runner: str,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        sample_seconds: float = SAMPLE_SECONDS,
    ) -> None:
        self.path = Path(folder) / REPORT_NAME
        self.heartbeat_seconds = min(heartbeat_seconds, 10.0)
        self.sample_seconds = min(sample_seconds, self.heartbeat_seconds)
        self.meter = TreeMeter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        attempt = os.environ.get("CANFAR_REPLICA_ATTEMPT", "").strip()
        self.data: dict = {
            "format": REPORT_FORMAT,
            "replica": replica,
            "count": count,
            "session_id": os.environ.get("skaha_sessionid") or None,
            "attempt": int(attempt) if attempt.isdigit() else 1,
            "runner": runner,
            "state": "running",
            "started": utc_stamp(process_started()),
            "heartbeat": None,
            "ended": None,
            "exit_code": None,
            "cell": None,
            "failed_cell": None,
            "error": None,
            "stall": None,
            "peak_rss_bytes": None,
            "cpu_seconds": None,
            "files": [],
        }

    @classmethod
    def from_environment(cls, run_folder: Path, runner: str, **options) -> ReplicaReport:
        """The report of replica `$REPLICA_ID` (1 when unset) in `<run>/replicas/<i>/`."""
        replica, count = replica_numbers()
        folder = Path(run_folder) / "replicas" / str(replica)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, replica=replica, count=count, runner=runner, **options)

    # -- lifecycle

    def start(self) -> None:
        self._write()
        self._thread = threading.Thread(target=self._beat, name="canfar-status", daemon=True)
        self._thread.start()

    def set(self, **fields) -> None:
        """Change fields (runner, parameters...) and write at once."""
        with self._lock:
            self.data.update(fields)
        self._write()

    def cell(self, index: int, total: int, source: str) -> None:
        with self._lock:
            self.data["cell"] = {"index": index, "total": total, "first_line": first_line(source)}
        self._write()

    def finish(
        self,
        exit_code: int,
        *,
        error: str | None = None,
        failed_cell: tuple[int, str] | None = None,
        stall: str | None = None,
        files: list[str] | None = None,
        timed_out: bool = False,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        state = "completed" if exit_code == 0 else "failed"
        with self._lock:
            self.data.update(
                state="timed_out" if timed_out else state,
                ended=utc_stamp(),
                exit_code=exit_code,
                error=short_error(error) if error else None,
                stall=stall,
                files=sorted(files or []),
            )
            if failed_cell is not None:
                index, source = failed_cell
                self.data["failed_cell"] = {"index": index, "first_line": first_line(source)}
        self._write()

    # -- internals

    def _beat(self) -> None:
        last_write = 0.0
        elapsed = 0.0
        while not self._stop.wait(self.sample_seconds):
            elapsed += self.sample_seconds
            if elapsed - last_write >= self.heartbeat_seconds - 1e-6:
                last_write = elapsed
                try:
                    self._write()
                except OSError:
                    pass  # a full disk must not kill the replica; the next beat tries again
            else:
                with self._lock:
                    self.meter.sample()

    def _write(self) -> None:
        with self._lock:
            self.meter.sample()
            self.data["heartbeat"] = utc_stamp()
            self.data["peak_rss_bytes"] = self.meter.peak_rss
            self.data["cpu_seconds"] = self.meter.cpu
            write_json_atomically(self.path, self.data)


def replica_numbers() -> tuple[int, int]:
    """REPLICA_ID and REPLICA_COUNT as Skaha sets them; (1, 1) outside a replica."""

    def number(name: str) -> int:
        text = os.environ.get(name, "").strip()
        return int(text) if text.isdigit() and int(text) >= 1 else 1

    return number("REPLICA_ID"), number("REPLICA_COUNT")
