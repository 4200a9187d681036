"""Shared pytest setup: a Jupyter server with canfar_jlab enabled and authentication required.

No test may touch the developer's own state or reach a real CANFAR: the whole session runs with
CANFAR_JLAB_HOME in a temporary folder and no CANFAR_* credentials in the environment.
"""

from __future__ import annotations

import os

import pytest
from server_config import server_config

pytest_plugins = ("pytest_jupyter.jupyter_server", "fixtures_engine", "fixtures_cli")

_CREDENTIAL_VARIABLES = ("CANFAR_URL", "CANFAR_TOKEN", "CANFAR_CERTIFICATE")


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory):
    isolated = (
        *_CREDENTIAL_VARIABLES,
        "CANFAR_JLAB_HOME",
        "CANFAR_JLAB_ENGINE_WORKDIR",
        "CANFAR_JLAB_CONFIG",
        "CANFAR_JLAB_STAGE",
    )
    saved = {name: os.environ.get(name) for name in isolated}
    for name in _CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
    home = tmp_path_factory.mktemp("canfar-jlab-home")
    os.environ["CANFAR_JLAB_HOME"] = str(home)
    # The user's settings (`canfar-jlab config`, e.g. runs-root) are the test session's own.
    os.environ["CANFAR_JLAB_CONFIG"] = str(tmp_path_factory.mktemp("canfar-jlab-config"))
    # Replicas of an engine started on demand get a scratch HOME, not the developer's own.
    os.environ["CANFAR_JLAB_ENGINE_WORKDIR"] = str(tmp_path_factory.mktemp("replica-home"))
    # Skaha look-alikes here read run folders directly; the staging tests turn this back on.
    os.environ["CANFAR_JLAB_STAGE"] = "never"
    yield home
    from canfar_jlab.engine.control import stop_engine

    stop_engine(home)  # an engine a test started on demand must not outlive the suite
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config()
