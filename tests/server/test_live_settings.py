"""The whole-log cap is a server setting that reaches the live hub."""

from __future__ import annotations

import pytest
from server_config import server_config


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config({"log_bytes_per_second": 123456})


async def test_the_whole_log_cap_is_a_setting(jp_serverapp):
    backend = jp_serverapp.web_app.settings["canfar_jlab_backend"]
    await backend.connect()
    assert backend.hub.budget.rate == 123456
