"""What the magic shows: tables and notes that render as HTML in a notebook and as plain text
anywhere else.

Each view is displayed with `IPython.display.display`, which sends both `text/html`
(`_repr_html_`) and `text/plain` (`__repr__`): a notebook shows the table, a terminal IPython
or a log shows aligned text. Every value is escaped with `html.escape` (session names, images,
errors and notebook paths come from users and services, never trusted as markup).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..models import Context, Image, PlatformLoad, ReplicaOutcome, Run, Session

_TABLE_STYLE = "border-collapse: collapse; text-align: left; font-size: var(--jp-ui-font-size1);"
_CELL_STYLE = "padding: 2px 8px; text-align: left; vertical-align: top;"


@dataclass
class Note:
    """One line (or a few) of text."""

    text: str

    def _repr_html_(self) -> str:
        return f'<p style="margin: 4px 0;">{html.escape(self.text)}</p>'

    def __repr__(self) -> str:
        return self.text


@dataclass
class Table:
    """Rows of text under column headings, with an optional title and a line when empty."""

    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    title: str | None = None
    empty: str = "(none)"

    def _repr_html_(self) -> str:
        parts = []
        if self.title:
            parts.append(f"<strong>{html.escape(self.title)}</strong>")
        if not self.rows:
            parts.append(f"<p><em>{html.escape(self.empty)}</em></p>")
            return "\n".join(parts)
        head = "".join(f'<th style="{_CELL_STYLE}">{html.escape(c)}</th>' for c in self.columns)
        body = "\n".join(
            "<tr>"
            + "".join(f'<td style="{_CELL_STYLE}">{html.escape(str(c))}</td>' for c in row)
            + "</tr>"
            for row in self.rows
        )
        parts.append(
            f'<table class="canfar-jlab" style="{_TABLE_STYLE}">'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"
        )
        return "\n".join(parts)

    def __repr__(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            return "\n".join([*lines, self.empty])
        rows = [list(self.columns), *([str(c) for c in row] for row in self.rows)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        return "\n".join(lines)


@dataclass
class Report:
    """Several views shown as one output."""

    parts: list[Note | Table]

    def _repr_html_(self) -> str:
        return "\n".join(part._repr_html_() for part in self.parts)

    def __repr__(self) -> str:
        return "\n\n".join(repr(part) for part in self.parts)


# ------------------------------------------------------------------ builders


def when(stamp: datetime | None) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def counts_text(run: Run) -> str:
    """`2 Running, 1 Completed`."""
    return ", ".join(f"{count} {status}" for status, count in run.counts.items())


def runs_table(runs: Sequence[Run], title: str = "Runs") -> Table:
    rows = [
        (
            run.name,
            run.state,
            counts_text(run),
            when(run.created),
            run.spec.image,
            run.notebook,
        )
        for run in runs
    ]
    columns = ("RUN", "STATE", "REPLICAS", "CREATED (UTC)", "IMAGE", "NOTEBOOK")
    return Table(columns, rows, title=title, empty="no runs")


def replicas_table(run: Run) -> Table:
    rows = [
        (
            str(r.index or "reduce"),
            r.name,
            r.session_id or "-",
            r.status.value,
            str(r.attempt_count),
            when(r.started),
            when(r.ended),
            r.log or "-",
            r.error or r.reason or "",  # a Waiting replica's reason (issue 17)
        )
        for r in run.steps  # the reduce step last, once it exists (issue 17)
    ]
    columns = ("REPLICA", "SESSION", "ID", "STATUS", "TRIES", "STARTED", "ENDED", "LOG", "ERROR")
    return Table(columns, rows, title=f"Run {run.name}: {run.state} ({counts_text(run)})")


def run_report(run: Run, headline: str, hint: str | None = None) -> Report:
    parts: list[Note | Table] = [Note(headline)]
    parts += [Note(warning) for warning in run.warnings]  # shown, not refused (issue 12)
    parts.append(replicas_table(run))
    parts.append(Note(f"folder: {run.folder}"))
    executed = sorted(str(p) for p in Path(run.folder).glob("replicas/*/executed.ipynb"))
    parts += [Note("executed notebooks: " + ", ".join(executed))] if executed else []
    if hint:
        parts.append(Note(hint))
    return Report(parts)


def sessions_table(
    sessions: Iterable[Session], title: str = "Sessions", owners: dict[str, str] | None = None
) -> Table:
    owners = owners or {}
    rows = [
        (
            s.id,
            s.name or "-",
            s.status.value,
            owners.get(s.id, "-"),
            when(s.start_time),
            figure(s.cores_in_use),
            figure(s.ram_in_use_gb),
            s.image or "-",
        )
        for s in sessions
    ]
    columns = ("ID", "NAME", "STATUS", "RUN", "STARTED (UTC)", "CPU", "RAM GB", "IMAGE")
    return Table(columns, rows, title=title, empty="no sessions")


def outcomes_table(outcomes: Sequence[ReplicaOutcome], title: str) -> Table:
    rows = [
        (str(o.index), o.name, o.session_id or "-", "created" if o.ok else (o.error or "failed"))
        for o in outcomes
    ]
    return Table(("REPLICA", "SESSION", "ID", "OUTCOME"), rows, title=title)


def images_table(images: Sequence[Image]) -> Table:
    rows = [(image.id, ", ".join(sorted(image.types)) or "-") for image in images]
    return Table(("IMAGE", "TYPES"), rows, title="Images", empty="no images")


def stats_table(load: PlatformLoad) -> Table | Note:
    if not load.available:
        return Note(f"warning: {load.warning}")
    table = Table(
        ("RESOURCE", "ALLOCATED", "CAPACITY", "FREE AT MOST"), load.rows(), title="Platform load"
    )
    more = load.session_max_text()
    if more:
        table.title = f"Platform load ({more})"
    return table


def context_table(context: Context) -> Table:
    rows = []
    for label, options in (
        ("cores", context.cores),
        ("ram (GB)", context.memory_gb),
        ("gpus", context.gpus),
    ):
        rows.append(
            (
                label,
                figure(options.default),
                figure(options.default_request),
                figure(options.default_limit),
                " ".join(str(o) for o in options.options) or "-",
            )
        )
    table = Table(("RESOURCE", "DEFAULT", "REQUEST", "LIMIT", "CHOICES"), rows, title="Context")
    if context.max_interactive_sessions is not None:
        table.title = f"Context (at most {context.max_interactive_sessions} interactive sessions)"
    return table
