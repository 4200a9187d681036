"""What is new in a session's log: the one place that turns a service's log reply into new text.

Every log reader (SkahaClient.logs and .tail, the run follower, the live hub) keeps a
`LogCursor` per session log and hands it each reply; a `LineCutter` holds back a partial last
line until its end arrives. Two kinds of service:

* offset honoured (the local engine, `X-Skaha-Log-Offset`): the reply is only the bytes after
  the offset asked for, and the header says where to ask next;
* whole log (Skaha): each reply is the whole log. The part already seen is recognised by its
  length and its last bytes (an anchor), so a log that was cut, rotated or restarted (shorter
  than what was seen) is noticed: new text after the anchor if it is still there, otherwise
  the whole new log after one notice line, never silently repeated or skipped.

The engine's cap marker (docs/engine.md, engine/logcap.py) keeps the served log's prefix
stable, so it arrives once as ordinary new text in both modes.
"""

from __future__ import annotations

import codecs

from .kernel_runner import PROGRESS_REWRITE

# Said once where the log no longer continues what was shown (whole-log services only).
RESTART_NOTICE = b"[canfar-jlab: the log was cut or rotated upstream]\n"


class LogCursor:
    """How much of one session's log has been seen; `advance` turns a reply into new bytes."""

    ANCHOR = 256

    def __init__(self, offset: int = 0) -> None:
        self.offset = max(0, int(offset))  # the byte offset to ask for next
        self.honoured: bool | None = None  # None until the first reply
        self._anchor = b""  # the last bytes seen of a whole log

    def advance(self, body: bytes, server_offset: int | None) -> bytes:
        """The new bytes in `body`, the reply to a read from `self.offset`. `server_offset` is
        the service's next offset when it honoured ours, else None (`body` is the whole log)."""
        if server_offset is not None:
            self.honoured = True
            new = unseen(self.offset, server_offset - len(body), body)
            self.offset = server_offset
            return new
        self.honoured = False
        seen, anchor = self.offset, self._anchor
        if len(body) >= seen and body[seen - len(anchor) : seen] == anchor:
            new = body[seen:]
        else:
            found = body.rfind(anchor) if anchor else -1
            if found >= 0:
                new = body[found + len(anchor) :]
            elif not body:
                new = b""  # the service no longer has the log (e.g. the session expired)
            else:
                new = RESTART_NOTICE + body
        if body:
            self.offset = len(body)
            self._anchor = body[-self.ANCHOR :]
        return new


def unseen(seen: int, start: int, data: bytes) -> bytes:
    """The part of `data` (the log's bytes from offset `start`) past byte `seen`: where the
    service honours offsets, a reply or stream frame that overlaps what was seen is cut."""
    return data[max(0, seen - start) :]


class LineCutter:
    """Passes on bytes as text in whole lines, decoding UTF-8 across reply boundaries."""

    MAX_PENDING = 64 * 2**10  # a "line" longer than this is passed on unfinished

    def __init__(self) -> None:
        self._pending = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def take(self, data: bytes, *, final: bool = False) -> str:
        """Text of the whole lines now complete; with `final`, everything left as well."""
        data = self._pending + data
        if final:
            self._pending = b""
            return self._decoder.decode(data, final=True)
        cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if len(data) - cut > self.MAX_PENDING:
            cut = len(data)
        self._pending = data[cut:]
        return self._decoder.decode(data[:cut])


def lines_of(text: str) -> list[str]:
    """`text` (whole lines from a LineCutter) as lines without their ends. Only \\n, \\r\\n and
    \\r end a line (str.splitlines would also split at form feeds and Unicode separators)."""
    if not text:
        return []
    # A progress bar's rewrite of its previous line (the kernel runner's PROGRESS_REWRITE,
    # cursor controls) prints here as a line of its own, without the controls.
    text = text.replace(PROGRESS_REWRITE, "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines
