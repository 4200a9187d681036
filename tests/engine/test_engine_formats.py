"""Pure functions behind the wire formats, the log cap and the settings (no engine needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from canfar_jlab.engine import logcap
from canfar_jlab.engine.config import parse_duration, parse_size
from canfar_jlab.engine.ids import SESSION_ID, new_session_id
from canfar_jlab.engine.params import java_double
from canfar_jlab.engine.procs import is_alive, start_time
from canfar_jlab.engine.wire import (
    core_quantity,
    events_table,
    gigabytes,
    instant,
    offset_datetime,
    platform_gigabytes,
)

JAN_1_10H = 1767261600  # 2026-01-01T10:00:00Z


def test_times_as_java_prints_them() -> None:
    assert offset_datetime(JAN_1_10H) == "2026-01-01T10:00Z"  # OffsetDateTime drops :00
    assert offset_datetime(JAN_1_10H + 5.9) == "2026-01-01T10:00:05Z"
    assert instant(JAN_1_10H) == "2026-01-01T10:00:00Z"  # Instant keeps them


def test_resource_strings() -> None:
    assert gigabytes(8 * 2**30) == "8.59"
    assert gigabytes(0) == "0.00"
    assert platform_gigabytes(1234.5e9) == "1234.5G"
    assert platform_gigabytes(4500e9) == "4500G"
    assert platform_gigabytes(0) == "0G"
    assert core_quantity(2.0) == "2"
    assert core_quantity(0.5) == "0.500"


def test_events_table_layout() -> None:
    from canfar_jlab.engine.records import Event

    assert events_table([]) == "<none>\n"
    text = events_table([Event("Normal", "Started", "Started x", JAN_1_10H)])
    header, row = text.splitlines()
    assert header.split() == ["TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME"]
    assert row.startswith("Normal   Started   Started x")
    assert row.endswith("2026-01-01T10:00:00Z   2026-01-01T10:00:00Z")


def test_session_ids() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200 and all(SESSION_ID.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", 2.0),
        (" 2.7 ", 2.7),
        ("2d", 2.0),
        ("4F", 4.0),
        ("1e1", 10.0),
        ("NaN", None),
        ("Infinity", None),
        ("1_0", None),
        ("", None),
        ("two", None),
    ],
)
def test_java_double(text: str, value: float | None) -> None:
    assert java_double(text) == value


def test_sizes_and_durations() -> None:
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size("512k") == 512 * 1024
    assert parse_size(4096) == 4096
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("30s") == 30 and parse_duration(1.5) == 1.5
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_log_cap_serves_the_head_and_one_marker(tmp_path: Path) -> None:
    path = tmp_path / "log"
    cap = 10
    mark = logcap.marker(cap)
    path.write_bytes(b"0123456789ABCDEF")  # past the cap, not cut yet
    served = b"0123456789" + mark
    assert logcap.served_size(path.stat().st_size, cap) == len(served)
    assert logcap.read_served(path, cap, 0, 1 << 20) == served
    for offset in (3, 10, 12, len(served) - 1, len(served)):
        assert logcap.read_served(path, cap, offset, 1 << 20) == served[offset:]
    assert logcap.read_served(path, cap, 8, 4) == served[8:12]
    assert logcap.read_served(tmp_path / "missing", cap, 0, 10) == b""


def test_process_identity() -> None:
    me = os.getpid()
    token = start_time(me)
    assert token is not None and is_alive(me, token)
    assert not is_alive(me, token + 1)  # same pid, another start: a reused pid
    assert not is_alive(None, token) and start_time(2**22 + 1) is None
