"""A VOSpace 2.1 service on 127.0.0.1, written for the tests from the IVOA standard.

Stands in for CANFAR's `/arc` storage service (which cannot run here): container nodes are
created by `PUT nodes/<path>` with a `vos:ContainerNode` document (201; 409 DuplicateNode;
404 ContainerNotFound when the parent is missing), and files by a synchronous transfer:
`POST synctrans` with a `vos:transfer` (pushToVoSpace) answers 303 to the transfer details,
whose `httpsput` endpoint takes the bytes with `PUT`. Every request needs the bearer token.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath
from xml.etree import ElementTree

from fake_http import FakeHandler, FakeServer

VOS = "http://www.ivoa.net/xml/VOSpace/v2.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None


class FakeVOSpace(FakeServer):
    """`with FakeVOSpace(token) as vo:`; `vo.url`/`vo.uri` name it; `vo.files` holds writes."""

    def __init__(self, token: str, *, homes: tuple[str, ...] = ("home/tester",)) -> None:
        self.token = token
        self.authority = "example.org"
        self.lock = threading.Lock()
        self.containers: set[str] = {"home", "projects"} | set(homes)
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, str] = {}
        self.seen: list[Seen] = []
        self.read_only = False  # e.g. over quota: writes refused with 403
        self._serve(_handler_for(self))

    @property
    def url(self) -> str:
        return f"{self.root}/arc"

    @property
    def uri(self) -> str:
        return f"ivo://{self.authority}/arc"

    def path_of(self, vos_uri: str) -> str | None:
        prefix = f"vos://{self.authority}~arc/"
        if not vos_uri.startswith(prefix):
            return None
        path = vos_uri[len(prefix) :].strip("/")
        parts = PurePosixPath(path).parts
        return path if parts and ".." not in parts else None


def _handler_for(vo: FakeVOSpace) -> type[FakeHandler]:
    class Handler(FakeHandler):
        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with vo.lock:
                vo.seen.append(Seen(method, self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {vo.token}":
                return self._text(401, "NotAuthenticated")
            path = self.path.split("?", 1)[0]
            if method == "PUT" and path.startswith("/arc/nodes/"):
                return self._create_node(path[len("/arc/nodes/") :], body)
            if method == "POST" and path == "/arc/synctrans":
                return self._negotiate(body)
            if method == "GET" and path.startswith("/arc/xfer/"):
                return self._details(path.split("/")[3])
            if method == "PUT" and path.startswith("/arc/files/"):
                return self._write(path.split("/")[3], body)
            return self._text(404, "NotFound")

        def _create_node(self, path: str, body: bytes) -> None:
            try:
                node = ElementTree.fromstring(body)
            except ElementTree.ParseError:
                return self._text(400, "InvalidArgument: not a node document")
            kind = node.get(f"{{{XSI}}}type")
            if node.tag != f"{{{VOS}}}node" or kind != "vos:ContainerNode":
                return self._text(400, "InvalidArgument: only container nodes here")
            if vo.path_of(node.get("uri", "")) != path.strip("/"):
                return self._text(400, "InvalidURI: the node's uri does not match the path")
            if vo.read_only:
                return self._text(403, "PermissionDenied")
            parent = str(PurePosixPath(path).parent)
            with vo.lock:
                if path in vo.containers or path in vo.files:
                    return self._text(409, "DuplicateNode")
                if parent != "." and parent not in vo.containers:
                    return self._text(404, "ContainerNotFound")
                vo.containers.add(path)
            self.reply(201, "text/xml", body)

        def _negotiate(self, body: bytes) -> None:
            try:
                transfer = ElementTree.fromstring(body)
            except ElementTree.ParseError:
                return self._text(400, "InvalidArgument")
            target = vo.path_of(transfer.findtext(f"{{{VOS}}}target") or "")
            direction = transfer.findtext(f"{{{VOS}}}direction")
            protocols = [p.get("uri") for p in transfer.iter(f"{{{VOS}}}protocol")]
            if target is None or direction != "pushToVoSpace":
                return self._text(400, "InvalidArgument")
            if "ivo://ivoa.net/vospace/core#httpsput" not in protocols:
                return self._text(400, "ProtocolNotSupported")
            with vo.lock:
                if str(PurePosixPath(target).parent) not in vo.containers:
                    return self._text(404, "ContainerNotFound")
                job = secrets.token_hex(6)
                vo.jobs[job] = target
            self.reply(303, "text/plain", b"", {"Location": f"/arc/xfer/{job}/results/details"})

        def _details(self, job: str) -> None:
            with vo.lock:
                target = vo.jobs.get(job)
            if target is None:
                return self._text(404, "NotFound")
            xml = (
                f'<vos:transfer xmlns:vos="{VOS}" version="2.1">'
                f"<vos:target>vos://{vo.authority}~arc/{target}</vos:target>"
                "<vos:direction>pushToVoSpace</vos:direction>"
                '<vos:protocol uri="ivo://ivoa.net/vospace/core#httpsput">'
                f"<vos:endpoint>{vo.root}/arc/files/{job}</vos:endpoint>"
                '<vos:securityMethod uri="ivo://ivoa.net/sso#token"/>'
                "</vos:protocol></vos:transfer>"
            )
            self.reply(200, "text/xml", xml.encode())

        def _write(self, job: str, body: bytes) -> None:
            if vo.read_only:
                return self._text(403, "PermissionDenied")
            with vo.lock:
                target = vo.jobs.pop(job, None)
                if target is None:
                    return self._text(404, "NotFound")
                vo.files[target] = body
            self.reply(201, "text/plain", b"")

        def _text(self, code: int, text: str) -> None:
            self.reply(code, "text/plain", (text + "\n").encode())

    return Handler
