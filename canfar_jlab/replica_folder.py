"""A replica's working folder, ``<run>/replicas/<i>/``: the notebook's folder, seen from inside.

Replicas must not write into the notebook's folder (two replicas writing ``out.fits`` collide,
and the next run overwrites it), yet the notebook must find what sits beside it under the same
relative paths: ``data/x.fits``, ``../images``, ``import mymodule``. So before the first cell
the runner fills the replica's folder with the notebook folder's entries:

- directories and files over `COPY_MAX_BYTES` become symlinks (reading costs nothing);
- small files (modules, CSV tables, configs) are copied, so a replica that rewrites one
  changes its own copy, not the original and not another replica's (at most `COPY_MAX_FILES`
  files and `COPY_MAX_TOTAL` bytes; the rest are linked);
- the entries of the notebook folder's parent are linked into ``replicas/`` (the working
  folder's parent), so ``../images`` reads the notebook's ``../images``;
- the runs root, when it sits in either folder (``make lab`` puts it beside the notebooks),
  is not mirrored: through it a replica would see every run, its own included, and a tool
  walking its folder would go round in circles.

New relative writes then land in the replica's folder. What the farm cannot isolate: a write
*through* a link (``data/new.fits`` when ``data`` is a linked folder, or an existing large file
opened for writing) reaches the original, as it would in the notebook's folder.

At the end `new_files` lists what the replica created or changed there (links, unchanged
copies, ``status.json``, ``executed.ipynb``, ``kernel.log`` and ``__pycache__`` left out).

Standard library only: export copies this file into the run folder beside the runner.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

COPY_MAX_BYTES = 1 << 20
COPY_MAX_FILES = 200
COPY_MAX_TOTAL = 20 << 20
LIST_MAX = 1000
SKIPPED = {".ipynb_checkpoints", "__pycache__"}
OWN_FILES = {"status.json", "executed.ipynb", "kernel.log"}


@dataclass
class ReplicaFolder:
    path: Path
    source: Path | None  # the notebook's folder
    copies: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime_ns)
    problems: list[str] = field(default_factory=list)

    def new_files(self) -> list[str]:
        """Files the replica wrote in its folder, relative to it, sorted (at most LIST_MAX)."""
        found: list[str] = []
        for top, folders, files in os.walk(self.path):
            folders[:] = sorted(
                name
                for name in folders
                if name not in SKIPPED and not os.path.islink(os.path.join(top, name))
            )
            for name in sorted(files):
                full = os.path.join(top, name)
                relative = os.path.relpath(full, self.path)
                if os.path.islink(full) or name.startswith(".status.json."):
                    continue
                if top == str(self.path) and (name in OWN_FILES or self._unchanged_copy(name)):
                    continue
                found.append(relative.replace(os.sep, "/"))
                if len(found) >= LIST_MAX:
                    return sorted(found)
        return sorted(found)

    def _unchanged_copy(self, name: str) -> bool:
        recorded = self.copies.get(name)
        if recorded is None:
            return False
        try:
            stat = os.stat(self.path / name)
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == recorded


def prepare(
    path: Path, source: Path | None, runs_root: Path | None = None, link_parent: bool = True
) -> ReplicaFolder:
    """Create `path` (if missing) and mirror `source`'s entries in it and its parent's in ours
    (not for the reduce step, `link_parent` False: its parent is the run folder itself),
    leaving out `runs_root` (the folder holding the run folders)."""
    folder = ReplicaFolder(path=Path(path), source=Path(source) if source else None)
    folder.path.mkdir(parents=True, exist_ok=True)
    if folder.source is None or not folder.source.is_dir():
        return folder
    runs = os.path.realpath(runs_root) if runs_root is not None else None
    budget = [COPY_MAX_FILES, COPY_MAX_TOTAL]
    for entry in _entries(folder.source, folder):
        if entry.name in SKIPPED or entry.name in OWN_FILES or _is(entry, runs):
            continue
        target = folder.path / entry.name
        if os.path.lexists(target):  # a rerun keeps what an earlier attempt left
            _note_earlier_copy(folder, entry, target)
            continue
        try:
            if _should_copy(entry, budget):
                shutil.copy2(entry, target)
                stat = os.stat(target)
                folder.copies[entry.name] = (stat.st_size, stat.st_mtime_ns)
            else:
                os.symlink(entry, target)
        except OSError as error:
            folder.problems.append(f"{entry.name}: {error.strerror or error}")
    parent = folder.source.parent
    if parent != folder.source and link_parent:
        for entry in _entries(parent, folder):
            target = folder.path.parent / entry.name
            if entry.name in SKIPPED or os.path.lexists(target) or _is(entry, runs):
                continue  # another replica linked it first, or a replica folder has this name
            try:
                os.symlink(entry, target)
            except FileExistsError:
                pass
            except OSError as error:
                folder.problems.append(f"../{entry.name}: {error.strerror or error}")
    return folder


def _is(entry: os.DirEntry, real_path: str | None) -> bool:
    return real_path is not None and os.path.realpath(entry.path) == real_path


def _note_earlier_copy(folder: ReplicaFolder, entry: os.DirEntry, target: Path) -> None:
    """An earlier attempt's copy that nobody changed is no output of this one: copy2 kept the
    source's size and mtime, so a copy still matching them is unchanged."""
    try:
        if os.path.islink(target) or not entry.is_file(follow_symlinks=False):
            return
        source = entry.stat(follow_symlinks=False)
    except OSError:
        return
    folder.copies[entry.name] = (source.st_size, source.st_mtime_ns)


def _entries(folder: Path, report: ReplicaFolder) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        report.problems.append(f"{folder}: {error.strerror or error}")
        return []


def _should_copy(entry: os.DirEntry, budget: list[int]) -> bool:
    try:
        if not entry.is_file(follow_symlinks=False):
            return False
        size = entry.stat(follow_symlinks=False).st_size
    except OSError:
        return False
    if size > COPY_MAX_BYTES or budget[0] <= 0 or budget[1] < size:
        return False
    budget[0] -= 1
    budget[1] -= size
    return True
