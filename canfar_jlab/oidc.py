"""Keeping an OIDC login from `~/.canfar/config.yaml` alive: the OAuth2 refresh grant.

`canfar login` (OIDC device flow) stores an access token that expires (`expiry.access`), a
refresh token, the client it registered and the identity provider's endpoints. Before the access
token expires, `OidcLogin.fresh_token` asks the provider's token endpoint for a new one
(RFC 6749 §6, `grant_type=refresh_token`, client authentication `client_secret_basic` as canfar
registers it), keeps it in memory, and writes it back to the config file the way canfar saves
it (temporary file in the same folder, fsync, `os.replace`; the file's mode kept; only
`token.access`, `token.refresh` and `expiry.*` of that login changed), so canfar and canfar-jlab
stay logged in together. When the file already holds a newer token (canfar refreshed it), that
one is adopted instead of refreshing again.

Tokens live in `Secret`s; nothing here logs, formats or raises with one. A failed refresh is one
`AuthError` saying to log in again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import yaml

from .atomic import write_atomically
from .errors import AuthError
from .secret import Secret, epoch_time

log = logging.getLogger(__name__)

REFRESH_MARGIN = 60.0  # seconds before expiry; a quarter of a shorter token lifetime
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_REPLY_CAP = 64 * 2**10


class OidcLogin:
    """One OIDC login of the canfar config: its current access token and how to renew it."""

    def __init__(
        self,
        *,
        config_path: Path,
        idp: str,
        access: Secret,
        expires_at: datetime | None,
        refresh: Secret | None,
        token_url: str | None,
        discovery_url: str | None,
        client_id: str | None,
        client_secret: Secret | None,
        allow_http: bool = False,
    ) -> None:
        self.config_path = config_path
        self.idp = idp
        self._access = access
        self._expires_at = expires_at
        self._refresh = refresh
        self._token_url = token_url
        self._discovery_url = discovery_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._allow_http = allow_http
        self._lifetime: float | None = None
        self._refresh_lifetime: float | None = None
        self._guard = threading.Lock()  # the state swap; one loop's refresh at a time below
        self._locks: dict[int, asyncio.Lock] = {}
        self.refreshes = 0

    # ------------------------------------------------------------------ state

    @property
    def access(self) -> Secret:
        with self._guard:
            return self._access

    @property
    def expires_at(self) -> datetime | None:
        with self._guard:
            return self._expires_at

    @property
    def can_refresh(self) -> bool:
        return self._refresh is not None and bool(self._token_url or self._discovery_url)

    def secret_values(self) -> list[str]:
        """Every token value held, for redacting a careless service's echo."""
        with self._guard:
            held = (self._access, self._refresh, self._client_secret)
            return [s.reveal() for s in held if s is not None]

    def due(self, now: float | None = None) -> bool:
        """Whether the access token expires within the refresh margin."""
        expires = self.expires_at
        if expires is None:
            return False
        margin = REFRESH_MARGIN
        if self._lifetime is not None:
            margin = min(margin, self._lifetime / 4)
        return (now or time.time()) >= expires.timestamp() - margin

    def __repr__(self) -> str:
        return f"OidcLogin(idp={self.idp!r}, access=***, expires_at={self.expires_at})"

    # ------------------------------------------------------------------ refresh

    async def fresh_token(self, refused: str | None = None) -> Secret:
        """The access token, refreshed first when it is due (once per due time, any caller).

        `refused` is a token the service has just answered 401 to (expired early, clock skew):
        it is renewed even if not yet due, unless another task already replaced it.
        """
        if not self.can_refresh or not (self.due() or refused):
            return self.access
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(id(loop), asyncio.Lock())
        async with lock:
            # Another task may have refreshed while this one waited.
            stale = refused is not None and self.access.reveal() == refused
            if self.due() or stale:
                if stale or not await asyncio.to_thread(self._adopt_newer_from_file):
                    await self._refresh_now()
        return self.access

    async def _refresh_now(self) -> None:
        failure = "login again"
        try:
            url = self._token_url or await self._discover()
            _check_url(url, self._allow_http)
            form = {"grant_type": "refresh_token", "refresh_token": self._refresh.reveal()}  # type: ignore[union-attr]
            headers = {"Accept": "application/json"}
            if self._client_id and self._client_secret is not None:  # client_secret_basic
                pair = f"{quote(self._client_id, safe='')}:"
                pair += quote(self._client_secret.reveal(), safe="")
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            elif self._client_id:
                form["client_id"] = self._client_id
            async with httpx.AsyncClient(timeout=15.0, follow_redirects=False) as http:
                response = await http.post(url, data=form, headers=headers)
                body = response.content[:_REPLY_CAP]
            if response.status_code != 200:
                failure = f"the identity provider answered HTTP {response.status_code}"
                failure += _oauth_error(body)
                raise _Failed
            failure = "the identity provider's reply is not a JSON object"
            reply = _json_object(body)
            access = reply.get("access_token")
            if not isinstance(access, str) or not access.strip():
                failure = "the identity provider's reply has no access token"
                raise _Failed
        except _Failed:
            raise AuthError(self._failed_message(failure)) from None
        except httpx.HTTPError as exc:
            failure = f"the identity provider could not be reached ({type(exc).__name__})"
            raise AuthError(self._failed_message(failure)) from None
        except AuthError as exc:
            raise AuthError(self._failed_message(exc.message)) from None
        self._take(reply)
        self.refreshes += 1
        log.info("renewed the access token of login %r from %s", self.idp, self.config_path)
        try:
            await asyncio.to_thread(self._write_back)
        except OSError as exc:  # the token in memory still works; canfar will refresh its own
            log.warning("could not save the renewed token to %s (%s)", self.config_path, exc)

    def _take(self, reply: dict[str, Any]) -> None:

        lifetime = _number(reply.get("expires_in"))
        new_refresh = reply.get("refresh_token")
        with self._guard:
            self._access = Secret(str(reply["access_token"]).strip())
            if isinstance(new_refresh, str) and new_refresh.strip():  # rotated
                self._refresh = Secret(new_refresh.strip())
            if lifetime is not None:
                self._lifetime = lifetime
                self._expires_at = datetime.fromtimestamp(time.time() + lifetime, timezone.utc)
            else:
                self._expires_at = None  # the provider did not say; refused later if it expires
            self._refresh_lifetime = _number(reply.get("refresh_expires_in"))

    async def _discover(self) -> str:
        _check_url(self._discovery_url or "", self._allow_http)
        async with httpx.AsyncClient(timeout=15.0, follow_redirects=False) as http:
            response = await http.get(self._discovery_url or "")
        if response.status_code != 200:
            raise AuthError(f"its discovery document answered HTTP {response.status_code}")
        url = _json_object(response.content[:_REPLY_CAP]).get("token_endpoint")
        if not isinstance(url, str) or not url:
            raise AuthError("its discovery document names no token endpoint")
        self._token_url = url
        return url

    def _failed_message(self, why: str) -> str:
        return (
            f"the login '{self.idp}' in ~/.canfar/config.yaml has expired and could not be "
            f"renewed ({why}); log in again with `canfar login {self.idp}` "
            "(`canfar auth login` in older canfar releases)"
        )

    # ------------------------------------------------------------------ the config file

    def _record(self, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            return None
        records = data.get("authentication")
        record = records.get(self.idp) if isinstance(records, dict) else None
        return record if isinstance(record, dict) else None

    def _adopt_newer_from_file(self) -> bool:
        """Take the file's token when another tool renewed it since we read it."""

        try:
            record = self._record(yaml.safe_load(self.config_path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return False
        if record is None:
            return False
        token = record.get("token") if isinstance(record.get("token"), dict) else {}
        expiry = epoch_time((record.get("expiry") or {}).get("access"))
        access, refresh = token.get("access"), token.get("refresh")
        current = self.expires_at
        if not isinstance(access, str) or not access.strip() or expiry is None:
            return False
        if current is not None and expiry <= current:
            return False
        with self._guard:
            self._access = Secret(access.strip())
            self._expires_at = expiry
            if isinstance(refresh, str) and refresh.strip():
                self._refresh = Secret(refresh.strip())
        if self.due():
            return False  # newer, but about to expire as well: refresh it
        log.info("took the access token of login %r renewed by another tool", self.idp)
        return True

    def _write_back(self) -> None:
        """Save the renewed tokens into the login's record, changing nothing else."""
        path = self.config_path
        mode = path.stat().st_mode & 0o777
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        record = self._record(data)
        if record is None:
            return  # the login was removed meanwhile: leave the file alone
        with self._guard:
            access, refresh, expires = self._access, self._refresh, self._expires_at
            refresh_lifetime = self._refresh_lifetime
        token = record.setdefault("token", {})
        token["access"] = access.reveal()
        if refresh is not None:
            token["refresh"] = refresh.reveal()
        expiry = record.setdefault("expiry", {})
        if expires is not None:
            expiry["access"] = expires.timestamp()
        if refresh_lifetime is not None:
            expiry["refresh"] = time.time() + refresh_lifetime
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
        write_atomically(path, text, mode=mode, durable=True)


class _Failed(Exception):
    pass


def _check_url(url: str, allow_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuthError("its token endpoint is not an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK and not allow_http:
        raise AuthError(f"refusing to send the refresh token over plain http to {parts.hostname}")


def _json_object(body: bytes) -> dict[str, Any]:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        raise _Failed from None
    if not isinstance(data, dict):
        raise _Failed
    return data


def _oauth_error(body: bytes) -> str:
    """`: invalid_grant` from an OAuth2 error reply (its code only: descriptions may echo)."""
    try:
        code = _json_object(body).get("error")
    except _Failed:
        return ""
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) < 40:
        return f": {code}"
    return ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
