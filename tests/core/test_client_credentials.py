"""Credential discovery with a temporary HOME, and the credentials at work over real HTTP(S)."""

from __future__ import annotations

import base64
import pickle
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from client_support import FAST_RETRY, TEST_TOKEN, TestPki
from fake_skaha import FakeSkaha

from canfar_jlab.credentials import (
    DEFAULT_SERVER_URL,
    CredentialsError,
    Secret,
    resolve_credentials,
)
from canfar_jlab.skaha import AuthError, SkahaClient, Unavailable


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


def write_config(home: Path, record: dict, server_url: str | None = None, **extra: object) -> Path:
    """~/.canfar/config.yaml as canfar 1.5 writes it (schema version 2)."""
    config = {
        "version": 2,
        "active": {"authentication": "srcnet", "server": "local", "servers": {"srcnet": "local"}},
        "authentication": {"srcnet": record},
        "servers": {},
        "console": {"width": 120, "banner": True},
        **extra,
    }
    if server_url:
        config["servers"]["local"] = {"idp": "srcnet", "url": server_url, "version": "v1"}
    path = home / ".canfar" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def oidc_record(token: str, expires: datetime) -> dict:
    return {
        "mode": "oidc",
        "token": {"access": token, "refresh": "refresh-" + token, "token_type": "Bearer"},
        "expiry": {"access": expires.timestamp(), "refresh": expires.timestamp() + 86400},
        "client": {"identity": "client-id", "secret": "client-secret"},
    }


def soon(minutes: int) -> datetime:
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


async def list_with(credentials, fake: FakeSkaha) -> list:
    async with SkahaClient(credentials, retry=FAST_RETRY) as client:
        return await client.list_sessions()


# ------------------------------------------------------------------ 1. explicit arguments


async def test_explicit_arguments_come_first(home, fake, monkeypatch):
    monkeypatch.setenv("CANFAR_URL", "https://elsewhere.example/skaha/v1")
    monkeypatch.setenv("CANFAR_TOKEN", "tok-from-env")
    creds = resolve_credentials(fake.url, TEST_TOKEN)
    assert (creds.kind, creds.source, creds.base_url) == (
        "explicit",
        "the token given explicitly",
        fake.url,
    )
    assert await list_with(creds, fake) == []


def test_a_token_without_a_url_is_refused(home, raises):
    with raises(CredentialsError, match="without the service URL"):
        resolve_credentials(token=TEST_TOKEN)


# ------------------------------------------------------------------ 2. environment


async def test_environment_token_and_url(home, fake, monkeypatch):
    monkeypatch.setenv("CANFAR_URL", fake.url)
    monkeypatch.setenv("CANFAR_TOKEN", TEST_TOKEN)
    write_config(home, oidc_record("tok-config", soon(60)), "https://other.example/skaha")
    creds = resolve_credentials()
    assert creds.kind == "environment" and "CANFAR_TOKEN" in creds.source
    assert creds.base_url == fake.url
    assert await list_with(creds, fake) == []
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TEST_TOKEN}"


def test_a_url_without_its_version_gets_v1(home, fake, monkeypatch):
    monkeypatch.setenv("CANFAR_URL", f"{fake.root}/skaha/")
    monkeypatch.setenv("CANFAR_TOKEN", TEST_TOKEN)
    assert resolve_credentials().base_url == fake.url


def test_canfar_token_without_canfar_url_says_what_to_set(home, monkeypatch, raises):
    monkeypatch.setenv("CANFAR_TOKEN", TEST_TOKEN)
    with raises(CredentialsError, match="CANFAR_TOKEN is set but CANFAR_URL is not"):
        resolve_credentials()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://ws-uv.canfar.net/skaha/v1", "plain http"),
        ("https://user:pw@ws-uv.canfar.net/skaha/v1", "user name or password"),
        ("https://ws-uv.canfar.net/skaha/v1?token=x", "query"),
        ("ftp://ws-uv.canfar.net/skaha", "not an http"),
    ],
)
def test_urls_that_would_leak_a_credential_are_refused(home, monkeypatch, raises, url, reason):
    monkeypatch.setenv("CANFAR_URL", url)
    monkeypatch.setenv("CANFAR_TOKEN", TEST_TOKEN)
    with raises(CredentialsError, match=reason):
        resolve_credentials()


