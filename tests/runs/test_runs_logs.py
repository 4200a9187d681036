"""Logs: a replica that reaches the engine's cap is archived complete to the cap, marker kept,
and an archived log is never downloaded again (counted by a proxy in front of the engine)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter
from urllib.parse import urlsplit

from runs_support import wait_until, write_notebook

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.engine import logcap
from canfar_jlab.runs import Connection, LaunchRequest, RunService, RunStore, Target

PRINTS_200_MB = """
import sys
line = "x" * 1023 + "\\n"
block = line * 1024
for _ in range(200):
    sys.stdout.write(block)
sys.stdout.flush()
"""
_REQUEST = re.compile(rb"(GET|POST|DELETE) (/\S+) HTTP/1\.[01]\r\n")


class CountingProxy:
    """A TCP proxy in front of the engine that counts the log requests per session."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.log_reads: Counter[str] = Counter()
        self.server: asyncio.AbstractServer | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self.server is not None
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers += [writer, up_writer]

        async def pump(source, sink, count: bool) -> None:
            seen = b""
            try:
                while data := await source.read(65536):
                    if count:
                        seen = (seen + data)[-4096:]
                        for match in _REQUEST.finditer(seen):
                            path = match[2].decode()
                            if "view=logs" in path:
                                self.log_reads[path.split("?")[0].rsplit("/", 1)[-1]] += 1
                        seen = seen[seen.rfind(b"\r\n") + 2 :] if b"\r\n" in seen else seen
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(
            pump(reader, up_writer, True), pump(up_reader, writer, False), return_exceptions=True
        )


async def test_a_capped_log_is_archived_whole_and_never_downloaded_again(engine, tmp_path):
    notebook = write_notebook(tmp_path / "loud.ipynb", [PRINTS_200_MB])
    store = RunStore(tmp_path / "runs")
    real = engine_credentials(engine.home, start=False)
    target = urlsplit(real.base_url)
    proxy = CountingProxy(target.hostname, target.port)
    port = await proxy.start()
    proxied = dataclasses.replace(
        real,
        base_url=real.base_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{port}"),
    )
    try:
        # The connection every door uses (its client accepts a log of cap + marker).
        async with Connection(resolve=lambda url: proxied) as connection:
            service = RunService(store, connection)
            run = await service.launch(LaunchRequest(notebook=str(notebook), name="loud"))

            async def archived():
                current = await service.get(run.name)
                return current.state != "active" and current.replica(1).log is not None

            await wait_until(archived, timeout=180, what="the loud replica's log to be archived")
            final = store.get("loud")
            replica = final.replica(1)
            session_id = replica.session_id
            reads = proxy.log_reads[session_id]
            text = (tmp_path / "runs" / "loud" / replica.log).read_bytes()
            cap = 64 * 2**20
            mark = logcap.marker(cap)
            assert len(text) == cap + len(mark)
            assert text.endswith(mark)
            first = text.split(b"\n", 3)  # the runner's start line, cell header, what it printed
            assert first[0].startswith(b"canfar-jlab: replica 1 of 1 starting (notebook loud.ipynb")
            assert first[1].startswith(b"## canfar-jlab cell 1/1") and first[2] == b"x" * 1023
            assert replica.status.value == "Completed" and not replica.log_partial

            for _ in range(5):  # later looks from every door read the archive
                await service.refresh()
                shown = await service.logs(Target(run=store.get("loud")))
                assert shown[0].source == "archive"
            assert proxy.log_reads[session_id] == reads
            print(f"log requests for the capped replica: {reads}")
    finally:
        await proxy.close()
