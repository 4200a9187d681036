"""Running a magic in the test shell and reading what it showed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output


@dataclass
class Shown:
    """What one magic call printed and displayed."""

    stdout: str
    stderr: str
    html: list[str]
    plain: list[str]
    success: bool = True

    @property
    def text(self) -> str:
        """Printed text and the plain-text form of every display, in that order."""
        return self.stdout + "\n".join(self.plain)

    def error_line(self) -> str:
        """The one-line error on stderr (and nothing else anywhere)."""
        lines = self.stderr.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {self.stderr!r}"
        assert lines[0].startswith("canfar: ")
        assert "Traceback" not in self.stdout + self.stderr
        return lines[0]


def line(shell: InteractiveShell, text: str) -> Shown:
    """`%canfar <text>`, as a kernel runs it."""
    with capture_output() as captured:
        shell.run_line_magic("canfar", text)
    return _shown(captured)


def cell(shell: InteractiveShell, source: str) -> Shown:
    """Run a whole cell (with history, as a kernel does), e.g. a `%%canfar` cell."""
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=True)
    shown = _shown(captured)
    shown.success = result.success
    return shown


def _shown(captured) -> Shown:
    html = [o.data["text/html"] for o in captured.outputs if "text/html" in o.data]
    plain = [o.data.get("text/plain", "") for o in captured.outputs]
    return Shown(captured.stdout, captured.stderr, html, plain)


def replica_lines(text: str) -> dict[int, list[str]]:
    """`[i] line` output of a followed run, by replica, as the notebook printed it."""
    found: dict[int, list[str]] = {}
    # leaving out the runner's cell markers and its start line
    skip = r"## canfar-jlab cell |canfar-jlab: replica \d+ of \d+ starting \("
    for match in re.finditer(rf"^\[(\d+)\] (?!{skip})(.*)$", text, re.M):
        found.setdefault(int(match[1]), []).append(match[2])
    return found
