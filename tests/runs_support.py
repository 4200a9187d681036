"""Helpers for the runs tests: a client for the test engine, notebooks, polling."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

# The export tests' notebook builders and kernel runner (tests/export/conftest.py).
from export.conftest import cell, kernel_stdout, normalize, without_markers, write_notebook
from fixtures_engine import RunningEngine

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.runs import Run, RunStore, follow_run
from canfar_jlab.skaha import SkahaClient

__all__ = ["cell", "kernel_stdout", "normalize", "without_markers", "write_notebook"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "reduce_fits.ipynb"


def client_for(engine: RunningEngine) -> SkahaClient:
    """An async client for the test engine (build it inside the async test)."""
    return SkahaClient(engine_credentials(engine.home, start=False))


async def run_to_end(
    name: str, client: SkahaClient, store: RunStore, timeout: float = 120.0, **options
) -> tuple[Run, dict[int, list[str]]]:
    """Follow run `name` until it ends; its final Run and each replica's log lines."""
    lines: dict[int, list[str]] = {}
    run = await asyncio.wait_for(
        follow_run(
            name,
            client,
            store,
            on_line=lambda index, line: (
                without_markers(line) and lines.setdefault(index, []).append(line)
            ),
            interval=0.1,
            **options,
        ),
        timeout,
    )
    return run, lines


async def wait_until(
    predicate: Callable[[], Awaitable[T]], timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll an async predicate until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


def archived(run: Run, index: int) -> str:
    replica = run.replica(index)
    assert replica.log is not None, f"replica {index} has no archived log"
    return without_markers((Path(run.folder) / replica.log).read_text())


FAILS_ONCE = """
import os
from pathlib import Path
replica = os.environ["REPLICA_ID"]
print(f"replica {replica} of {os.environ['REPLICA_COUNT']}")
marker = Path(os.environ["CANFAR_RUN_OUTPUTS"]) / "replica-2-tried"
if replica == "2" and not marker.exists():
    marker.touch()
    raise RuntimeError("replica 2 fails the first time")
(Path(os.environ["CANFAR_RUN_OUTPUTS"]) / f"done-{replica}").write_text("ok")
print("finished")
"""

_CELL_HEADER = re.compile(r"^\[\d+\] ## canfar-jlab cell \d+/\d+")


def printed(text: str) -> list[str]:
    """What replicas printed, without the runner's `## canfar-jlab cell i/n` headers."""
    return [line for line in text.splitlines() if not _CELL_HEADER.match(line)]
