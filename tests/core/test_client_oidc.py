"""OIDC logins from ~/.canfar/config.yaml renew themselves: the refresh grant against an
identity provider on 127.0.0.1 (tests/fake_oidc.py) issuing short-lived tokens, a Skaha fake
that refuses expired ones, and the renewed token written back as canfar saves it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_oidc import FakeOidc
from fake_skaha import FakeSkaha

from canfar_jlab.credentials import resolve_credentials
from canfar_jlab.skaha import AuthError, SkahaClient


@pytest.fixture
def idp(leaks):
    with FakeOidc(lifetime=1.0) as provider:
        yield provider
        leaks.secrets |= provider.all_secrets()  # checked by the leak watch after the test


@pytest.fixture
def skaha(idp):
    with FakeSkaha(accept=idp.valid) as fake:
        yield fake


def write_login(home: Path, idp: FakeOidc, skaha: FakeSkaha, expires_in: float, **endpoints):
    access, refresh, expires = idp.issue(lifetime=expires_in)
    config = {
        "version": 2,
        "active": {"authentication": "srcnet", "server": "lab", "servers": {"srcnet": "lab"}},
        "authentication": {
            "srcnet": {
                "mode": "oidc",
                "endpoints": endpoints or {"discovery": idp.discovery_url, "token": idp.token_url},
                "client": {
                    "identity": idp.client_id,
                    "secret": idp.client_secret,
                    "secret_expires_at": 0,
                },
                "token": {
                    "access": access,
                    "refresh": refresh,
                    "token_type": "Bearer",
                    "scope": "openid profile email offline_access",
                },
                "expiry": {"access": expires, "refresh": expires + 86400},
            }
        },
        "servers": {"lab": {"idp": "srcnet", "url": f"{skaha.root}/skaha", "version": "v1"}},
        "registry": {"url": "https://images.canfar.net", "username": "bob", "secret": "reg-sec"},
        "console": {"width": 120, "banner": True},
    }
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o640)  # not canfar's 0600: the mode must be kept, whatever it is
    return path, config


def official_view(home: Path) -> dict:
    """What the `canfar` package (test dependency) reads from the config file."""
    code = (
        "import json\n"
        "from canfar.models.config import Configuration\n"
        "record = Configuration().authentication['srcnet']\n"
        "print(json.dumps({'access': record.token.access.get_secret_value(),\n"
        "                  'expiry': record.expiry.access, 'valid': record.valid}))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CANFAR_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**environ, "HOME": str(home)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-500:]
    return json.loads(done.stdout)


def read(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def without_tokens(config: dict) -> dict:
    copy = yaml.safe_load(yaml.safe_dump(config))
    record = copy["authentication"]["srcnet"]
    record.pop("token"), record.pop("expiry")
    return copy


async def test_a_token_about_to_expire_is_renewed_and_written_back(home, idp, skaha):
    path, before = write_login(home, idp, skaha, expires_in=0.3)
    old_access = before["authentication"]["srcnet"]["token"]["access"]
    credentials = resolve_credentials()
    assert credentials.summary()["renews_itself"] is True
    async with SkahaClient(credentials) as client:
        assert await client.list_sessions() == []
    assert idp.grants == 1
    sent = skaha.requests[-1].headers["Authorization"]
    assert sent != f"Bearer {old_access}" and idp.valid(sent[7:])
    after = read(path)
    token = after["authentication"]["srcnet"]["token"]
    assert f"Bearer {token['access']}" == sent  # canfar now reads the same renewed token
    assert token["refresh"] != before["authentication"]["srcnet"]["token"]["refresh"]
    assert token["scope"] == "openid profile email offline_access"
    assert after["authentication"]["srcnet"]["expiry"]["access"] > time.time()
    assert without_tokens(after) == without_tokens(before)  # no other field changed
    assert (path.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temporary left
    # The official client reads the renewed login as valid and current: both stay logged in.
    expiry = after["authentication"]["srcnet"]["expiry"]["access"]
    assert official_view(home) == {"access": token["access"], "expiry": expiry, "valid": True}
    # The grant was the standard one, with the client's basic credentials.
    assert "grant_type=refresh_token" in idp.seen_bodies[-1]
    assert idp.client_secret not in idp.seen_bodies[-1]


async def test_refresh_during_a_running_follow(home, idp, skaha):
    write_login(home, idp, skaha, expires_in=1.0)
    session = skaha.add_session("long-1")
    started = time.monotonic()

    def on_read(session_id: str, count: int) -> None:
        skaha.append_log(session_id, f"line {count}\n")
        if time.monotonic() - started > 3.5:  # several token lifetimes
            skaha.set_status(session_id, "Completed")

    skaha.on_log_read = on_read
    async with SkahaClient(resolve_credentials()) as client:
        text = "".join([chunk async for chunk in client.tail(session, poll_interval=0.05)])
    lines = text.splitlines()
    assert lines[0] == "line 1" and len(lines) == len(set(lines)) > 10
    assert idp.grants >= 3  # renewed again and again while following, never refused
    assert not any(r for r in skaha.requests if r.headers.get("Authorization") is None)


def test_cli_follow_outlives_the_token(home, idp, skaha, cli_fake):
    """`canfar-jlab logs -f` in a real process, with only the config file's login."""
    _, config = write_login(home, idp, skaha, expires_in=1.0)
    first = config["authentication"]["srcnet"]["token"]["access"]
    session = skaha.add_session("cli-1")
    started = time.monotonic()

    def on_read(session_id: str, count: int) -> None:
        skaha.append_log(session_id, f"step {count}\n")
        if time.monotonic() - started > 3.0:
            skaha.set_status(session_id, "Completed")

    skaha.on_log_read = on_read
    done = cli_fake("logs", "-f", session, "--interval", "0.1", CANFAR_URL="", token="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "step 1" and idp.grants >= 2
    on_disk = read(home / ".canfar" / "config.yaml")["authentication"]["srcnet"]["token"]
    assert on_disk["access"] != first  # the CLI process saved its renewed token


async def test_concurrent_calls_share_one_refresh(home, idp, skaha):
    write_login(home, idp, skaha, expires_in=0.2)
    # The renewed token outlives the ten calls even on a loaded machine: one grant is then
    # the sharing under test, not the renewed token coming due again.
    idp.lifetime = 60.0
    async with SkahaClient(resolve_credentials()) as client:
        await asyncio.gather(*(client.list_sessions() for _ in range(10)))
    assert idp.grants == 1


async def test_discovery_finds_the_token_endpoint(home, idp, skaha):
    write_login(home, idp, skaha, expires_in=0.1, discovery=idp.discovery_url)
    async with SkahaClient(resolve_credentials()) as client:
        await client.list_sessions()
    assert idp.grants == 1


async def test_a_token_renewed_by_canfar_meanwhile_is_taken_not_refreshed(home, idp, skaha):
    path, config = write_login(home, idp, skaha, expires_in=0.2)
    credentials = resolve_credentials()
    access, refresh, expires = idp.issue(lifetime=600)  # what `canfar` saved meanwhile
    record = config["authentication"]["srcnet"]
    record["token"].update(access=access, refresh=refresh)
    record["expiry"]["access"] = expires
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    await asyncio.sleep(0.25)
    async with SkahaClient(credentials) as client:
        await client.list_sessions()
    assert idp.grants == 0
    assert skaha.requests[-1].headers["Authorization"] == f"Bearer {access}"


async def test_a_failed_refresh_is_one_clear_message(home, idp, skaha, raises):
    path, before = write_login(home, idp, skaha, expires_in=0.0)
    idp.refuse_all = True
    with raises(AuthError) as caught:
        async with SkahaClient(resolve_credentials()) as client:
            await client.list_sessions()
    message = str(caught.value)
    assert message == (
        "the login 'srcnet' in ~/.canfar/config.yaml has expired and could not be renewed "
        "(the identity provider answered HTTP 400: invalid_grant); log in again with "
        "`canfar login srcnet` (`canfar auth login` in older canfar releases)"
    )
    assert skaha.requests == []  # nothing sent with a dead token
    assert read(path) == before  # the file is untouched


async def test_an_unreachable_provider_is_the_same_clear_message(home, idp, skaha, raises):
    write_login(home, idp, skaha, expires_in=0.0, token="http://127.0.0.1:9/token")
    with raises(AuthError, match=r"could not be reached \(ConnectError\)\); log in again"):
        async with SkahaClient(resolve_credentials()) as client:
            await client.list_sessions()


def test_the_refresh_token_is_never_sent_over_plain_http_to_another_host(home, idp, skaha):
    write_login(home, idp, skaha, expires_in=0.0, token="http://idp.example/token")
    credentials = resolve_credentials()

    async def call() -> None:
        async with SkahaClient(credentials) as client:
            await client.list_sessions()

    with pytest.raises(AuthError, match="refusing to send the refresh token over plain http"):
        asyncio.run(call())
    assert os.environ.get("CANFAR_TOKEN") is None


async def test_a_token_refused_before_its_expiry_is_renewed_once(home, idp, skaha):
    _, config = write_login(home, idp, skaha, expires_in=600)
    with idp.lock:  # revoked early by the provider: the service answers 401
        idp.access.pop(config["authentication"]["srcnet"]["token"]["access"])
    async with SkahaClient(resolve_credentials()) as client:
        assert await client.list_sessions() == []
    assert idp.grants == 1
    assert [r.method for r in skaha.requests] == ["GET", "GET"]  # refused, then accepted
