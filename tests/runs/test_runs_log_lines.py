"""What `logs`, `logs -f` and the magic print of a replica's log: a progress bar's states."""

from __future__ import annotations

from canfar_jlab.kernel_runner import PROGRESS_REWRITE
from canfar_jlab.logdelta import lines_of


def test_a_runner_progress_bar_prints_as_plain_lines_without_escape_codes():
    log = f"reading\n  0%|\n{PROGRESS_REWRITE} 40%|####\n{PROGRESS_REWRITE}100%|##########\ndone\n"
    assert lines_of(log) == ["reading", "  0%|", " 40%|####", "100%|##########", "done"]
