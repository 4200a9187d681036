"""What every fake service of the suite shares: a threaded HTTP server on 127.0.0.1 that starts
with `with` and stops with it, and a handler base that writes a whole reply.

The fakes (fake_skaha.py, fake_vospace.py, fake_oidc.py) stand in for what cannot run here
(CANFAR's Skaha, its storage, an OIDC provider) as real HTTP servers, never patched functions;
each adds only its own routes and state.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    """Base of a fake service: `_serve(handler)` in `__init__`, then `with fake:` runs it."""

    scheme = "http"

    def _serve(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
    ) -> None:
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        if tls is not None:  # e.g. one that requires a client certificate (X.509 login)
            self.scheme = "https"
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


class FakeHandler(BaseHTTPRequestHandler):
    """A handler that keeps quiet and replies in one piece."""

    protocol_version = "HTTP/1.1"
    server_header: str | None = None  # e.g. "OpenCADC/cadc-rest", as the real service says

    def log_message(self, *args: object) -> None:
        pass

    def reply(
        self, code: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.server_header:
            self.send_header("Server", self.server_header)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
