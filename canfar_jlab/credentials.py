"""Where the session service URL and its credential come from.

Sources, first match wins (the same ones the official `canfar` client reads, so users are not
asked twice):

1. explicit arguments (`url` with `token` or `certificate`);
2. `CANFAR_URL` with `CANFAR_TOKEN` (or `CANFAR_CERTIFICATE`);
3. the active record of `~/.canfar/config.yaml` (an OIDC access token with its expiry, or an
   X.509 path) and its active server's url and version;
4. `~/.ssl/cadcproxy.pem` with CANFAR's production server;
5. the local engine, started on demand.

A URL given alone (argument or `CANFAR_URL`) pins the server and takes its credential from the
first of sources 3-5 that has one. A token is never kept as a plain attribute: it lives in a
`Secret` whose repr is masked, and nothing here logs or formats it.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from .errors import AuthError, CredentialsError
from .secret import Secret, epoch_time

if TYPE_CHECKING:
    from .oidc import OidcLogin

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "https://ws-uv.canfar.net/skaha/v1"
_VERSION_SUFFIX = re.compile(r"/v\d+(\.\d+)*$")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True, repr=False, eq=False)
class Credentials:
    """A Skaha base URL (ending in /vN) and what proves who we are to it.

    `source` says in words where the credential came from; `renew_hint` says what to do when it
    expires or is refused. Neither ever contains the credential itself.
    """

    base_url: str
    source: str
    kind: str  # explicit | environment | canfar-config | certificate | local-engine
    token: Secret | None = None
    certificate: Path | None = None
    expires_at: datetime | None = None
    registry_auth: Secret | None = None
    renew_hint: str = ""
    oidc: OidcLogin | None = None  # an OIDC login that renews `token` (canfar_jlab.oidc)
    site: str | None = None  # the config's server name, when chosen by site
    storage: tuple[str, str] | None = None  # the site's VOSpace service for /arc: (url, ivo uri)

    @property
    def current_token(self) -> Secret | None:
        """The token to send now: the renewed one for an OIDC login."""
        return self.oidc.access if self.oidc is not None else self.token

    @property
    def current_expiry(self) -> datetime | None:
        return self.oidc.expires_at if self.oidc is not None else self.expires_at

    def secret_values(self) -> list[str]:
        """Every credential value in play, for redacting what a service echoes."""
        held = [s.reveal() for s in (self.token, self.registry_auth) if s is not None]
        return held + (self.oidc.secret_values() if self.oidc is not None else [])

    async def refresh_if_due(self) -> None:
        """Renew an OIDC access token that is about to expire (no-op for anything else)."""
        if self.oidc is not None and self.oidc.can_refresh:
            await self.oidc.fresh_token()

    def auth_headers(self) -> dict[str, str]:
        """Headers to attach to requests for `base_url`'s origin only."""
        headers: dict[str, str] = {}
        token = self.current_token
        if token is not None:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        if self.registry_auth is not None:
            headers["X-Skaha-Registry-Auth"] = self.registry_auth.reveal()
        return headers

    def is_expired(self, now: datetime | None = None) -> bool:
        expires = self.current_expiry
        if expires is None:
            return False
        return (now or datetime.now(timezone.utc)) >= expires

    @property
    def is_local_engine(self) -> bool:
        return self.kind == "local-engine"

    def expired_message(self) -> str:
        expires = self.current_expiry
        when = expires.strftime("%Y-%m-%d %H:%M UTC") if expires else "?"
        return f"the credential from {self.source} expired at {when}; {self.renew_hint}"

    def rejected_message(self, status: int, detail: str = "") -> str:
        said = f": {detail}" if detail else ""
        return (
            f"{self.service_name} refused the credential from {self.source} "
            f"(HTTP {status}{said}); {self.renew_hint}"
        )

    @property
    def service_name(self) -> str:
        if self.is_local_engine:
            return "the local engine"
        return urlsplit(self.base_url).hostname or "the session service"

    def summary(self) -> dict[str, Any]:
        """What may be shown to a user or a browser: never the credential."""
        return {
            "base_url": self.base_url,
            "source": self.source,
            "kind": self.kind,
            "method": "token" if self.token else ("x509" if self.certificate else "none"),
            "certificate": str(self.certificate) if self.certificate else None,
            "expires_at": self.current_expiry.isoformat() if self.current_expiry else None,
            "renews_itself": self.oidc is not None and self.oidc.can_refresh,
            "site": self.site,
            "registry_auth": self.registry_auth is not None,
        }

    def __repr__(self) -> str:
        method = "token=***" if self.token else f"certificate={self.certificate}"
        return f"Credentials(base_url={self.base_url!r}, source={self.source!r}, {method})"

    __str__ = __repr__


