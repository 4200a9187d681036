"""The runs root on disk: one folder per run, each with its `run.json`.

Every front door (server extension, magic, CLI) and every process reads and writes the same
folders, so:
- `run.json` is replaced atomically (temp file + `os.replace`): a reader sees the old or the new
  document, never half of one;
- a change is a read-modify-write under an exclusive `flock` on the run's `.run.lock`, held only
  for that short synchronous step (never across an await), so two writers never lose each
  other's updates;
- a run folder is claimed with `mkdir`, which fails if it exists: two launches never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from ..atomic import write_atomically
from ..errors import LaunchRefused as LaunchRefused  # re-exported for older importers
from ..errors import NothingToRerun as NothingToRerun
from ..errors import RunError as RunError
from ..errors import RunNameInUse, RunNotFound
from ..models import RUN_NAME_MAX, SESSION_NAME_PATTERN, Run, unsafe_char
from ..paths import user_settings

log = logging.getLogger(__name__)

RUNS_ENV = "CANFAR_JLAB_RUNS"
RUN_FILE = "run.json"
LOCK_FILE = ".run.lock"
LOGS_DIR = "logs"
OUTPUTS_DIR = "outputs"


RUNS_ROOT_SETTING = "runs-root"


def default_root() -> Path:
    """`$CANFAR_JLAB_RUNS`, else the user's setting (`canfar-jlab config set runs-root PATH`),
    else `~/canfar-runs` (CANFAR mounts home in every session). Every door (server, CLI,
    magic) reads this, so they all list the same runs; the server's `runs_root` overrides it."""
    explicit = os.environ.get(RUNS_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    configured = user_settings().get(RUNS_ROOT_SETTING)
    if isinstance(configured, str) and configured.strip():
        return Path(configured.strip()).expanduser()
    return Path.home() / "canfar-runs"


class RunStore:
    """The runs under `root` (default: `default_root()`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(os.path.abspath(Path(root).expanduser() if root else default_root()))
        self._cache: dict[str, tuple[tuple[int, ...], Run]] = {}
        # What `reconcile` saw last time, to report each run's end once per store.
        self.seen_states: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ---------------------------------------------------------------- reading

    def folder(self, name: str) -> Path:
        """The folder of run `name`; RunNotFound for a name no run can have (no path tricks)."""
        if not isinstance(name, str) or len(name) > RUN_NAME_MAX:
            raise RunNotFound(f"no run named {str(name)[:80]!r}")
        if not SESSION_NAME_PATTERN.match(name):
            raise RunNotFound(f"no run named {name[:80]!r}")
        return self.root / name

    def get(self, name: str) -> Run:
        path = self.folder(name) / RUN_FILE
        run = self._read(path)
        if run is None:
            raise RunNotFound(f"no run named {name!r} in {self.root}")
        return run

    def list(self) -> list[Run]:
        """Every readable run, newest first."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise RunError(f"cannot read the runs folder {self.root}: {error.strerror}") from None
        runs = []
        for entry in entries:
            if entry.is_dir() and SESSION_NAME_PATTERN.match(entry.name):
                run = self._read(Path(entry.path) / RUN_FILE)
                if run is not None:
                    runs.append(run)
        live = {str(self.root / run.name / RUN_FILE) for run in runs}
        for key in [key for key in self._cache if key not in live]:
            del self._cache[key]
        return sorted(runs, key=lambda run: (run.created, run.name), reverse=True)

    def exists(self, name: str) -> bool:
        try:
            return self.folder(name).exists()
        except RunNotFound:
            return False

    def _read(self, path: Path, cached: bool = True) -> Run | None:
        """The run in `path`, None when absent or unreadable (a foreign folder).

        Parsed documents are cached by inode, size and times: every write is a new file.
        """
        try:
            stat = path.stat()
        except OSError:
            return None
        key = str(path)
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        hit = self._cache.get(key) if cached else None
        if hit is not None and hit[0] == stamp:
            return hit[1].model_copy(deep=True)
        try:
            run = Run.model_validate_json(path.read_bytes())
        except (OSError, ValueError, ValidationError):
            log.warning("skipping unreadable %s", path)
            return None
        self._cache[key] = (stamp, run)
        return run.model_copy(deep=True)

    # ---------------------------------------------------------------- writing

    def claim(self, name: str) -> Path:
        """Create the folder of a new run; RunNameInUse when it exists."""
        folder = self.folder(name)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
        except FileExistsError:
            raise RunNameInUse(f"a run named {name!r} already exists in {self.root}") from None
        except OSError as error:
            raise RunError(f"cannot create {folder}: {error.strerror or error}") from None
        return folder

    def write(self, run: Run) -> None:
        """Write `run.json` of a run whose folder exists (no merge: for a new run)."""
        with self._locked(run.name):
            self._write(run)

    def update(self, name: str, change: Callable[[Run], None]) -> Run:
        """Apply `change` to the current `run.json` under the run's lock; write if it changed."""
        with self._locked(name):
            run = self._read(self.folder(name) / RUN_FILE, cached=False)
            if run is None:
                raise RunNotFound(f"no run named {name!r} in {self.root}")
            before = run.model_dump_json()
            change(run)
            if run.model_dump_json() != before:
                self._write(run)
            return run

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        folder = self.folder(name)
        try:
            descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise RunNotFound(f"no run named {name!r} in {self.root}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _write(self, run: Run) -> None:
        path = self.folder(run.name) / RUN_FILE
        text = json.dumps(run.model_dump(mode="json"), indent=1) + "\n"
        try:
            write_atomically(path, text, durable=True)
        except OSError as error:
            raise RunError(f"cannot write {path}: {error.strerror or error}") from None


def check_path_safe(what: str, path: Path) -> None:
    """Refuse a folder that cannot travel in a replica's args or env on Skaha."""
    shown = unsafe_char(str(path), whitespace=True, equals=True)
    if shown:
        raise RunError(
            f"the {what} {str(path)!r} contains {shown}, which Skaha cannot pass to a replica; "
            f"choose another runs folder (set {RUNS_ENV})"
        )
