"""CANFAR starts JupyterLab with allow_origin="*"; the live channel must not trust that."""

from __future__ import annotations

import pytest
import tornado.httpclient
from server_config import server_config


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config(allow_origin="*")


async def test_foreign_origin_refused_even_with_allow_origin_star(jp_ws_fetch, jp_serverapp):
    assert jp_serverapp.allow_origin == "*"
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_ws_fetch("canfar-jlab", "live", headers={"Origin": "https://evil.example"})
    assert info.value.code == 403
