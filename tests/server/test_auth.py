"""Every route and every method the extension registers refuses a request without credentials.

The routes come from the extension's own route table, so a route added later is covered here
without touching this file.
"""

from __future__ import annotations

import pytest
import tornado.httpclient
from server_config import server_config

from canfar_jlab.server.handlers import route_table

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(
    params=[False, True], ids=["server-requires-auth", "server-default-allows-anonymous"]
)
def jp_server_config(request):
    # jupyter_server lets undecorated handlers through when allow_unauthenticated_access is
    # True (its default): with True, only our own decorators stand between a caller and a route.
    return server_config(allow_unauthenticated_access=request.param)


def _concrete(pattern: str) -> str:
    """Fill regex groups of a route pattern with a plausible value."""
    import re

    return re.sub(r"\([^)]*\)", "abcd1234", pattern).lstrip("/")


def test_route_table_is_not_empty():
    assert route_table(), "the extension registers no routes"


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize(("pattern", "handler"), route_table())
async def test_every_route_refuses_anonymous(jp_fetch, pattern, handler, method):
    body = b"{}" if method in {"POST", "PUT", "PATCH"} else None
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch(
            *_concrete(pattern).split("/"),
            method=method,
            body=body,
            headers={"Authorization": ""},
            allow_nonstandard_methods=True,
        )
    # A verb the handler implements must refuse the anonymous caller (403); any other verb is
    # refused by tornado before the handler runs (405).
    expected = 403 if method in handler.SUPPORTED_METHODS else 405
    assert info.value.code == expected, (pattern, method, info.value.code)
