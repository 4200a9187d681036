"""The engine's state on disk: SQLite in WAL mode, written through on every change.

The engine keeps every session in memory and answers from there; this store is what a restarted
engine reads back. One connection, used only from the event-loop thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .layout import FILE_MODE
from .records import Event, SessionRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    image TEXT NOT NULL,
    type TEXT NOT NULL,
    userid TEXT NOT NULL,
    cmd TEXT NOT NULL,
    args TEXT NOT NULL,
    env TEXT NOT NULL,
    cores REAL,
    ram REAL,
    gpus INTEGER,
    created REAL NOT NULL,
    deadline REAL NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    ended REAL,
    exit_code INTEGER,
    exit_signal INTEGER,
    end_reason TEXT,
    supervisor_pid INTEGER,
    supervisor_ctime REAL,
    deleting INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    type TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    first REAL NOT NULL,
    last REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, seq);
"""

# Columns that change over a session's life, written by `update`.
_MUTABLE = (
    "status",
    "started",
    "ended",
    "exit_code",
    "exit_signal",
    "end_reason",
    "supervisor_pid",
    "supervisor_ctime",
    "deleting",
    "deadline",
)


class SessionStore:
    """Writes open a transaction that stays open until `commit()`; the engine commits once per
    event-loop turn (and at once for creates), so a burst of changes costs one commit."""

    def __init__(self, path: Path, on_dirty: Callable[[], None] | None = None) -> None:
        self.on_dirty = on_dirty
        if not path.exists():  # born private: user commands and env values are stored here
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        self.commit()
        self._db.close()

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
            if self.on_dirty is not None:
                self.on_dirty()

    def load_sessions(self) -> list[SessionRecord]:
        cursor = self._db.execute("SELECT * FROM sessions ORDER BY seq")
        names = [d[0] for d in cursor.description]
        records = []
        for row in cursor:
            data = dict(zip(names, row, strict=True))
            data["args"] = json.loads(data["args"])
            data["env"] = [tuple(pair) for pair in json.loads(data["env"])]
            data["deleting"] = bool(data["deleting"])
            records.append(SessionRecord(**data))
        return records

    def load_events(self) -> dict[str, list[Event]]:
        events: dict[str, list[Event]] = {}
        for sid, kind, reason, message, first, last in self._db.execute(
            "SELECT session_id, type, reason, message, first, last FROM events ORDER BY seq"
        ):
            events.setdefault(sid, []).append(Event(kind, reason, message, first, last))
        return events

    def insert(self, rec: SessionRecord) -> int:
        self._begin()
        cursor = self._db.execute(
            "INSERT INTO sessions (id, name, image, type, userid, cmd, args, env, cores, ram, gpus,"
            " created, deadline, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                rec.name,
                rec.image,
                rec.type,
                rec.userid,
                rec.cmd,
                json.dumps(rec.args),
                json.dumps(rec.env),
                rec.cores,
                rec.ram,
                rec.gpus,
                rec.created,
                rec.deadline,
                rec.status,
            ),
        )
        return int(cursor.lastrowid or 0)

    def update(self, rec: SessionRecord) -> None:
        self._begin()
        values = [getattr(rec, column) for column in _MUTABLE]
        values[_MUTABLE.index("deleting")] = int(rec.deleting)
        assignments = ", ".join(f"{column} = ?" for column in _MUTABLE)
        self._db.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", (*values, rec.id))  # noqa: S608

    def delete(self, session_ids: list[str]) -> None:
        self._begin()
        for sid in session_ids:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
            self._db.execute("DELETE FROM events WHERE session_id = ?", (sid,))

    def add_event(self, session_id: str, event: Event) -> None:
        self._begin()
        self._db.execute(
            "INSERT INTO events (session_id, type, reason, message, first, last)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, event.type, event.reason, event.message, event.first, event.last),
        )
