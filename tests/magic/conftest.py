"""Fixtures for the magic tests: an IPython shell with `%load_ext canfar_jlab`, talking to the
local engine the usual credentials find (the test session's CANFAR_JLAB_HOME), with runs in a
temporary folder given the way users give it ($CANFAR_JLAB_RUNS), so the server extension's
default store sees them too."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_engine import RunningEngine, start_engine
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from canfar_jlab.paths import data_home


@pytest.fixture(scope="package")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("magic-runs")
    saved = {name: os.environ.get(name) for name in ("CANFAR_JLAB_RUNS", "IPYTHONDIR")}
    os.environ["CANFAR_JLAB_RUNS"] = str(root)
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython-dir"))
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="package")
def local_engine(_isolated_state: Path) -> RunningEngine:
    """The engine credential discovery starts on demand, started here first with room for the
    tests' replicas (8 cores) and a scratch working directory. tests/conftest.py stops it."""
    assert data_home() == _isolated_state
    return start_engine(data_home(), cores=8)


@pytest.fixture(scope="package")
def shell(runs_root: Path, local_engine: RunningEngine) -> Iterator[InteractiveShell]:
    """One shell for the package, as a kernel has one (history in memory, not in ~/.ipython)."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    ipython = InteractiveShell.instance(config=config)
    ipython.run_line_magic("load_ext", "canfar_jlab")
    ipython.run_line_magic("config", "CanfarMagics.poll_interval = 0.1")
    yield ipython
    InteractiveShell.clear_instance()
