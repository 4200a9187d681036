"""The routes call a typed service object, built from the class the `backend_class` setting
names (as jupyter-scheduler's `scheduler_class`): a deployment can swap it."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient
from server_config import server_config

from canfar_jlab.errors import NotFound
from canfar_jlab.models import Image, Session
from canfar_jlab.server.backend import Backend


class CannedBackend(Backend):
    """A backend that answers from memory: no credentials, no session service."""

    async def images(self) -> list[Image]:
        return [Image(id="images.example/canned:1", types=["headless"])]

    async def get_session(self, session_id: str) -> Session:
        raise NotFound(f"no session {session_id} in the canned backend")


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config({"backend_class": CannedBackend})


async def test_the_routes_call_the_configured_backend_class(jp_fetch, jp_serverapp):
    assert isinstance(jp_serverapp.web_app.settings["canfar_jlab_backend"], CannedBackend)
    response = await jp_fetch("canfar-jlab", "images")
    assert [i["id"] for i in json.loads(response.body)["images"]] == ["images.example/canned:1"]


async def test_its_errors_go_through_the_one_http_table(jp_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await jp_fetch("canfar-jlab", "sessions", "abc123")
    assert caught.value.code == 404
    body = json.loads(caught.value.response.body)
    assert body["message"] == "no session abc123 in the canned backend"