def normalise_base_url(url: str, *, allow_http: bool = False) -> str:
    """`url` as a Skaha versioned base (`.../skaha/v1`), refusing what would leak a credential.

    A URL without a `/vN` suffix gets `/v1` (canfar would silently talk to `/skaha/session`).
    Plain http is accepted only for loopback hosts unless `allow_http`.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialsError(f"{_shown(text)} is not an http(s) URL of a Skaha service")
    if parts.username or parts.password:
        raise CredentialsError("the session service URL must not contain a user name or password")
    if parts.query or parts.fragment:
        raise CredentialsError("the session service URL must not have a query or fragment")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK and not allow_http:
        raise CredentialsError(
            f"refusing to send credentials over plain http to {parts.hostname}; use https"
        )
    path = parts.path.rstrip("/")
    if not _VERSION_SUFFIX.search(path):
        path = f"{path}/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def resolve_credentials(
    url: str | None = None,
    token: str | None = None,
    certificate: str | os.PathLike[str] | None = None,
    *,
    start_engine: bool = True,
    engine_home: Path | None = None,
    allow_http: bool = False,
    site: str | None = None,
) -> Credentials:
    """The first usable credential in the documented order (module docstring).

    `site` picks one server of `~/.canfar/config.yaml` by name (or one login by its key) for
    this call instead of the active one: the way a run is launched on, and later acted on at,
    one of several sites. It is an error when the config does not hold it.

    May start the local engine (blocking, up to its start timeout); call it in a worker thread
    from async code. Raises `CredentialsError` with a one-line reason when nothing fits.
    """
    env = os.environ
    home = Path.home()
    try:
        config = _CanfarConfig.load(home)
    except CredentialsError as unusable:
        config, config_error = None, unusable
    else:
        config_error = None
    # Registry login may also come from the config; an unusable config only matters below,
    # where the config is the credential's source.
    registry = _registry_auth(env, config)

    def base(candidate: str) -> str:
        return normalise_base_url(candidate, allow_http=allow_http)

    if site:
        if config_error is not None:
            raise config_error
        if config is None:
            raise CredentialsError(
                f"no site {site!r}: there is no ~/.canfar/config.yaml; log in with `canfar login`"
            )
        return config.site_credentials(site, registry, allow_http)

    if token or certificate:
        pinned = url or env.get("CANFAR_URL")
        if not pinned:
            raise CredentialsError("a token or certificate was given without the service URL")
        source = (
            "the token given explicitly"
            if token
            else f"the certificate {Path(certificate).expanduser()} given explicitly"  # type: ignore[arg-type]
        )
        return _token_or_cert(
            base(pinned),
            token,
            certificate,
            source,
            "explicit",
            registry,
            renew="pass a valid token" if token else "renew the certificate",
        )

    env_token, env_cert = env.get("CANFAR_TOKEN", "").strip(), env.get("CANFAR_CERTIFICATE", "")
    if env_token or env_cert.strip():
        pinned = url or env.get("CANFAR_URL")
        if not pinned:
            which = "CANFAR_TOKEN" if env_token else "CANFAR_CERTIFICATE"
            raise CredentialsError(
                f"{which} is set but CANFAR_URL is not; set CANFAR_URL to the service, "
                f"for example {DEFAULT_SERVER_URL}"
            )
        source = (
            "the CANFAR_TOKEN environment variable"
            if env_token
            else (f"the certificate {env_cert} (CANFAR_CERTIFICATE)")
        )
        return _token_or_cert(
            base(pinned),
            env_token or None,
            env_cert.strip() or None,
            source,
            "environment",
            registry,
            renew="set a fresh CANFAR_TOKEN"
            if env_token
            else ("renew the certificate, for example with `canfar login cadc`"),
        )

    pinned = url or env.get("CANFAR_URL") or None
    if config_error is not None:
        raise config_error
    if config is not None:
        found = config.active_credentials(base(pinned) if pinned else None, registry, allow_http)
        if found is not None:
            return found

    proxy = home / ".ssl" / "cadcproxy.pem"
    if proxy.is_file():
        return Credentials(
            base_url=base(pinned or DEFAULT_SERVER_URL),
            source="~/.ssl/cadcproxy.pem",
            kind="certificate",
            certificate=proxy,
            expires_at=certificate_expiry(proxy),
            registry_auth=registry,
            renew_hint="renew it with `canfar login cadc`",
        )

    if pinned:
        engine = _running_engine_for(base(pinned), engine_home)
        if engine is not None:
            return engine
        raise CredentialsError(
            f"no credential found for {_shown(pinned)}: set CANFAR_TOKEN, "
            "log in with `canfar login`, or provide ~/.ssl/cadcproxy.pem"
        )
    if not start_engine:
        raise CredentialsError(
            "no CANFAR credentials found (CANFAR_TOKEN, ~/.canfar/config.yaml, "
            "~/.ssl/cadcproxy.pem) and starting the local engine was not allowed"
        )
    return engine_credentials(engine_home)


def config_sites() -> list[str]:
    """The sites (server names) `~/.canfar/config.yaml` holds logins for; [] without one."""
    try:
        config = _CanfarConfig.load(Path.home())
    except CredentialsError:
        return []
    return config.sites() if config is not None else []


def engine_credentials(home: Path | None = None, *, start: bool = True) -> Credentials:
    """Credentials for the local engine, starting it when `start` (the default)."""
    try:  # imported here: the engine is optional for users who only talk to CANFAR
        from . import engine as control  # its public face: ensure_engine, engine_status
    except ImportError as exc:
        raise CredentialsError(
            "no CANFAR credentials found and the local engine is not available "
            f"({type(exc).__name__}); set CANFAR_URL and CANFAR_TOKEN or run `canfar login`"
        ) from None
    try:
        info = control.ensure_engine(home) if start else control.engine_status(home)
    except Exception as exc:  # the engine's own failure, reported in one line
        raise CredentialsError(f"could not start the local engine: {_first_line(exc)}") from None
    if info is None:
        raise CredentialsError(
            "the local engine is not running; start it with `canfar-jlab engine start`"
        )
    return Credentials(
        base_url=normalise_base_url(info.url),
        source=f"the local engine's state file ({info.token_file})",
        kind="local-engine",
        token=Secret(info.token().strip()),
        renew_hint="the local engine was restarted; try again (or `canfar-jlab engine status`)",
    )


def certificate_expiry(path: Path) -> datetime | None:
    """`notAfter` of the first certificate in a PEM file, if `cryptography` can read it."""
    try:
        from cryptography import x509
    except ImportError:
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return cert.not_valid_after_utc


def _token_or_cert(
    base_url: str,
    token: str | None,
    certificate: str | os.PathLike[str] | None,
    source: str,
    kind: str,
    registry: Secret | None,
    renew: str,
) -> Credentials:
    if token:  # a token wins over a certificate, as in the canfar client
        return Credentials(
            base_url=base_url,
            source=source,
            kind=kind,
            token=Secret(token.strip()),
            registry_auth=registry,
            renew_hint=renew,
        )
    path = Path(certificate).expanduser()  # type: ignore[arg-type]
    if not path.is_file():
        raise CredentialsError(f"the certificate {path} from {source} does not exist")
    return Credentials(
        base_url=base_url,
        source=source,
        kind=kind,
        certificate=path,
        expires_at=certificate_expiry(path),
        registry_auth=registry,
        renew_hint=renew,
    )


def _running_engine_for(base_url: str, home: Path | None) -> Credentials | None:
    """The engine's credentials when `base_url` is the running local engine's URL."""
    try:
        found = engine_credentials(home, start=False)
    except CredentialsError:
        return None
    return found if found.base_url == base_url else None


def _registry_auth(
    env: os._Environ[str] | dict[str, str], config: _CanfarConfig | None
) -> Secret | None:
    user = env.get("CANFAR_REGISTRY__USERNAME")
    secret = env.get("CANFAR_REGISTRY__SECRET")
    if not (user and secret) and config is not None:
        user, secret = config.registry_login()
    if not (user and secret):
        return None
    return Secret(base64.b64encode(f"{user}:{secret}".encode()).decode("ascii"))


class _CanfarConfig:
    """The parts of canfar's `~/.canfar/config.yaml` (schema version 2) that we read."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, home: Path) -> _CanfarConfig | None:
        path = home / ".canfar" / "config.yaml"
        try:
            mode = path.stat().st_mode
        except OSError:
            return None
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CredentialsError(
                "refusing ~/.canfar/config.yaml: other users can write it; `chmod 600` it"
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CredentialsError(
                f"cannot read ~/.canfar/config.yaml ({type(exc).__name__}); fix it or remove it "
                "and run `canfar login`"
            ) from None
        if data is None:
            return None
        if not isinstance(data, dict):
            raise CredentialsError("~/.canfar/config.yaml is not a mapping; run `canfar login`")
        return cls(path, data)

    def _section(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        return value if isinstance(value, dict) else {}

    def registry_login(self) -> tuple[str | None, str | None]:
        registry = self._section("registry")
        return registry.get("username"), registry.get("secret")

    def sites(self) -> list[str]:
        """The server names a run may choose (those whose login is in the file)."""
        records = self._section("authentication")
        return sorted(
            str(name)
            for name, server in self._section("servers").items()
            if isinstance(server, dict) and server.get("url") and server.get("idp") in records
        )

    def site_credentials(self, site: str, registry: Secret | None, allow_http: bool) -> Credentials:
        """The credential of the server named `site`, with its own login (or, for a login's
        key, that login with the server it last used)."""
        servers = self._section("servers")
        server = servers.get(site)
        if isinstance(server, dict) and isinstance(server.get("idp"), str):
            active = {"authentication": server["idp"], "server": site}
        elif site in self._section("authentication"):
            remembered = self._section("active").get("servers")
            last = remembered.get(site) if isinstance(remembered, dict) else None
            active = {"authentication": site, "server": last}
        else:
            known = ", ".join(self.sites()) or "none"
            raise CredentialsError(
                f"no site {site!r} in ~/.canfar/config.yaml (sites: {known}); "
                f"log in to it with `canfar login`"
            )
        found = self.active_credentials(None, registry, allow_http, active=active)
        if found is None:
            raise CredentialsError(
                f"the site {site!r} in ~/.canfar/config.yaml has no usable login; "
                "log in to it with `canfar login`"
            )
        return found

    def active_credentials(
        self,
        pinned: str | None,
        registry: Secret | None,
        allow_http: bool,
        *,
        active: dict[str, Any] | None = None,
    ) -> Credentials | None:
        active = self._section("active") if active is None else active
        idp = active.get("authentication")
        records = self._section("authentication")
        record = records.get(idp) if isinstance(idp, str) else None
        if not isinstance(record, dict):
            return None
        server_name, base_url = self._server(active, idp, allow_http)
        site = server_name if server_name and not pinned else None
        storage = self._storage(server_name) if not pinned else None
        where = f"~/.canfar/config.yaml (login '{idp}'"
        where += f", server '{server_name}')" if server_name else ")"
        base_url = pinned or base_url
        mode = str(record.get("mode", "")).lower()
        renew = f"renew it with `canfar login {idp}`"
        if mode == "oidc":
            access = (record.get("token") or {}).get("access")
            if not isinstance(access, str) or not access.strip():
                raise CredentialsError(f"{where} has no access token; run `canfar login {idp}`")
            expiry = epoch_time((record.get("expiry") or {}).get("access"))
            token = Secret(access.strip())
            return Credentials(
                base_url=base_url,
                source=where,
                kind="canfar-config",
                token=token,
                expires_at=expiry,
                registry_auth=registry,
                renew_hint=renew,
                oidc=self._oidc_login(idp, record, token, expiry, allow_http),
                site=site,
                storage=storage,
            )
        if mode == "x509":
            path = Path(str(record.get("path") or "~/.ssl/cadcproxy.pem")).expanduser()
            if not path.is_file():
                raise CredentialsError(
                    f"the certificate {path} named in {where} does not exist; "
                    f"run `canfar login {idp}`"
                )
            expiry = epoch_time(record.get("expiry")) or certificate_expiry(path)
            return Credentials(
                base_url=base_url,
                source=where,
                kind="canfar-config",
                certificate=path,
                expires_at=expiry,
                registry_auth=registry,
                renew_hint=renew,
                site=site,
                storage=storage,
            )
        log.info("ignoring ~/.canfar/config.yaml login %r with unknown mode %r", idp, mode)
        return None

    def _storage(self, server_name: str) -> tuple[str, str] | None:
        """The server's storage service for /arc (canfar's `storage: {ident: {uri, url}}`)."""
        server = self._section("servers").get(server_name) if server_name else None
        entries = server.get("storage") if isinstance(server, dict) else None
        if not isinstance(entries, dict):
            return None
        found = [
            (str(ident), entry)
            for ident, entry in entries.items()
            if isinstance(entry, dict) and entry.get("url") and entry.get("uri")
        ]
        found.sort(key=lambda item: (item[0] != "arc", not str(item[1]["uri"]).endswith("/arc")))
        return (str(found[0][1]["url"]), str(found[0][1]["uri"])) if found else None

    def _oidc_login(
        self,
        idp: str,
        record: dict[str, Any],
        access: Secret,
        expiry: datetime | None,
        allow_http: bool,
    ) -> OidcLogin | None:
        """How this login renews itself: its refresh token, client and provider endpoints."""
        from .oidc import OidcLogin

        def text(section: str, key: str) -> str | None:
            value = record.get(section)
            found = value.get(key) if isinstance(value, dict) else None
            return found.strip() if isinstance(found, str) and found.strip() else None

        refresh, secret = text("token", "refresh"), text("client", "secret")
        return OidcLogin(
            config_path=self.path,
            idp=idp,
            access=access,
            expires_at=expiry,
            refresh=Secret(refresh) if refresh else None,
            token_url=text("endpoints", "token"),
            discovery_url=text("endpoints", "discovery"),
            client_id=text("client", "identity"),
            client_secret=Secret(secret) if secret else None,
            allow_http=allow_http,
        )

    def _server(self, active: dict[str, Any], idp: str, allow_http: bool) -> tuple[str, str]:
        servers = self._section("servers")
        name = active.get("server")
        if name not in servers:
            remembered = active.get("servers")
            name = remembered.get(idp) if isinstance(remembered, dict) else None
        server = servers.get(name) if isinstance(name, str) else None
        if not isinstance(server, dict) or not server.get("url"):
            return "", DEFAULT_SERVER_URL
        url = str(server["url"]).rstrip("/")
        version = str(server.get("version") or "v1")
        if not _VERSION_SUFFIX.search(urlsplit(url).path):
            url = f"{url}/{version}"
        return str(name), normalise_base_url(url, allow_http=allow_http)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _shown(url: str) -> str:
    """A URL fit for a message: scheme, host and path only."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the given URL"
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "the given URL"


__all__ = [
    "DEFAULT_SERVER_URL",
    "AuthError",
    "Credentials",
    "CredentialsError",
    "Secret",
    "certificate_expiry",
    "config_sites",
    "engine_credentials",
    "normalise_base_url",
    "resolve_credentials",
]
