"""The session manager: queue, launch, watch, stop and forget headless sessions.

Everything runs on the engine's event loop thread. Sessions live in memory (answers come from
there) and are written through to the SQLite store. Replicas are started, watched and stopped by
the engine's supervisor (supervisor.py), a process apart from this daemon that tells it when
each replica has started and ended (spawn.SupervisorClient).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from . import logcap
from .config import EngineConfig
from .errors import bad_request
from .ids import new_session_id
from .layout import EXIT_FILE, SESSION_LOG, SUPERVISOR_FILE, EngineLayout, read_json
from .legacy import LegacySupervisors
from .memlimit import oom_message
from .params import CreateRequest
from .procs import kill_group_checked
from .records import (
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TERMINATING,
    Event,
    SessionRecord,
)
from .session_store import SessionStore
from .spawn import LaunchError, SupervisorClient, replica_environment
from .usage import UsageSampler
from .wire import Identity, Usage, describe_exit

log = logging.getLogger(__name__)

FORCE_KILL_MARGIN = 5.0  # after the grace period, before the engine kills a replica itself
# Finished sessions are listed this long after they end, as Skaha lists them; older ones are
# still served by id (status, logs, events) until the retention sweep forgets them, so the list
# a Jupyter server polls does not grow with history.
LIST_WINDOW = 3600.0


class SessionManager:
    def __init__(
        self, config: EngineConfig, layout: EngineLayout, store: SessionStore, identity: Identity
    ) -> None:
        self.config = config
        self.layout = layout
        self.store = store
        self.identity = identity
        self.sessions: dict[str, SessionRecord] = {}
        self._active: dict[str, SessionRecord] = {}  # not finished, in arrival order
        self._recent: dict[str, SessionRecord] = {}  # finished and still listed, by end
        self.events: dict[str, list[Event]] = {}
        self._commit_pending = False
        store.on_dirty = self._commit_soon
        self._supervisor = SupervisorClient(
            layout.supervisor_socket, on_ended=self._ended, on_gone=self._supervisor_gone
        )
        self._replicas: dict[str, int] = {}  # session id -> its replica's pid, while running
        self._legacy = LegacySupervisors(on_ended=self._ended)  # from an engine before ours
        # What every replica inherits from the engine's own environment, computed once (it does
        # not change while the engine runs); replica_env adds each session's variables.
        self._base_env = replica_environment(os.environ, (), {}, config.pass_env)
        self._usage = UsageSampler()
        self._launching: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}  # deadline or force-kill, per session
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- start and stop

    async def start(self) -> None:
        """Load every session, adopt the replicas still running, record the ones that ended
        while the engine was down, then resume scheduling."""
        self._supervisor.connect()  # the one there is (adoption), or a new one
        self.events = self.store.load_events()
        listed_after = time.time() - self.list_window
        for rec in sorted(self.store.load_sessions(), key=lambda r: r.ended or 0.0):
            self.sessions[rec.id] = rec
            if not rec.final:
                self._active[rec.id] = rec
            elif (rec.ended or rec.created) > listed_after:
                self._recent[rec.id] = rec
        for rec in list(self._active.values()):
            self._reconcile(rec)
        self.sweep()
        self.schedule()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def _commit_soon(self) -> None:
        """Commit once this turn of the event loop is done (called when a write opens a
        transaction)."""
        if not self._commit_pending:
            self._commit_pending = True
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        self._commit_pending = False
        self.store.commit()

    def close(self) -> None:
        """Stop managing; replicas keep running under their supervisors, to be adopted later."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._supervisor.close()
        self._legacy.close()

    # ---------------------------------------------------------------- queries

    @property
    def list_window(self) -> float:
        return min(LIST_WINDOW, self.config.retention)

    def list(self, kind: str | None = None, status: str | None = None) -> list[SessionRecord]:
        """Sessions not finished, and those that finished within the list window, in arrival
        order. Costs what the listed sessions cost, however long the history."""
        kind = kind.strip().lower() if kind else None
        status = status.strip().lower() if status else None
        listed_after = time.time() - self.list_window
        for session_id, rec in list(self._recent.items()):  # oldest end first
            if (rec.ended or rec.created) > listed_after:
                break
            del self._recent[session_id]
        listed = [
            *(r for r in self._recent.values() if (r.ended or r.created) > listed_after),
            *self._active.values(),
        ]
        listed.sort(key=lambda rec: rec.seq)
        return [
            rec
            for rec in listed
            if (kind is None or rec.type.lower() == kind)
            and (status is None or rec.status.lower() == status)
        ]

    def get(self, session_id: str) -> SessionRecord | None:
        return self.sessions.get(session_id)

    def usage(self, records: list[SessionRecord]) -> dict[str, Usage]:
        """Live CPU and memory of running replicas (each one's process tree)."""
        roots: dict[str, tuple[int, float]] = {
            rec.id: (self._replicas[rec.id], rec.started or time.time())
            for rec in records
            if rec.status == RUNNING and rec.id in self._replicas
        }
        return self._usage.sample(roots, complete=len(roots) == 1) if roots else {}

    def allocated(self) -> tuple[int, int]:
        """Cores and RAM bytes held by sessions that are starting, running or stopping."""
        cores = ram = 0
        for rec in self._active.values():
            if rec.status in (RUNNING, TERMINATING) or rec.id in self._launching:
                cores += rec.alloc_cores
                ram += rec.alloc_ram
        return cores, ram

    def log_path(self, session_id: str) -> Path:
        return self.layout.session_dir(session_id) / SESSION_LOG

    def log_size(self, session_id: str) -> int:
        """Length of the log as served now (0 for an unknown session, as Skaha's empty log)."""
        if session_id not in self.sessions:
            return 0
        try:
            size = self.log_path(session_id).stat().st_size
        except OSError:
            return 0
        return logcap.served_size(size, self.config.log_cap)

    def read_log(self, session_id: str, offset: int, limit: int) -> bytes:
        return logcap.read_served(self.log_path(session_id), self.config.log_cap, offset, limit)

    # ---------------------------------------------------------------- commands

    def create(self, request: CreateRequest) -> SessionRecord:
        session_id = new_session_id()
        while session_id in self.sessions:
            session_id = new_session_id()
        rec = SessionRecord(
            id=session_id,
            name=request.name,
            image=request.image,
            type=request.type,
            userid=self.identity.username,
            cmd=request.cmd,
            args=list(request.args),
            env=list(request.env),
            cores=request.cores,
            ram=request.ram,
            gpus=request.gpus,
            created=time.time(),
            deadline=self.config.deadline,
        )
        rec.seq = self.store.insert(rec)
        self.store.commit()  # durable before the id is handed out
        self.sessions[rec.id] = rec
        self._active[rec.id] = rec
        for name in request.dropped_env:
            self._event(rec, "Warning", "EnvDropped", f"env {name} dropped: its value contains '='")
        self.schedule()
        return rec

    def renew(self, session_id: str) -> None:
        """Skaha's rule: extend only when less than the renewal period remains."""
        rec = self.sessions.get(session_id)
        if rec is None or rec.deleting or rec.status not in (PENDING, RUNNING):
            raise bad_request(
                f"No active job for user {self.identity.username} with session {session_id}"
            )
        if rec.status != RUNNING or rec.started is None:
            return
        elapsed = time.time() - rec.started
        if self.config.renew_extension > rec.deadline - elapsed:
            rec.deadline = elapsed + self.config.renew_extension
            self.store.update(rec)
            self._arm_deadline(rec)

    def delete(self, session_id: str) -> None:
        """Stop the session's replica (SIGTERM, grace, SIGKILL) and forget the session, as
        Skaha deletes the Job. Unknown ids are fine."""
        rec = self.sessions.get(session_id)
        if rec is None or rec.deleting:
            return
        if rec.final or (rec.status == PENDING and rec.id not in self._launching):
            self._forget(rec)
            self.schedule()
            return
        rec.deleting = True
        rec.status = TERMINATING
        self.store.update(rec)
        if rec.id not in self._launching:  # otherwise stopped as soon as its launch returns
            self._terminate(rec)

    # ---------------------------------------------------------------- scheduling

    def schedule(self) -> None:
        """Start pending sessions in arrival order while they fit; the first that does not fit
        waits, and everything behind it waits too (first come, first served)."""
        cores, ram = self.allocated()
        for rec in self._active.values():
            if rec.status != PENDING or rec.id in self._launching or rec.deleting:
                continue
            fits_cores = cores + rec.alloc_cores <= self.config.cores or cores == 0
            fits_ram = ram + rec.alloc_ram <= self.config.memory_bytes or ram == 0
            if not (fits_cores and fits_ram):
                self._queued(rec, cores, ram)
                break
            cores += rec.alloc_cores
            ram += rec.alloc_ram
            self._launching.add(rec.id)
            self._spawn_task(self._launch(rec))

    def _queued(self, rec: SessionRecord, cores: int, ram: int) -> None:
        if any(e.reason == "FailedScheduling" for e in self.events.get(rec.id, ())):
            return
        if cores + rec.alloc_cores > self.config.cores:
            why = (
                f"insufficient cpu: {rec.alloc_cores} requested, "
                f"{cores} of {self.config.cores} in use"
            )
        else:
            why = (
                f"insufficient memory: {rec.alloc_ram / 2**30:g}Gi requested, "
                f"{ram / 2**30:g}Gi of {self.config.memory_gb}Gi in use"
            )
        self._event(rec, "Warning", "FailedScheduling", f"waiting in the queue: {why}")

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def replica_env(self, rec: SessionRecord) -> dict[str, str]:
        """A clean environment like a Skaha container's (spawn.replica_environment): PATH and
        the locale, `pass_env`, the session's env, then what Skaha injects."""
        home = str(self.config.replica_home)
        platform = {
            "skaha_hostname": self.identity.hostname,
            "skaha_username": self.identity.username,
            "skaha_sessionid": rec.id,
            "HOME": home,
            "PWD": home,
            "OMP_NUM_THREADS": str(rec.omp_threads),
        }
        return {**self._base_env, **dict(rec.env), **platform}

    async def _launch(self, rec: SessionRecord) -> None:
        session_dir = self.layout.session_dir(rec.id)  # made by the supervisor
        replica: int | None = None
        try:
            spec = {
                "id": rec.id,
                "dir": str(session_dir),
                "argv": [rec.cmd, *rec.args],
                "env": self.replica_env(rec),
                "cwd": str(self.config.replica_home),
                "ram_bytes": rec.alloc_ram or None,
                "grace": self.config.grace_period,
                "log_cap": self.config.log_cap,
                "nice": self.config.nice,
            }
            pid, ctime, replica = await self._supervisor.spawn(spec)
        except (OSError, LaunchError) as exc:
            self._launching.discard(rec.id)
            log.error("launch of %s failed: %s", rec.id, exc)
            if self.sessions.get(rec.id) is rec:
                self._event(rec, "Warning", "FailedCreate", f"could not start: {exc}")
                self._finish(rec, None, reason="launch")
            self.schedule()
            return
        self._launching.discard(rec.id)
        if self.sessions.get(rec.id) is not rec:
            return  # forgotten meanwhile (engine shutting down)
        rec.status = TERMINATING if rec.deleting else RUNNING
        rec.started = time.time()
        rec.supervisor_pid, rec.supervisor_ctime = pid, ctime
        if replica:
            self._replicas[rec.id] = replica
        self.store.update(rec)
        self._event(rec, "Normal", "Started", f"Started {rec.cmd} (pid {replica})")
        self._follow(rec)

    def _follow(self, rec: SessionRecord) -> None:
        """Follow a running session held by the supervisor, which tells us when it ends (at
        once, if it has already ended)."""
        if rec.id not in self._supervisor.held and rec.id not in self._legacy:
            self._ended(rec.id)
            return
        if rec.deleting or rec.end_reason == "deadline":
            self._terminate(rec)
        else:
            self._arm_deadline(rec)

    # ---------------------------------------------------------------- endings

    def _arm_deadline(self, rec: SessionRecord) -> None:
        self._cancel_timer(rec.id)
        if rec.started is None:
            return
        delay = max(0.0, rec.started + rec.deadline - time.time())
        self._timers[rec.id] = asyncio.get_running_loop().call_later(
            delay, self._deadline_passed, rec.id
        )

    def _cancel_timer(self, session_id: str) -> None:
        handle = self._timers.pop(session_id, None)
        if handle is not None:
            handle.cancel()

    def _deadline_passed(self, session_id: str) -> None:
        rec = self.sessions.get(session_id)
        if rec is None or rec.status != RUNNING:
            return
        rec.end_reason = "deadline"
        self.store.update(rec)
        self._event(
            rec, "Warning", "DeadlineExceeded", "Job was active longer than specified deadline"
        )
        self._terminate(rec)

    def _terminate(self, rec: SessionRecord) -> None:
        """The supervisor stops the replica's tree (TERM, grace, KILL); the engine steps in only
        if the replica has not ended in time."""
        self._cancel_timer(rec.id)
        self._event(
            rec,
            "Normal",
            "Killing",
            f"Stopping the replica (grace period {self.config.grace_period:g}s)",
        )
        stopping = self._supervisor.stop(rec.id) or self._legacy.signal(rec.id, signal.SIGTERM)
        if not stopping:
            return  # already ended: its end is being handled
        self._timers[rec.id] = asyncio.get_running_loop().call_later(
            self.config.grace_period + FORCE_KILL_MARGIN, self._force_kill, rec.id
        )

    def _force_kill(self, session_id: str) -> None:
        rec = self.sessions.get(session_id)
        if rec is None:
            return
        log.warning("replica of %s did not stop in time; killing it", session_id)
        self._supervisor.kill(session_id)
        self._legacy.signal(session_id, signal.SIGKILL)
        self._kill_orphaned_replica(rec)

    def _kill_orphaned_replica(self, rec: SessionRecord) -> None:
        record = read_json(self.layout.session_dir(rec.id) / SUPERVISOR_FILE) or {}
        if kill_group_checked(record.get("replica_pid"), record.get("replica_ctime")):
            log.warning("killed the unsupervised replica of %s", rec.id)

    def _ended(self, session_id: str) -> None:
        """The supervisor no longer holds the session: record how the replica ended."""
        rec = self.sessions.get(session_id)
        if rec is None or rec.final or rec.id in self._launching:
            return  # a launch that failed is handled by _launch
        self._cancel_timer(session_id)
        self._replicas.pop(session_id, None)
        self._legacy.forget(session_id)
        outcome = read_json(self.layout.session_dir(session_id) / EXIT_FILE)
        if outcome is None:  # the supervisor died without recording it
            self._kill_orphaned_replica(rec)
        self._finish(rec, outcome)
        self.schedule()

    def _supervisor_gone(self) -> None:
        """The supervisor ended (killed?): every session it held has ended, recorded or not."""
        for rec in list(self._active.values()):
            if rec.status in (RUNNING, TERMINATING) and rec.id not in self._launching:
                self._ended(rec.id)

    def _finish(self, rec: SessionRecord, outcome: dict[str, Any] | None, reason: str = "") -> None:
        if rec.deleting:
            self._forget(rec)
            return
        self._active.pop(rec.id, None)
        self._recent[rec.id] = rec
        rec.ended = time.time()
        if outcome is None:
            rec.end_reason = rec.end_reason or reason or "lost"
            rec.status = FAILED
            if rec.end_reason == "lost":
                self._event(
                    rec, "Warning", "Lost", "The supervisor ended without recording an exit status"
                )
        else:
            rec.exit_code, rec.exit_signal = outcome.get("code"), outcome.get("signal")
            rec.ended = float(outcome.get("ended") or rec.ended)
            rec.end_reason = rec.end_reason or "exit"
            ok = rec.exit_code == 0 and rec.end_reason != "deadline"
            rec.status = COMPLETED if ok else FAILED
            reason = "Completed" if ok else "Failed"
            message = describe_exit(rec.exit_code, rec.exit_signal)
            if outcome.get("oom"):  # the tree passed its RAM limit (memlimit.py)
                rec.status, rec.end_reason, reason = FAILED, "oom", "OOMKilled"
                message = oom_message(int(outcome["limit_bytes"]), int(outcome["used_bytes"]))
            self._event(rec, "Normal" if ok else "Warning", reason, message, at=rec.ended)
        self.store.update(rec)

    def _forget(self, rec: SessionRecord) -> None:
        self._cancel_timer(rec.id)
        self._replicas.pop(rec.id, None)
        self._legacy.forget(rec.id)
        self.sessions.pop(rec.id, None)
        self._active.pop(rec.id, None)
        self._recent.pop(rec.id, None)
        self.events.pop(rec.id, None)
        self.store.delete([rec.id])
        shutil.rmtree(self.layout.session_dir(rec.id), ignore_errors=True)

    # ---------------------------------------------------------------- restart and retention

    def _reconcile(self, rec: SessionRecord) -> None:
        """After a restart: adopt a replica the supervisor still holds, or record how it ended
        while the engine was down (the supervisor's hello says what it holds; a session it does
        not hold has its exit.json, written before, or was lost with a supervisor that died)."""
        session_dir = self.layout.session_dir(rec.id)
        owner = read_json(session_dir / SUPERVISOR_FILE) or {}
        held = rec.id in self._supervisor.held
        if not held and not owner and not (session_dir / EXIT_FILE).exists():
            if rec.status == PENDING:
                return  # never launched: it waits in the queue again
            self._finish(rec, None)
            return
        rec.supervisor_pid = owner.get("pid", rec.supervisor_pid)
        rec.supervisor_ctime = owner.get("ctime", rec.supervisor_ctime)
        rec.started = rec.started or owner.get("started") or time.time()
        if held:
            rec.status = TERMINATING if rec.deleting else RUNNING
            if owner.get("replica_pid"):
                self._replicas[rec.id] = owner["replica_pid"]
            self.store.update(rec)
            replica = owner.get("replica_pid")
            adopted = f"engine restarted; replica pid {replica} adopted"
            self._event(rec, "Normal", "Adopted", adopted)
            self._follow(rec)
            return
        if owner.get("pid") != self._supervisor.pid and self._legacy.adopt(
            rec.id, owner.get("pid"), owner.get("ctime")
        ):  # a per-replica supervisor started by an engine from before the one-supervisor model
            rec.status = TERMINATING if rec.deleting else RUNNING
            self.store.update(rec)
            self._event(
                rec,
                "Normal",
                "Adopted",
                f"engine restarted; supervisor pid {rec.supervisor_pid} adopted",
            )
            self._follow(rec)
            return
        self.store.update(rec)
        self._ended(rec.id)

    def sweep(self) -> None:
        """Forget finished sessions older than the retention period."""
        limit = time.time() - self.config.retention
        for rec in list(self.sessions.values()):
            if rec.final and (rec.ended or rec.created) <= limit:
                self._forget(rec)

    async def _sweep_forever(self) -> None:
        interval = min(3600.0, max(1.0, self.config.retention / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:
                log.exception("retention sweep failed")

    # ---------------------------------------------------------------- events

    def _event(
        self, rec: SessionRecord, kind: str, reason: str, message: str, at: float | None = None
    ) -> None:
        event = Event(kind, reason, message, at or time.time())
        self.events.setdefault(rec.id, []).append(event)
        with contextlib.suppress(Exception):
            self.store.add_event(rec.id, event)
