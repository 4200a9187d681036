"""An OIDC identity provider's token endpoint on 127.0.0.1, for testing the refresh grant.

Stands in for what cannot run here (SRCNet's IAM): it serves a discovery document and a token
endpoint that answers the OAuth2 refresh grant (RFC 6749 §6) with short-lived access tokens,
rotating the refresh token each time, and checks the client's `client_secret_basic`
credentials. `valid(token)` tells a fake service whether an access token is current, so the
Skaha fake can refuse expired ones as Skaha would (401).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from urllib.parse import parse_qsl

from fake_http import FakeHandler, FakeServer


class FakeOidc(FakeServer):
    """`with FakeOidc(lifetime=2.0) as idp:`; `idp.issue()` gives a first (access, refresh)."""

    def __init__(
        self, *, lifetime: float = 2.0, client_id: str = "client-id", client_secret: str = ""
    ) -> None:
        self.lifetime = lifetime
        self.client_id = client_id
        self.client_secret = client_secret or "secret-" + secrets.token_hex(8)
        self.lock = threading.Lock()
        self.access: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self.refresh_tokens: set[str] = set()
        self.grants = 0  # successful refresh grants
        self.refuse_all = False  # e.g. the refresh token was revoked
        self.seen_bodies: list[str] = []
        self._serve(_handler_for(self))

    @property
    def token_url(self) -> str:
        return f"{self.root}/token"

    @property
    def discovery_url(self) -> str:
        return f"{self.root}/.well-known/openid-configuration"

    def issue(self, lifetime: float | None = None) -> tuple[str, str, float]:
        """A new (access token, refresh token, access expiry)."""
        access = "at-" + secrets.token_hex(16)
        refresh = "rt-" + secrets.token_hex(16)
        expires = time.time() + (self.lifetime if lifetime is None else lifetime)
        with self.lock:
            self.access[access] = expires
            self.refresh_tokens.add(refresh)
        return access, refresh, expires

    def valid(self, token: str) -> bool:
        with self.lock:
            return self.access.get(token, 0.0) > time.time()

    def all_secrets(self) -> set[str]:
        with self.lock:
            return set(self.access) | set(self.refresh_tokens) | {self.client_secret}

    def grant(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            known = form.get("refresh_token") in self.refresh_tokens
            if known and not self.refuse_all:
                self.refresh_tokens.discard(form["refresh_token"])  # rotated: one use each
        if not known or self.refuse_all:
            return 400, {"error": "invalid_grant", "error_description": "token is not active"}
        access, refresh, _ = self.issue()
        with self.lock:
            self.grants += 1
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "refresh_token": refresh,
            "scope": "openid profile email offline_access",
        }


def _handler_for(idp: FakeOidc) -> type[FakeHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                return self._json(200, {"issuer": idp.root, "token_endpoint": idp.token_url})
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            with idp.lock:
                idp.seen_bodies.append(body)
            if self.path != "/token":
                return self._json(404, {"error": "not_found"})
            form = dict(parse_qsl(body, keep_blank_values=True))
            status, reply = idp.grant(form, self.headers.get("Authorization", ""))
            return self._json(status, reply)

        def _json(self, status: int, data: dict) -> None:
            body = json.dumps(data).encode()
            self.reply(status, "application/json", body, {"Cache-Control": "no-store"})

    return Handler
