"""Reading each replica's own status report, `replicas/<i>/status.json` in the run folder.

The runner inside every replica writes it (atomically) at its start, at each cell, as a
heartbeat at least every 10 s, and at its end (format: /work/contract.md, "Replica status
report"). What it says is recorded where it happened, so a run's start and end times, exit
codes, progress and peak memory are exact whoever launched it and whether or not anybody was
watching, and they outlive the session service forgetting finished sessions.

A report is trusted only for the session it names (or for any session when the service does
not tell replicas their id). A report without an end whose session has ended means the
replica was killed from outside (SIGKILL, out of memory): its last heartbeat is reported, and
"likely out of memory" when its peak was within 10% of its RAM request.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..models import Replica, ReplicaStatus, parse_timestamp

log = logging.getLogger(__name__)

REPLICAS_DIR = "replicas"
REDUCE_DIR = "reduce"  # the reduce step's folder (index 0), beside replicas/
STATUS_FILE = "status.json"
EXECUTED_NOTEBOOK = "executed.ipynb"
OOM_MARGIN = 0.10  # a peak within 10% of the RAM request: likely out of memory
GIB = 2**30
OUT_OF_MEMORY = "out of memory"  # how a replica killed for its memory is said to have failed
TIMED_OUT = "timed_out"  # the runner's state at CANFAR_JLAB_TIMEOUT
# How a service says it killed a replica for its memory: the local engine's log line and
# event (OOMKilled), Kubernetes' OOMKilled, or the container's exit code 137 (SIGKILL).
_OOM_SIGN = re.compile(r"\bOOMKilled\b|exit code:?\s*137\b", re.IGNORECASE)


class StatusReport(BaseModel):
    """One replica's report as the runner writes it (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    format: int = 1
    replica: int | None = None
    session_id: str | None = None
    attempt: int = 1
    state: str = "running"
    started: datetime | None = None
    heartbeat: datetime | None = None
    ended: datetime | None = None
    exit_code: int | None = None
    cell: dict[str, Any] | None = None
    failed_cell: dict[str, Any] | None = None
    error: str | None = None
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None
    files: list[str] = []

    @property
    def finished(self) -> bool:
        return self.ended is not None and self.state in ("completed", "failed", TIMED_OUT)


def step_dir(index: int) -> str:
    """Replica `index`'s working folder relative to the run folder (0: the reduce step)."""
    return REDUCE_DIR if index == 0 else f"{REPLICAS_DIR}/{index}"


def report_path(folder: Path, index: int) -> Path:
    return folder / step_dir(index) / STATUS_FILE


def read_report(folder: Path, index: int) -> StatusReport | None:
    """Replica `index`'s report, None when absent or unreadable."""
    path = report_path(folder, index)
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.info("ignoring an unreadable %s", path)
        return None
    if not isinstance(raw, dict):
        return None
    for key in ("started", "heartbeat", "ended"):
        raw[key] = parse_timestamp(raw.get(key))
    try:
        return StatusReport.model_validate(raw)
    except ValidationError:
        log.info("ignoring a malformed %s", path)
        return None


def report_for(folder: Path, replica: Replica) -> StatusReport | None:
    """The report of this replica's current session, if it wrote one."""
    report = read_report(folder, replica.index)
    if report is None:
        return None
    if report.session_id is not None and replica.session_id is not None:
        if report.session_id != replica.session_id:
            return None  # an earlier attempt's (or another service's) report
    elif replica.submitted is not None and report.started is not None:
        if report.started < replica.submitted.replace(microsecond=0):
            return None  # written before this attempt was created
    return report


def facts(
    folder: Path, replica: Replica, report: StatusReport, ram_gb: int | None
) -> dict[str, Any]:
    """What the report says about the replica, as Replica fields."""
    update: dict[str, Any] = {
        "started": report.started or replica.started,
        "heartbeat": report.heartbeat,
        "peak_rss_bytes": report.peak_rss_bytes,
        "cpu_seconds": report.cpu_seconds,
        "cell": report.cell,
    }
    executed = folder / step_dir(replica.index) / EXECUTED_NOTEBOOK
    if executed.is_file():
        update["executed_notebook"] = executed.relative_to(folder).as_posix()
    if report.files:
        update["files"] = [f"{step_dir(replica.index)}/{name}" for name in report.files]
    if report.finished:
        update["ended"] = report.ended
        update["exit_code"] = report.exit_code
        completed = report.state == "completed" and report.exit_code in (0, None)
        update["status"] = ReplicaStatus.COMPLETED if completed else ReplicaStatus.FAILED
        if report.state == TIMED_OUT:  # the run's timeout, whatever the session says
            update.update(status=ReplicaStatus.TIMED_OUT, error=report.error or TIMED_OUT)
        elif not completed:
            update["error"] = _failure(report)
            known = (report.error or "").startswith("MemoryError")  # an allocation refused
            update["oom"] = known or likely_oom(report.peak_rss_bytes, ram_gb)
    return update


def killed(replica: Replica, report: StatusReport, ram_gb: int | None) -> dict[str, Any]:
    """The replica's session ended but its report has no end: killed from outside."""
    oom = likely_oom(report.peak_rss_bytes, ram_gb)
    last = report.heartbeat or report.started
    when = last.strftime("%Y-%m-%d %H:%M:%S UTC") if last else "never"
    cause = "likely out of memory" if oom else "killed from outside"
    where = _cell_text(report.cell)
    return {
        "status": ReplicaStatus.FAILED,
        "ended": last or replica.ended,
        "oom": oom,
        "error": f"{cause}: its last heartbeat was at {when}{where}",
    }


def oom_line(text: str | None) -> str | None:
    """The line of a service's log or events saying the replica was killed for its memory."""
    for line in (text or "").splitlines():
        if _OOM_SIGN.search(line):
            return line.strip()
    return None


def oom_error(line: str | None) -> str:
    """`out of memory: <what the service said>` (`out of memory (OOMKilled): <why>` for the
    local engine's line; an events table's columns as single spaces)."""
    detail = " ".join((line or "").split())
    if "OOMKilled:" in detail:
        return f"{OUT_OF_MEMORY} (OOMKilled): {detail.split('OOMKilled:', 1)[1].strip()}"[:500]
    return f"{OUT_OF_MEMORY}: {detail}"[:500] if detail else OUT_OF_MEMORY


def likely_oom(peak: int | None, ram_gb: int | None) -> bool:
    return bool(peak and ram_gb and peak >= (1 - OOM_MARGIN) * ram_gb * GIB)


def _failure(report: StatusReport) -> str:
    if report.error and report.failed_cell:  # as the runner's own last line says it
        where = f"code cell {report.failed_cell.get('index')}"
        return f"canfar-jlab: stopped at {where} ({report.error})"[:500]
    if report.error:
        return report.error[:500]
    return f"exit code {report.exit_code}"


def _cell_text(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("index") is None:
        return ""
    total = f" of {cell['total']}" if cell.get("total") else ""
    return f", in code cell {cell['index']}{total}"
