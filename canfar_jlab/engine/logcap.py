"""The per-replica log cap: what the cut looks like, on disk and as served.

A replica writes straight into its log file (a file, not a pipe, so it never blocks or dies when
the engine restarts). Its supervisor keeps the file near the cap: the first `cap` bytes are kept,
followed by one marker line, and later output is truncated away. The engine serves exactly
`file[:cap] + marker` once the file has passed the cap, whether or not the supervisor has cut it
yet, so readers always see the same bytes at the same offsets.
"""

from __future__ import annotations

import os


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


def enforce(fd: int, cap: int) -> None:
    """Cut the file open read-write (not appending) as `fd` to `cap` bytes plus the marker."""
    size = os.fstat(fd).st_size
    mark = marker(cap)
    if size <= cap or size == cap + len(mark):
        return
    if os.pread(fd, len(mark), cap) != mark:
        os.ftruncate(fd, cap)
        os.pwrite(fd, mark, cap)
    os.ftruncate(fd, cap + len(mark))


class Cutter:
    """Keeps one log at its cap. The replica's own appends are never touched; a read-write
    descriptor is opened only once the log has passed the cap (most never do)."""

    def __init__(self, path: str, append_fd: int, cap: int) -> None:
        self.path, self.append_fd, self.cap = path, append_fd, cap
        self._fd: int | None = None

    def check(self) -> None:
        if os.fstat(self.append_fd).st_size <= self.cap:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        enforce(self._fd, self.cap)
