"""A run's snapshot of its notebook: the checks and the export into the run folder that a
launch makes, made again for a re-run from the notebook as saved now (`reexport`).

Below both the launcher and the re-run (actions.py), so neither imports the other for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import LaunchRefused
from ..export import ExportError, ExportProblem, check_notebook, export_notebook
from ..export import script_name_for as script_name
from ..models import Run
from ..skaha import SkahaClient
from .store import RunStore

PYTHON_ENV = "CANFAR_JLAB_PYTHON"
REMOTE_PYTHON = "python3"  # what a CANFAR image runs the script with, unless PYTHON_ENV says


def replica_python(client: SkahaClient | None) -> str:
    """The interpreter replicas start: this one on the local engine (same machine, same
    environment), `$CANFAR_JLAB_PYTHON` or `python3` from the image on Skaha."""
    if client is None or client.credentials.is_local_engine:
        return sys.executable
    return os.environ.get(PYTHON_ENV, "").strip() or REMOTE_PYTHON


async def reexport(run: Run, client: SkahaClient, store: RunStore) -> Run:
    """Export the run's notebook as it is on disk now into its folder (re-run from the current
    notebook): a new script, the same parameters; run.json records the new checksum."""
    notebook = notebook_path(run.notebook)
    folder = Path(run.folder)
    problems = await asyncio.to_thread(check_problems, notebook, run.spec.parameters)
    if problems:
        raise LaunchRefused(refusal(notebook, problems), problems, headline(notebook))
    try:
        exported = await asyncio.to_thread(
            export_notebook,
            notebook,
            folder,
            parameters=run.spec.parameters or None,
            python=replica_python(client),
            script_name=script_name(notebook),
        )
    except ExportError as error:
        raise LaunchRefused(str(error)) from None
    if exported.problems:
        raise LaunchRefused(
            refusal(notebook, exported.problems), exported.problems, headline(notebook)
        )

    def record(current: Run) -> None:
        current.script = exported.script_path.name
        current.notebook_sha256 = exported.checksum
        current.spec.argv = list(exported.argv)
        if current.spec.reduce in (None, "cells"):  # issue 17: the notebook's reduce cells now
            current.spec.reduce = "cells" if exported.reduce_cells else None

    return store.update(run.name, record)


def notebook_changed(run: Run) -> bool | None:
    """Whether the run's notebook on disk differs from the snapshot it was launched with
    (None: the notebook is gone)."""

    try:
        content = Path(run.notebook).read_bytes()
    except OSError:
        return None
    return hashlib.sha256(content).hexdigest() != run.notebook_sha256


def notebook_path(notebook: str) -> Path:
    path = Path(os.path.abspath(Path(notebook).expanduser()))
    if not path.is_file():
        raise LaunchRefused(f"no notebook at {path}")
    return path


def check_problems(
    notebook: Path, parameters: dict[str, object], rows: list[dict[str, Any]] | None = None
) -> list[ExportProblem]:
    try:
        return check_notebook(notebook, parameters=parameters or None, sweep=rows)
    except ExportError as error:
        raise LaunchRefused(str(error)) from None


def refusal(notebook: Path, problems: list[ExportProblem]) -> str:
    """One line naming every problem (the UI and --json get them as a list)."""
    shown = "; ".join(str(problem) for problem in problems)
    count = f" ({len(problems)} problems)" if len(problems) > 1 else ""
    return f"{headline(notebook)}: {shown}{count}"


def headline(notebook: Path) -> str:
    return f"cannot run {notebook.name} as batch"
