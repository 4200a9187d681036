"""The server suite's credential watch.

Every response body and header the tests receive (errors included), every websocket message,
and every log record of every test is searched for the credentials in use: the local engine's
token and the CANFAR test token. None may appear.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from secrets import token_hex

import pytest
import tornado.httpclient
from credentials_in_use import CREDENTIALS_IN_USE
from fake_skaha import FakeSkaha


class Seen:
    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def response(self, response) -> None:
        if response is None:
            return
        self.texts.append(("headers", str(list(response.headers.get_all()))))
        self.texts.append(("body", (response.body or b"").decode("utf-8", "replace")))


def _engine_tokens() -> set[str]:
    """Every local-engine token under the suite's state folder."""
    home = Path(os.environ["CANFAR_JLAB_HOME"])
    return {p.read_text().strip() for p in home.glob("**/token") if p.is_file()} - {""}


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def jp_fetch(jp_fetch, seen):
    async def fetch(*parts, **kwargs):
        try:
            response = await jp_fetch(*parts, **kwargs)
        except tornado.httpclient.HTTPClientError as exc:
            seen.response(exc.response)
            raise
        seen.response(response)
        return response

    return fetch


@pytest.fixture
def jp_ws_fetch(jp_ws_fetch, seen):
    async def connect(*parts, **kwargs):
        try:
            ws = await jp_ws_fetch(*parts, **kwargs)
        except tornado.httpclient.HTTPClientError as exc:
            seen.response(exc.response)
            raise
        read = ws.read_message

        async def read_message(*args, **kw):
            message = await read(*args, **kw)
            seen.texts.append(("websocket", str(message)))
            return message

        ws.read_message = read_message
        return ws

    return connect


@pytest.fixture(autouse=True)
def no_credential_leaks(seen, caplog):
    caplog.set_level(logging.DEBUG)
    yield
    secrets = CREDENTIALS_IN_USE | _engine_tokens()
    texts = seen.texts + [("log", f"{r.name} {r.getMessage()}") for r in caplog.get_records("call")]
    leaked = [(kind, text[:200]) for kind, text in texts for s in secrets if s and s in text]
    assert not leaked, f"a credential reached a response or a log: {leaked}"


@pytest.fixture
def runs_root(jp_root_dir):
    """Runs inside the server root, so the sidebar can open their folders (tests that want it
    there pass it to server_config)."""
    return jp_root_dir / "canfar-runs"


@pytest.fixture
def skaha_token() -> str:
    """A CANFAR token for the fake Skaha, one per test, watched for leaks like the others."""
    token = "canfar-" + token_hex(12)
    CREDENTIALS_IN_USE.add(token)
    return token


@pytest.fixture
def skaha(monkeypatch, skaha_token):
    """The misbehaving Skaha look-alike on 127.0.0.1 (the real CANFAR cannot run here), set as
    the server's CANFAR_URL and CANFAR_TOKEN."""
    with FakeSkaha(skaha_token) as fake:
        monkeypatch.setenv("CANFAR_URL", fake.url)
        monkeypatch.setenv("CANFAR_TOKEN", skaha_token)
        yield fake
