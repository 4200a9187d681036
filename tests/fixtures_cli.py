"""The CLI against the test engine, as a real process (`cli`) and in this process
(`cli_here`): a pytest plugin (tests/conftest.py), used by tests/cli and tests/runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from runs_support import REPO

from canfar_jlab.cli import main


@pytest.fixture
def cli_env(engine, tmp_path, monkeypatch) -> dict[str, str]:
    """The test engine as the service, runs under tmp_path/runs, an empty HOME (no ~/.canfar
    or ~/.ssl). Set in this process too, for verbs run in-process with `main()`."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "CANFAR_JLAB_HOME": str(engine.home),
        "CANFAR_JLAB_RUNS": str(tmp_path / "runs"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def cli(cli_env):
    """Run `python -m canfar_jlab ARGS` as a real process (run and rerun poll every 0.2 s)."""

    def run(*args: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
        environ.update(cli_env)
        poll = ["--interval", "0.2"] if args[0] in ("run", "rerun") else []
        return subprocess.run(
            [sys.executable, "-m", "canfar_jlab", *args, *poll],
            capture_output=True,
            text=True,
            env=environ,
            cwd=REPO,
            timeout=120,
        )

    return run


@pytest.fixture
def cli_here(cli_env, capsys):
    """The same verbs through `canfar_jlab.cli.main` in this process (no interpreter start:
    the machine is shared), as (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
