"""Shared by the live hub's tests (tests/core/test_live*.py, test_log_stream.py): a session
that prints numbered lines, a viewer that reads a log to its end, and the real client with its
calls counted."""

from __future__ import annotations

import asyncio
import sys

from canfar_jlab.live import LiveHub, LogDelta, LogEnd
from canfar_jlab.models import SessionSpec
from canfar_jlab.skaha import SkahaClient

PRINTER = "import time\nfor i in range({n}):\n print('line',i,flush=True)\n time.sleep({pause})"


async def start_printer(client: SkahaClient, tmp_path, name: str, n: int, pause: float) -> str:
    """A session printing `line 0` .. `line n-1`, `pause` seconds apart; its id."""
    script = tmp_path / f"{name}.py"
    script.write_text(PRINTER.format(n=n, pause=pause))
    image = (await client.images())[0].id
    spec = SessionSpec(name=name, image=image, cmd=sys.executable, args=[str(script)])
    return await client.create_session(spec)


async def read_all(
    hub: LiveHub, session_id: str, *, slow: float = 0.0, **kwargs
) -> tuple[str, LogEnd | None]:
    """Everything the hub shows of a log, and its end; `slow` seconds after each piece is a
    viewer that reads slowly. Other keywords go to `hub.logs`."""
    text, end = "", None
    async for item in hub.logs(session_id, **kwargs):
        if isinstance(item, LogDelta):
            text += item.text
            if slow:
                await asyncio.sleep(slow)  # a viewer that reads slowly, not a wait for state
        elif isinstance(item, LogEnd):
            end = item
    return text, end


class CountingSource:
    """The real client with its calls counted (a live hub's upstream cost); `stream=False`
    hides the log stream, so a hub polls."""

    def __init__(self, client: SkahaClient, stream: bool = True) -> None:
        self.client = client
        self.log_reads = 0
        self.list_calls = 0
        self.stream_opens = 0
        if stream:
            self.log_stream = self._log_stream

    async def list_sessions(self):
        self.list_calls += 1
        return await self.client.list_sessions()

    async def logs(self, session_id, offset=None):
        self.log_reads += 1
        return await self.client.logs(session_id, offset)

    async def read_log(self, session_id, cursor):
        self.log_reads += 1
        return await self.client.read_log(session_id, cursor)

    async def _log_stream(self, sessions):
        self.stream_opens += 1
        async for frame in self.client.log_stream(sessions):
            yield frame
