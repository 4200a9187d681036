"""The per-replica log cap: what the cut looks like, on disk and as served.

A replica writes into a pipe that the supervisor (not the engine: it outlives engine restarts)
copies into the log file. The supervisor writes the first `cap` bytes, then one marker line, and
from then on reads and discards the rest, so the replica never blocks or dies at the cap and the
file never holds more than `cap` + the marker (+ the supervisor's own closing line, e.g. an
OOMKilled note): the bound holds by construction, however fast the replica prints. The engine
serves exactly `file[:cap] + marker` once the file has passed the cap, so readers always see the
same bytes at the same offsets.
"""

from __future__ import annotations

import os
import time


def marker(cap: int) -> bytes:
    """The line that replaces everything past `cap` bytes (it starts on a new line)."""
    return (
        f"\n[canfar-jlab engine: log cut here at {cap} bytes (log cap); "
        "later output was discarded]\n"
    ).encode()


def served_size(file_size: int, cap: int) -> int:
    """Length of the log as served for a file of `file_size` bytes."""
    return file_size if file_size <= cap else cap + len(marker(cap))


def read_served(path: str | os.PathLike[str], cap: int, offset: int, limit: int) -> bytes:
    """Up to `limit` bytes of the served log starting at `offset` (b"" at or past the end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    try:
        size = os.fstat(fd).st_size
        end = served_size(size, cap)
        if offset >= end:
            return b""
        want = min(limit, end - offset)
        data = b""
        if offset < min(size, cap):
            data = os.pread(fd, min(want, min(size, cap) - offset), offset)
        if size > cap and len(data) < want:
            mark = marker(cap)
            start = max(0, offset - cap)
            data += mark[start : start + want - len(data)]
        return data
    finally:
        os.close(fd)


CHUNK = 1 << 16  # one pipe buffer: one read and one write per 64 KiB, no work per line
PUMP_CHUNKS = 16  # at most 1 MiB per call, so a fast writer cannot starve the supervisor's loop


class Copier:
    """Copies a replica's output from the (non-blocking) read end of its pipe into the log."""

    def __init__(self, read_fd: int, log_fd: int, cap: int) -> None:
        self.read_fd, self.log_fd, self.cap = read_fd, log_fd, cap
        self.kept = os.fstat(log_fd).st_size
        self.cut = False
        self.open = True

    def pump(self, chunks: int = PUMP_CHUNKS) -> bool:
        """Copy what the pipe holds now, up to `chunks` reads; close it at end of file. True
        when there may be more to read at once."""
        for _ in range(chunks):
            if not self.open:
                return False
            try:
                data = os.read(self.read_fd, CHUNK)
            except BlockingIOError:
                return False
            if not data:
                os.close(self.read_fd)
                self.open = False
                return False
            self._keep(data)
        return True

    def drain(self, seconds: float) -> None:
        """Copy until every writer has closed the pipe or nothing is left to read, for at most
        `seconds` (a stray writer outside the tree cannot keep the supervisor forever)."""
        deadline = time.monotonic() + seconds
        while self.pump() and time.monotonic() < deadline:
            pass
        if self.open:
            os.close(self.read_fd)
            self.open = False

    def _keep(self, data: bytes) -> None:
        if self.cut:
            return  # past the cap: read and discarded
        room = self.cap - self.kept
        head = data[:room] if room > 0 else b""
        if len(data) > room:
            head += marker(self.cap)
            self.cut = True
        view = memoryview(head)
        try:
            while view:
                view = view[os.write(self.log_fd, view) :]
        except OSError:  # a full disk loses output; it must not stop the supervisor
            pass
        self.kept += min(len(data), max(room, 0))