def test_environment_certificate(home, pki, monkeypatch):
    monkeypatch.setenv("CANFAR_URL", "https://ws-uv.canfar.net/skaha/v1")
    monkeypatch.setenv("CANFAR_CERTIFICATE", str(pki.client_pem))
    creds = resolve_credentials()
    assert creds.kind == "environment" and creds.token is None
    assert creds.certificate == pki.client_pem and creds.expires_at == pki.client_expiry


async def test_registry_login_becomes_the_registry_header(home, fake, monkeypatch):
    monkeypatch.setenv("CANFAR_URL", fake.url)
    monkeypatch.setenv("CANFAR_TOKEN", TEST_TOKEN)
    monkeypatch.setenv("CANFAR_REGISTRY__USERNAME", "alice")
    monkeypatch.setenv("CANFAR_REGISTRY__SECRET", "harbor-secret")
    await list_with(resolve_credentials(), fake)
    header = fake.requests[0].headers["X-Skaha-Registry-Auth"]
    assert base64.b64decode(header) == b"alice:harbor-secret"


# ------------------------------------------------------------------ 3. ~/.canfar/config.yaml


async def test_config_with_a_valid_oidc_token(home, fake):
    write_config(
        home,
        oidc_record(TEST_TOKEN, soon(60)),
        f"{fake.root}/skaha",
        registry={"url": "images.canfar.net", "username": "bob", "secret": "s3"},
    )
    creds = resolve_credentials()
    assert creds.kind == "canfar-config" and creds.base_url == fake.url
    assert creds.source == "~/.canfar/config.yaml (login 'srcnet', server 'local')"
    assert creds.expires_at is not None and not creds.is_expired()
    assert await list_with(creds, fake) == []
    sent = fake.requests[0].headers
    assert sent["Authorization"] == f"Bearer {TEST_TOKEN}"
    assert base64.b64decode(sent["X-Skaha-Registry-Auth"]) == b"bob:s3"


async def test_config_with_an_expired_token_explains_how_to_renew(home, fake, raises):
    write_config(home, oidc_record(TEST_TOKEN, soon(-5)), f"{fake.root}/skaha")
    creds = resolve_credentials()
    assert creds.is_expired()
    with raises(AuthError, match=r"expired at .*; renew it with `canfar login srcnet`") as caught:
        await list_with(creds, fake)
    assert "~/.canfar/config.yaml (login 'srcnet'" in str(caught.value)
    assert fake.requests == []  # nothing was sent with a dead token


async def test_config_token_refused_by_the_service_names_the_source(home, fake, raises):
    write_config(home, oidc_record("tok-revoked", soon(60)), f"{fake.root}/skaha")
    with raises(AuthError, match="refused the credential from ~/.canfar/config.yaml") as caught:
        await list_with(resolve_credentials(), fake)
    assert "`canfar login srcnet`" in str(caught.value) and caught.value.status == 401


def test_config_x509_record(home, pki):
    expiry = soon(600).replace(microsecond=0)
    write_config(home, {"mode": "x509", "path": str(pki.client_pem), "expiry": expiry.timestamp()})
    creds = resolve_credentials()
    assert creds.kind == "canfar-config" and creds.certificate == pki.client_pem
    assert creds.expires_at == expiry and creds.token is None
    assert creds.base_url == DEFAULT_SERVER_URL  # no server saved: CANFAR's


def test_config_x509_record_whose_file_is_gone(home, tmp_path, raises):
    write_config(home, {"mode": "x509", "path": str(tmp_path / "gone.pem")})
    with raises(CredentialsError, match="does not exist; run `canfar login srcnet`"):
        resolve_credentials()


def test_a_url_given_alone_pins_the_server_for_the_config_token(home, fake):
    write_config(home, oidc_record(TEST_TOKEN, soon(60)), "https://ws-uv.canfar.net/skaha")
    creds = resolve_credentials(fake.url)
    assert creds.base_url == fake.url and creds.kind == "canfar-config"


def test_unsafe_or_broken_config_files_are_refused(home, raises):
    path = write_config(home, oidc_record(TEST_TOKEN, soon(60)))
    path.chmod(0o666)
    with raises(CredentialsError, match="other users can write it"):
        resolve_credentials()
    path.write_text("active: [unclosed")
    path.chmod(0o600)
    with raises(CredentialsError, match="cannot read ~/.canfar/config.yaml"):
        resolve_credentials()
    # ...but it does not stand in the way of a credential that comes first
    assert resolve_credentials("https://ws-uv.canfar.net/skaha/v1", "tok-x").kind == "explicit"


