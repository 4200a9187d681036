"""JSON calls to the canfar-jlab REST routes, shared by the server tests."""

from __future__ import annotations

import json
from typing import Any

import pytest
import tornado.httpclient


async def rest_json(jp_fetch, *path: str, method: str = "GET", body: Any = None):
    """(status, decoded JSON body) of one call under /canfar-jlab."""
    kwargs: dict[str, Any] = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = await jp_fetch("canfar-jlab", *path, **kwargs)
    return response.code, json.loads(response.body)


async def rest_error(
    jp_fetch, *path: str, method: str = "POST", body: Any = None
) -> tuple[int, str]:
    """(status, message) of a call that must be refused with a one-line message, no traceback."""
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await rest_json(jp_fetch, *path, method=method, body=body)
    body_text = info.value.response.body.decode()
    assert "Traceback" not in body_text
    message = json.loads(body_text)["message"]
    assert "\n" not in message
    return info.value.code, message
