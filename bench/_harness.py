"""Shared pieces of the server benchmarks: a local engine in a temporary home, a counting proxy
in front of it (so the benchmark sees every request the Jupyter server sends upstream), and a
real Jupyter server with canfar_jlab, reached over HTTP and websockets like a browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from tornado import httpserver, iostream, web, websocket

from canfar_jlab.engine.control import ensure_engine, stop_engine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CountingProxy:
    """Forwards /skaha/... to the engine, counting requests by kind (list, logs, other)."""

    def __init__(self, engine_url: str, engine_token: str) -> None:
        self.engine_root = engine_url.rsplit("/skaha", 1)[0]
        self.engine_token = engine_token
        self.token = "proxy-" + secrets.token_hex(8)
        self.counts: Counter[str] = Counter()
        self.stream_bytes = 0
        self.port = free_port()
        self._http = httpx.AsyncClient(timeout=60)
        proxy = self

        class Forward(web.RequestHandler):
            SUPPORTED_METHODS = ("GET", "POST", "DELETE")

            async def _forward(self) -> None:
                if self.request.headers.get("Authorization") != f"Bearer {proxy.token}":
                    raise web.HTTPError(401)
                view = self.get_query_argument("view", "")
                kind = (
                    "stream"
                    if self.request.path.endswith("/logstream")
                    else "logs"
                    if view == "logs"
                    else "list"
                    if self.request.path.endswith("/session")
                    and self.request.method == "GET"
                    and not view
                    else "other"
                )
                proxy.counts[kind] += 1
                headers = {
                    k: v
                    for k, v in self.request.headers.get_all()
                    if k.lower() not in {"host", "authorization", "content-length"}
                }
                headers["Authorization"] = f"Bearer {proxy.engine_token}"
                if kind == "stream":  # long-lived: pass the bytes on as they come
                    await self._stream(headers)
                    return
                try:
                    reply = await proxy._http.request(
                        self.request.method,
                        proxy.engine_root + self.request.uri,
                        headers=headers,
                        content=self.request.body or None,
                    )
                except (httpx.HTTPError, RuntimeError):  # the bench is tearing down
                    raise web.HTTPError(502) from None
                self.set_status(reply.status_code)
                for key, value in reply.headers.items():
                    if key.lower() in {"content-type", "x-skaha-log-offset", "retry-after"}:
                        self.set_header(key, value)
                self.finish(reply.content)

            async def _stream(self, headers: dict[str, str]) -> None:
                request = proxy._http.build_request(
                    "POST",
                    proxy.engine_root + self.request.uri,
                    headers=headers,
                    content=self.request.body,
                )
                try:
                    reply = await proxy._http.send(request, stream=True)
                except (httpx.HTTPError, RuntimeError):
                    raise web.HTTPError(502) from None
                try:
                    self.set_status(reply.status_code)
                    async for chunk in reply.aiter_raw():
                        proxy.stream_bytes += len(chunk)
                        self.write(chunk)
                        await self.flush()
                except (httpx.HTTPError, RuntimeError, iostream.StreamClosedError):
                    return
                finally:
                    await reply.aclose()
                self.finish()

            get = post = delete = _forward

        self.server = httpserver.HTTPServer(
            web.Application([(r"/.*", Forward)], log_function=lambda handler: None)
        )
        self.server.listen(self.port, "127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/skaha/v1"

    async def close(self) -> None:
        self.server.stop()
        await self._http.aclose()


class JupyterServer:
    """`jupyter server` with canfar_jlab, as a subprocess pointed at a Skaha URL."""

    def __init__(self, home: Path, skaha_url: str, skaha_token: str) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(16)
        root = home / "root"
        root.mkdir(exist_ok=True)
        env = dict(os.environ, CANFAR_URL=skaha_url, CANFAR_TOKEN=skaha_token)
        env["CANFAR_JLAB_HOME"] = str(home)
        env["JUPYTER_CONFIG_DIR"] = str(home / "jupyter-config")
        args = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            "--ServerApp.jpserver_extensions=canfar_jlab=True",
            "--CanfarJlabApp.list_interval=2.0",
        ]
        self.log = open(home / "jupyter.log", "wb")
        self.process = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    reply = await client.get(
                        f"{self.base}/canfar-jlab/config", headers=self.headers()
                    )
                    if reply.status_code == 200:
                        return
                if self.process.poll() is not None:
                    raise RuntimeError("the Jupyter server exited; see jupyter.log")
                await asyncio.sleep(0.2)
        raise RuntimeError("the Jupyter server did not answer in time")

    async def live(self) -> websocket.WebSocketClientConnection:
        request = httpx.URL(f"ws://127.0.0.1:{self.port}/canfar-jlab/live")
        from tornado.httpclient import HTTPRequest

        return await websocket.websocket_connect(
            HTTPRequest(str(request), headers=self.headers()), max_message_size=64 * 2**20
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@contextlib.asynccontextmanager
async def stack(engine_config: dict | None = None) -> AsyncIterator[tuple]:
    """(home, engine info, proxy, jupyter server), all torn down afterwards."""
    with tempfile.TemporaryDirectory(prefix="canfar-jlab-bench-") as tmp:
        home = Path(tmp)
        info = await asyncio.to_thread(ensure_engine, home, 30.0, config=engine_config)
        proxy = CountingProxy(info.url, info.token())
        server = JupyterServer(home, proxy.url, proxy.token)
        try:
            await server.wait_ready()
            yield home, info, proxy, server
        finally:
            server.stop()
            await proxy.close()
            await asyncio.to_thread(stop_engine, home, 30.0, terminate_replicas=True)


async def engine_client(info):
    """A SkahaClient straight to the engine (for launching replicas in the benchmark)."""
    from canfar_jlab.credentials import Credentials, Secret, normalise_base_url
    from canfar_jlab.skaha import SkahaClient

    creds = Credentials(
        base_url=normalise_base_url(info.url),
        source="bench",
        kind="local-engine",
        token=Secret(info.token()),
    )
    return SkahaClient(creds)


async def messages(ws, stop: asyncio.Event) -> AsyncIterator[str]:
    """Raw websocket messages until `stop` is set or the server closes the socket."""
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(ws.read_message(), 0.5)
        except asyncio.TimeoutError:
            continue
        if raw is None:
            return
        yield raw


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def dumps(message: dict) -> str:
    return json.dumps(message)
