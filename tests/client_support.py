"""Shared by the client tests: the test token, quick retries, credentials, the leak watch."""

from __future__ import annotations

import secrets

from canfar_jlab.credentials import Credentials, Secret, normalise_base_url
from canfar_jlab.skaha import RetryPolicy

TEST_TOKEN = "tok-" + secrets.token_hex(16)
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=2.0)


def token_credentials(url: str, token: str = TEST_TOKEN, **fields: object) -> Credentials:
    return Credentials(
        base_url=normalise_base_url(url),
        source="the test's token",
        kind="explicit",
        token=Secret(token),
        renew_hint="ask the test for a new token",
        **fields,  # type: ignore[arg-type]
    )


class LeakWatch:
    """Everything the tests saw that a user could see: log lines, error texts, CLI output."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.secrets: set[str] = {TEST_TOKEN}

    def add(self, kind: str, text: object) -> None:
        self.texts.append((kind, str(text)))

    def add_error(self, exc: BaseException) -> None:
        self.add("exception", f"{type(exc).__name__}: {exc}")
        self.add("exception repr", repr(exc))

    def leaked(self, since: int = 0) -> list[tuple[str, str]]:
        return [
            (kind, text)
            for kind, text in self.texts[since:]
            if any(secret in text for secret in self.secrets)
        ]

    def kinds(self) -> set[str]:
        return {kind.split(" ")[0] for kind, _ in self.texts}


class TestPki:
    """A throwaway CA, a server certificate for 127.0.0.1 and client proxy-style PEMs."""

    __test__ = False

    def __init__(self, directory) -> None:
        self.directory = directory
        self.ca_key, self.ca_cert = _self_signed("canfar-jlab test CA")
        self.ca_file = self._write("ca.pem", _pem_cert(self.ca_cert))
        server_key, server_cert = _issued(self.ca_key, self.ca_cert, "127.0.0.1", server=True)
        self.server_cert = self._write("server.pem", _pem_cert(server_cert))
        self.server_key = self._write("server-key.pem", _pem_key(server_key))
        client_key, client_cert = _issued(self.ca_key, self.ca_cert, "tester")
        self.client_expiry = client_cert.not_valid_after_utc
        # canfar's cadcproxy.pem holds the certificate and its key in one file.
        pem = _pem_cert(client_cert) + _pem_key(client_key)
        self.client_pem = self._write("cadcproxy.pem", pem)
        rogue_key, rogue_ca = _self_signed("rogue CA")
        other_key, other_cert = _issued(rogue_key, rogue_ca, "tester")
        self.rogue_pem = self._write("rogue.pem", _pem_cert(other_cert) + _pem_key(other_key))
        self.not_a_cert = self._write("garbage.pem", b"-----BEGIN CERTIFICATE-----\nnope\n")

    def _write(self, name: str, data: bytes):
        path = self.directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def server_context(self):
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_file))
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def _self_signed(name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, _sha256())
    )
    return key, cert


def _issued(ca_key, ca_cert, name: str, server: bool = False):
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    builder = _builder(subject, ca_cert.subject, key.public_key())
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]),
            critical=False,
        )
    return key, builder.sign(ca_key, _sha256())


def _builder(subject, issuer, public_key):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509

    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after((now + timedelta(days=30)).replace(microsecond=0))
    )


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
