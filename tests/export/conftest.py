"""Fixtures for the export tests: notebooks built with nbformat, real kernels, real batch runs."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import v4

REPLICA_VARIABLES = ("REPLICA_ID", "REPLICA_COUNT", "CANFAR_RUN_OUTPUTS", "MPLBACKEND")
# The runner's marker line before each code cell, bare or as `[i] ...` in a followed run.
MARKER_LINE = re.compile(r"^(\[\d+\] )?## canfar-jlab cell .*\n?", re.MULTILINE)
# The runner's first line, at process start (export_runner.start_line).
START_LINE = re.compile(
    r"^(\[\d+\] )?canfar-jlab: replica \d+ of \d+ starting \(notebook .*\)\n?", re.MULTILINE
)


def without_markers(text: str) -> str:
    """A replica's log as the notebook printed it: the runner's start and cell markers left out."""
    return MARKER_LINE.sub("", START_LINE.sub("", text))


def cell(source: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell; tags such as "skip-batch" or "parameters"."""
    made = v4.new_code_cell(source)
    if tags:
        made.metadata["tags"] = list(tags)
    return made


def write_notebook(path: Path, cells: list, metadata: dict | None = None) -> Path:
    """Write a notebook; with no metadata it has neither language_info nor kernelspec."""
    notebook = v4.new_notebook(cells=[c if isinstance(c, dict) else cell(c) for c in cells])
    notebook.metadata = metadata or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def kernel_stdout(path: Path) -> str:
    """Run the notebook in a python3 kernel from its folder; what it printed, as the UI shows it.

    That is stdout streams plus the text/plain of displays and cell results, in order; stderr
    and errors are left out (the batch run's stdout is compared with this).
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    printed = []
    for executed in notebook.cells:
        for output in executed.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                printed.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                printed.append(output.data.get("text/plain", "") + "\n")
    return "".join(printed)


def run_batch(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run a replica's command line as the engine would: argument list, no shell."""
    clean = {k: v for k, v in os.environ.items() if k not in REPLICA_VARIABLES}
    clean.update(env or {})
    return subprocess.run(
        argv,
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def normalize(text: str, *folders: Path) -> str:
    """Blank out what legitimately differs between two runs: folders, timings, addresses.

    Also CRLF: `!cmd` output comes through a pseudo-terminal; the kernel passes its CRLF line
    ends on (the browser shows them as plain line ends), the batch log gets plain LF.
    """
    for folder in folders:
        text = text.replace(str(folder), "<folder>")
    text = text.replace("\r\n", "\n")
    text = re.sub(r" at 0x[0-9a-f]+>", " at 0x?>", text)
    text = re.sub(r"^(CPU times|Wall time):.*$", r"\1: <time>", text, flags=re.MULTILINE)
    return re.sub(r"^.* per loop \(mean ± std\. dev\. of .*\)$", "<timeit>", text, flags=re.M)


@pytest.fixture
def make_notebook(tmp_path) -> Callable[..., Path]:
    def make(cells: list, name: str = "notebook.ipynb", metadata: dict | None = None) -> Path:
        return write_notebook(tmp_path / "notebooks" / name, cells, metadata)

    return make


@pytest.fixture
def helpers():
    """The module-level helpers, for tests that need them directly."""

    class Helpers:
        cell = staticmethod(cell)
        write_notebook = staticmethod(write_notebook)
        kernel_stdout = staticmethod(kernel_stdout)
        run_batch = staticmethod(run_batch)
        normalize = staticmethod(normalize)

    return Helpers
