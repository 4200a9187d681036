"""Where the local engine keeps its files, all under `<data home>/engine/`.

Stdlib only: the control API and the daemon use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .sessionfiles import (  # noqa: F401 - re-exported for the engine's modules
    EXIT_FILE,
    FILE_MODE,
    SESSION_LOG,
    SUPERVISOR_FILE,
    read_json,
    write_json_atomic,
)

DIR_MODE = 0o700


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
    def supervisor_socket(self) -> Path:
        """Where the supervisor of every replica (supervisor.py) listens for the engine."""
        return self.root / "supervisor.sock"

    @cached_property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    def session_dir(self, session_id: str) -> Path:
        # `joinpath` on the one cached parent: called for every launch, exit and log read.
        return self.sessions_dir.joinpath(session_id)

    def ensure_dirs(self) -> None:
        for path in (self.home, self.root, self.sessions_dir):
            path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
