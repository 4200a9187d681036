"""A small IVOA VOSpace 2.1 client: create container nodes and push files, nothing more.

CANFAR serves its `/arc` storage (home and project folders that every Skaha session mounts)
through a VOSpace service. Its profile, as the standard says and CANFAR's tools use it:

* a node `/arc/home/alice/x` is `vos://<authority>~arc/home/alice/x`, with `<authority>~arc`
  the storage service's `ivo://<authority>/arc` identifier;
* `PUT <service>/nodes/<path>` with a `vos:ContainerNode` document creates a folder (201;
  409 when it exists, 404 when its parent does not);
* a file is written by negotiating a transfer: `POST <service>/synctrans` with a
  `vos:transfer` document (direction `pushToVoSpace`, protocol `httpsput`, the security
  method we hold), following 303 redirects to the transfer details, whose `vos:endpoint`s
  are URLs to `PUT` the bytes to.

The credential is the session service's (bearer token or X.509 certificate). A bearer token is
sent to the storage service's origin, and to an endpoint only over https on the same domain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import httpx

from .errors import AuthError, SkahaError, Unavailable, VOSpaceError
from .skaha import _ssl_context

if TYPE_CHECKING:
    from .credentials import Credentials

log = logging.getLogger(__name__)

VOS_NS = "http://www.ivoa.net/xml/VOSpace/v2.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PUSH = "pushToVoSpace"
HTTPS_PUT = "ivo://ivoa.net/vospace/core#httpsput"
HTTP_PUT = "ivo://ivoa.net/vospace/core#httpput"
SSO_BEARER = "ivo://ivoa.net/sso#token"
SSO_CERT = "ivo://ivoa.net/sso#tls-with-certificate"
_CAP = 256 * 2**10


@dataclass(frozen=True)
class Storage:
    """A VOSpace service: its base URL (`.../arc`) and its IVOA identifier (`ivo://x/arc`)."""

    url: str
    uri: str

    def vos_uri(self, path: str) -> str:
        """`/arc/home/alice/x` (or `home/alice/x`) as `vos://x~arc/home/alice/x`."""
        authority, _, service = self.uri.removeprefix("ivo://").partition("/")
        relative = _relative(path, service)
        return f"vos://{authority}~{service}/{relative}"

    def node_url(self, path: str) -> str:
        _, _, service = self.uri.removeprefix("ivo://").partition("/")
        return f"{self.url.rstrip('/')}/nodes/{_relative(path, service)}"


class VOSpaceClient:
    """`mkdirs` and `upload` against one VOSpace service with the session's credential."""

    def __init__(self, storage: Storage, credentials: Credentials, *, timeout: float = 60.0):
        self.storage = storage
        self.credentials = credentials
        self._origin = _origin(httpx.URL(storage.url))
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,
            verify=_ssl_context(credentials),
            trust_env=storage.url.startswith("https:"),
        )

    async def __aenter__(self) -> VOSpaceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"VOSpaceClient({self.storage.url!r})"

    # ------------------------------------------------------------------ operations

    async def mkdirs(self, path: str) -> None:
        """Create `path` and any missing parent below the service's root (like `mkdir -p`)."""
        parts = PurePosixPath(path).parts
        _, _, service = self.storage.uri.removeprefix("ivo://").partition("/")
        relative = PurePosixPath(_relative(path, service)).parts
        start = len(parts) - len(relative)
        for depth in range(start + 1, len(parts) + 1):
            await self._mkdir(str(PurePosixPath(*parts[:depth])))

    async def upload(self, path: str, data: bytes) -> None:
        """Write `data` to the file node `path` (replacing it), through a negotiated transfer."""
        endpoints = await self._negotiate(path)
        last = "no endpoint was offered"
        for endpoint in endpoints:
            response = await self._request(
                "PUT",
                endpoint,
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            if response.status_code in (200, 201, 204):
                return
            last = f"HTTP {response.status_code}"
            if response.status_code in (401, 403):
                break
        raise VOSpaceError(f"cannot write {path} to {self._service}: {last}")

    async def upload_files(self, files: Iterable[tuple[str, bytes]]) -> None:
        for path, data in files:
            await self.upload(path, data)

    # ------------------------------------------------------------------ plumbing

    @property
    def _service(self) -> str:
        return httpx.URL(self.storage.url).host or "the storage service"

    async def _mkdir(self, path: str) -> None:
        uri = self.storage.vos_uri(path)
        node = ElementTree.Element(f"{{{VOS_NS}}}node", {"uri": uri})
        node.set(f"{{{XSI_NS}}}type", "vos:ContainerNode")
        ElementTree.register_namespace("vos", VOS_NS)
        ElementTree.register_namespace("xsi", XSI_NS)
        body = ElementTree.tostring(node, xml_declaration=True, encoding="utf-8")
        response = await self._request(
            "PUT",
            self.storage.node_url(path),
            content=body,
            headers={"Content-Type": "text/xml"},
        )
        if response.status_code in (200, 201, 409):  # 409: it exists already
            return
        raise self._refused(response, f"create the folder {path}")

    async def _negotiate(self, path: str) -> list[str]:
        transfer = ElementTree.Element(f"{{{VOS_NS}}}transfer", {"version": "2.1"})
        ElementTree.SubElement(transfer, f"{{{VOS_NS}}}target").text = self.storage.vos_uri(path)
        ElementTree.SubElement(transfer, f"{{{VOS_NS}}}direction").text = PUSH
        protocol = ElementTree.SubElement(transfer, f"{{{VOS_NS}}}protocol", {"uri": HTTPS_PUT})
        method = SSO_CERT if self.credentials.certificate is not None else SSO_BEARER
        ElementTree.SubElement(protocol, f"{{{VOS_NS}}}securityMethod", {"uri": method})
        ElementTree.register_namespace("vos", VOS_NS)
        body = ElementTree.tostring(transfer, xml_declaration=True, encoding="utf-8")
        url = f"{self.storage.url.rstrip('/')}/synctrans"
        response = await self._request(
            "POST", url, content=body, headers={"Content-Type": "text/xml"}
        )
        for _ in range(5):  # the transfer details are one or two redirects away
            if response.status_code not in (302, 303):
                break
            target = response.url.join(response.headers.get("Location", ""))
            response = await self._request("GET", str(target))
        if response.status_code != 200:
            raise self._refused(response, f"negotiate writing {path}")
        try:
            document = ElementTree.fromstring(response.content[:_CAP])  # noqa: S314 - capped
        except ElementTree.ParseError:
            raise VOSpaceError(f"{self._service} sent unreadable transfer details") from None
        endpoints = [
            (node.text or "").strip()
            for protocol in document.iter(f"{{{VOS_NS}}}protocol")
            if protocol.get("uri") in (HTTPS_PUT, HTTP_PUT)
            for node in protocol.iter(f"{{{VOS_NS}}}endpoint")
        ]
        endpoints = [e for e in endpoints if e.startswith(("https://", "http://"))]
        if not endpoints:
            raise VOSpaceError(f"{self._service} offered no way to write {path}")
        return endpoints

    async def _request(
        self, method: str, url: str, *, content: bytes | None = None, headers=None
    ) -> httpx.Response:
        target = httpx.URL(url)
        sent = dict(headers or {})
        if self._may_carry_token(target):
            sent.update(self.credentials.auth_headers())
            sent.pop("X-Skaha-Registry-Auth", None)  # the container registry's, not storage's
        try:
            await self.credentials.refresh_if_due()
            response = await self._http.request(method, target, content=content, headers=sent)
            await response.aread()
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach {self._service} to stage the run ({type(exc).__name__})"
            ) from None
        log.debug("%s %s -> %d", method, target.path, response.status_code)
        return response

    def _may_carry_token(self, url: httpx.URL) -> bool:
        if _origin(url) == self._origin:
            return True
        if url.scheme != "https":
            return False
        home = self._origin[1].split(".", 1)[-1]  # ws-uv.canfar.net -> canfar.net
        return "." in home and (url.host == home or url.host.endswith("." + home))

    def _refused(self, response: httpx.Response, what: str) -> SkahaError:
        status = response.status_code
        detail = " ".join(response.text.split())[:200]
        for secret in self.credentials.secret_values():
            detail = detail.replace(secret, "***")
        said = f"{self._service} would not {what} (HTTP {status}" + (
            f": {detail})" if detail else ")"
        )
        if status in (401, 403):
            return AuthError(said, status=status)
        return VOSpaceError(said, status=status)


def _relative(path: str, service: str) -> str:
    """`/arc/home/a` -> `home/a` (the service's mount prefix removed), `home/a` unchanged."""
    parts = [p for p in PurePosixPath(path).parts if p != "/"]
    if parts and parts[0] == service:
        parts = parts[1:]
    if not parts or any(p in ("..", ".") for p in parts):
        raise VOSpaceError(f"{path!r} is not a folder under /{service}")
    return "/".join(parts)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host, port
