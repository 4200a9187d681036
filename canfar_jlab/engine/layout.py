"""Where the local engine keeps its files, all under `<data home>/engine/`.

Stdlib only: the control API, the daemon, the fork server and the per-replica supervisor all use
it, and the last two must start fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class EngineLayout:
    """Paths of one engine instance's state, derived from the user's data home."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "engine"

    @property
    def state_file(self) -> Path:
        """URL, pid and state of the running daemon (JSON, mode 0600)."""
        return self.root / "state.json"

    @property
    def token_file(self) -> Path:
        """The bearer token clients must send (mode 0600)."""
        return self.root / "token"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def database(self) -> Path:
        return self.root / "engine.db"

    @property
    def log_file(self) -> Path:
        """The daemon's own log (never the replicas' output)."""
        return self.root / "engine.log"

    @property
    def start_lock(self) -> Path:
        """Held while a client checks for and starts a daemon, so two clients start one."""
        return self.root / "start.lock"

    @property
    def run_lock(self) -> Path:
        """Held by the daemon for its whole life, so two daemons never share a home."""
        return self.root / "run.lock"

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    def session_dir(self, session_id: str) -> Path:
        return self.sessions_dir / session_id

    def ensure_dirs(self) -> None:
        for path in (self.home, self.root, self.sessions_dir):
            path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


# Files inside one session directory, shared by the engine and the supervisor.
SESSION_LOG = "output.log"
SUPERVISOR_FILE = "supervisor.json"
SUPERVISOR_LOCK = "supervisor.lock"
EXIT_FILE = "exit.json"


def write_json_atomic(path: Path, data: object) -> None:
    """Write `data` as JSON through a private temporary file and a rename (readers see all or
    nothing, and the file is born with mode 0600 instead of being chmod-ed afterwards)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
