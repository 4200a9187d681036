"""Pytest fixtures that run the real local engine daemon in a temporary data home.

- `engine` (session scope): one engine for the whole test session; tests must delete the
  long-running sessions they create.
- `engine_factory` (function scope): `engine_factory(cores=1, ...)` starts a fresh engine with
  those settings in a new home; every engine it started is stopped (replicas included) after
  the test.

Both yield `RunningEngine` objects (`.url`, `.token`, `.home`, `.info`, `.client()`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from canfar_jlab.engine.control import EngineInfo, ensure_engine, stop_engine

T = TypeVar("T")

START_TIMEOUT = 60.0  # a shared 2-core machine can be slow to start an interpreter
STOP_TIMEOUT = 60.0


@dataclass
class RunningEngine:
    """A started engine and how to talk to it."""

    home: Path
    info: EngineInfo
    workdir: Path

    @property
    def url(self) -> str:
        """Base URL ending in /skaha."""
        return self.info.url

    @property
    def token(self) -> str:
        return self.info.token()

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on `<url>/v1` that sends the bearer token."""
        return httpx.Client(
            base_url=f"{self.url}/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            trust_env=False,
            timeout=30.0,
            **kwargs,
        )

    def stop(self, terminate_replicas: bool = True) -> None:
        stop_engine(self.home, timeout=STOP_TIMEOUT, terminate_replicas=terminate_replicas)


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def start_engine(home: Path, **settings: Any) -> RunningEngine:
    """Start (or find) the engine for `home`; replicas get `home/work` as HOME, grace 5 s."""
    workdir = home / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    config = {"workdir": str(workdir), "grace_period": 5, **settings}
    info = ensure_engine(home, timeout=START_TIMEOUT, config=config)
    return RunningEngine(home=home, info=info, workdir=workdir)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """One real engine daemon for the test session (8 cores of capacity)."""
    running = start_engine(tmp_path_factory.mktemp("engine-home"), cores=8)
    yield running
    running.stop()


@pytest.fixture
def engine_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningEngine]]:
    """Start fresh engines with settings, e.g. `engine_factory(cores=1, log_cap=4096)`."""
    started: list[RunningEngine] = []

    def start(**settings: Any) -> RunningEngine:
        running = start_engine(tmp_path_factory.mktemp("engine-home"), **settings)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def queueing_engine(engine_factory):
    """An engine of one core: the crash trials' replicas queue as Pending and cost nothing."""
    return engine_factory(cores=1)