# ------------------------------------------------------------------ 4. certificate file alone


def test_a_certificate_file_alone_means_canfar(home, pki):
    (home / ".ssl").mkdir()
    (home / ".ssl" / "cadcproxy.pem").write_bytes(pki.client_pem.read_bytes())
    creds = resolve_credentials()
    assert creds.kind == "certificate" and creds.source == "~/.ssl/cadcproxy.pem"
    assert creds.base_url == DEFAULT_SERVER_URL == "https://ws-uv.canfar.net/skaha/v1"
    assert creds.expires_at == pki.client_expiry


async def test_x509_is_presented_over_mutual_tls(home, pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))  # trust the test CA
    with FakeSkaha(None, tls=pki.server_context()) as fake:
        monkeypatch.setenv("CANFAR_URL", fake.url)
        monkeypatch.setenv("CANFAR_CERTIFICATE", str(pki.client_pem))
        creds = resolve_credentials()
        assert creds.base_url.startswith("https://127.0.0.1:")
        fake.add_session("over-tls")
        sessions = await list_with(creds, fake)
    assert [s.name for s in sessions] == ["over-tls"]
    assert fake.requests[0].peer == "tester"
    assert "Authorization" not in fake.requests[0].headers


async def test_a_certificate_the_service_refuses_is_an_auth_error(home, pki, monkeypatch, raises):
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    server_tls = pki.server_context()
    server_tls.maximum_version = ssl.TLSVersion.TLSv1_2  # the refusal comes in the handshake
    with FakeSkaha(None, tls=server_tls) as fake:
        monkeypatch.setenv("CANFAR_URL", fake.url)
        monkeypatch.setenv("CANFAR_CERTIFICATE", str(pki.rogue_pem))
        with raises(
            AuthError, match="refused TLS with the certificate from the certificate .*rogue"
        ):
            await list_with(resolve_credentials(), fake)
    assert fake.requests == []


async def test_with_tls_13_a_refused_certificate_is_still_named(home, pki, monkeypatch, leaks):
    # TLS 1.3 checks the client certificate after the client thinks the handshake is done, so the
    # refusal may arrive as an alert or as a reset connection: either way the message says so.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    with FakeSkaha(None, tls=pki.server_context()) as fake:
        creds = resolve_credentials(fake.url, certificate=pki.rogue_pem)
        with pytest.raises((AuthError, Unavailable)) as caught:
            await list_with(creds, fake)
    leaks.add_error(caught.value)
    assert "certificate" in str(caught.value) and "rogue.pem" in str(caught.value)
    assert fake.requests == []


async def test_an_untrusted_server_certificate_is_not_an_auth_problem(home, pki, raises):
    with FakeSkaha(None, tls=pki.server_context()) as fake:  # SSL_CERT_FILE unset: CA unknown
        creds = resolve_credentials(fake.url, certificate=pki.client_pem)
        with raises(Unavailable, match="TLS certificate of 127.0.0.1 could not be verified"):
            await list_with(creds, fake)


def test_an_unreadable_certificate_is_refused_when_the_client_is_built(home, pki, raises):
    creds = resolve_credentials("https://ws-uv.canfar.net/skaha/v1", certificate=pki.not_a_cert)
    with raises(AuthError, match="unreadable or lacks its key"):
        SkahaClient(creds)


# ------------------------------------------------------------------ 5. nothing at all


def test_nothing_found_and_no_engine_allowed(home, raises):
    with raises(CredentialsError, match="no CANFAR credentials found"):
        resolve_credentials(start_engine=False)


def test_a_url_alone_with_no_credential_anywhere(home, raises):
    with raises(CredentialsError, match="no credential found for https://x.example/skaha/v1"):
        resolve_credentials("https://x.example/skaha/v1")


# ------------------------------------------------------------------ secrecy


def test_secrets_and_credentials_never_show_the_token(leaks, fake):
    creds = resolve_credentials(fake.url, TEST_TOKEN)
    secret = Secret(TEST_TOKEN)
    for shown in (repr(secret), str(secret), f"{secret}", repr(creds), str(creds)):
        leaks.add("repr", shown)
        assert TEST_TOKEN not in shown
    assert TEST_TOKEN not in str(creds.summary())
    assert creds.summary()["method"] == "token"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret == Secret(TEST_TOKEN) and secret != Secret("other")
