"""Shared pytest setup: a Jupyter server with canfar_jlab enabled and authentication required."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def jp_server_config(jp_server_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"canfar_jlab": True},
            "allow_unauthenticated_access": False,
        }
    }
