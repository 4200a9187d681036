"""What `logs -f` and the magic print of a replica's log: lines as a terminal shows them."""

from __future__ import annotations

from canfar_jlab.kernel_runner import PROGRESS_REWRITE
from canfar_jlab.runs.follow import shown_line, shown_lines


def test_a_runner_progress_bar_prints_as_plain_lines_without_escape_codes():
    log = f"reading\n  0%|\n{PROGRESS_REWRITE} 40%|####\n{PROGRESS_REWRITE}100%|##########\ndone\n"
    assert shown_lines(log) == ["reading", "  0%|", " 40%|####", "100%|##########", "done"]


def test_a_raw_carriage_return_line_shows_its_last_state():
    assert shown_line(" 10%\r 50%\r") == " 50%"
    assert shown_lines("a\r\nb") == ["a", "b"]
