"""Fixtures of the Skaha client tests (tests/core) and the CLI tests against the fake
(tests/cli): the misbehaving fake, clients, and the token-leak watch. Each folder's conftest
imports them.

Every log record (canfar_jlab, httpx, httpcore at DEBUG), and every exception text and CLI output
a test hands to `leaks.add`, is checked for the test token after each test; the last test file
(test_client_zz_leaks.py) checks the whole collection once more.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from client_support import FAST_RETRY, TEST_TOKEN, LeakWatch, token_credentials
from fake_skaha import FakeSkaha

from canfar_jlab.skaha import SkahaClient

# The fixtures a folder's conftest takes with `from fixtures_client import *`.
__all__ = [
    "cli_fake",
    "fake",
    "home",
    "leaks",
    "make_client",
    "other_host",
    "raises",
    "watch_for_leaks",
]

LEAKS = LeakWatch()
WATCHED_LOGGERS = ("canfar_jlab", "httpx", "httpcore")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def leaks() -> LeakWatch:
    return LEAKS  # one watch for the session, whichever folder's conftest asks


@pytest.fixture(autouse=True)
def watch_for_leaks(leaks: LeakWatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    for name in WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    start = len(leaks.texts)
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.get_records("setup") + caplog.get_records("call"):
        leaks.add(f"log {record.name}", formatter.format(record))
    assert leaks.leaked(start) == []


@pytest.fixture
def raises(leaks: LeakWatch):
    """`with raises(AuthError) as caught:`, recording the exception's text for the leak check."""

    @contextmanager
    def check(kind: type[BaseException], match: str | None = None):
        with pytest.raises(kind, match=match) as caught:
            yield caught
        leaks.add_error(caught.value)
        assert "\n" not in str(caught.value), "errors are one line"

    return check


@pytest.fixture
def fake() -> Iterator[FakeSkaha]:
    with FakeSkaha(TEST_TOKEN) as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[FakeSkaha]:
    """A second listener that records whatever reaches it (credentials included)."""
    with FakeSkaha(None) as server:
        yield server


@pytest.fixture
def make_client(leaks: LeakWatch):
    """`make_client(url, **options)`: a SkahaClient with the test token and quick retries."""

    def make(url: str, token: str = TEST_TOKEN, **options: object) -> SkahaClient:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeout", 3.0)
        options.setdefault("reconcile_delay", 0.01)
        client = SkahaClient(token_credentials(url, token), **options)  # type: ignore[arg-type]
        leaks.add("client repr", repr(client))
        leaks.add("credentials repr", repr(client.credentials))
        return client

    return make


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no CANFAR_* variables: credential discovery starts from nothing."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in (
        "CANFAR_URL",
        "CANFAR_TOKEN",
        "CANFAR_CERTIFICATE",
        "CANFAR_REGISTRY__USERNAME",
        "CANFAR_REGISTRY__SECRET",
        "SSL_CERT_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CANFAR_JLAB_HOME", str(tmp_path / "jlab-home"))
    return home


@pytest.fixture
def cli_fake(home: Path, fake: FakeSkaha, leaks):
    """Run `python -m canfar_jlab ARGS` with the fake's URL and the test token in CANFAR_*."""

    def run(*args: str, token: str = TEST_TOKEN, **env: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
        environ.update(
            HOME=str(home),
            CANFAR_URL=fake.url,
            CANFAR_TOKEN=token,
            CANFAR_JLAB_HOME=str(home / "jlab"),  # never the user's engine
        )
        environ.update(env)
        done = subprocess.run(
            [sys.executable, "-m", "canfar_jlab", *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=REPO,
            timeout=60,
        )
        leaks.add("cli stdout", done.stdout)
        leaks.add("cli stderr", done.stderr)
        return done

    return run
