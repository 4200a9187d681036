"""The one log-delta logic every follower uses (canfar_jlab.logdelta): what is new in a reply."""

from __future__ import annotations

from canfar_jlab.engine import logcap
from canfar_jlab.logdelta import RESTART_NOTICE, LineCutter, LogCursor, lines_of, unseen


def test_offset_honoured_takes_the_reply_as_is_and_asks_from_the_services_offset():
    cursor = LogCursor()
    assert cursor.advance(b"one\n", 4) == b"one\n"
    assert (cursor.offset, cursor.honoured) == (4, True)
    assert cursor.advance(b"two\n", 8) == b"two\n"
    assert cursor.advance(b"", 8) == b""
    assert cursor.offset == 8


def test_offset_ignored_whole_log_each_time_gives_each_byte_once():
    cursor = LogCursor()
    seen = [cursor.advance(whole, None) for whole in (b"a\n", b"a\nb\n", b"a\nb\n", b"a\nb\nc")]
    assert seen == [b"a\n", b"b\n", b"", b"c"]
    assert (cursor.offset, cursor.honoured) == (5, False)


def test_identical_consecutive_lines_are_each_passed_on():
    cursor, out = LogCursor(), []
    whole = b""
    for _ in range(400):  # longer than the anchor, all of it the same line
        whole += b"same\n"
        out.append(cursor.advance(whole, None))
    assert b"".join(out) == b"same\n" * 400
    assert all(part == b"same\n" for part in out)


def test_a_shrinking_whole_log_says_so_once_and_shows_the_new_log_without_repeating():
    cursor = LogCursor()
    cursor.advance(b"old line 1\nold line 2\n", None)
    restarted = cursor.advance(b"new 1\n", None)
    assert restarted == RESTART_NOTICE + b"new 1\n"
    assert cursor.advance(b"new 1\nnew 2\n", None) == b"new 2\n"


def test_a_rotated_log_that_still_holds_the_seen_tail_continues_after_it():
    lines = [f"line {i}\n".encode() for i in range(200)]
    cursor = LogCursor()
    cursor.advance(b"".join(lines), None)
    rotated = b"".join(lines[150:]) + b"after\n"  # its head dropped; still ends as we saw
    assert cursor.advance(rotated, None) == b"after\n"


def test_a_log_the_service_no_longer_has_is_not_a_restart():
    cursor = LogCursor()
    cursor.advance(b"kept\n", None)
    assert cursor.advance(b"", None) == b""
    assert cursor.advance(b"kept\nmore\n", None) == b"more\n"


def test_the_engines_cap_marker_arrives_once_in_both_modes(tmp_path):
    cap = 4096
    path = tmp_path / "replica.log"
    line = b"x" * 99 + b"\n"
    honoured, whole = LogCursor(), LogCursor()
    got_honoured, got_whole = b"", b""
    for _ in range(60):  # grows well past the cap
        with open(path, "ab") as stream:
            stream.write(line)
        end = logcap.served_size(path.stat().st_size, cap)
        body = logcap.read_served(path, cap, honoured.offset, 1 << 20)
        got_honoured += honoured.advance(body, max(honoured.offset, end))
        got_whole += whole.advance(logcap.read_served(path, cap, 0, 1 << 20), None)
    served = logcap.read_served(path, cap, 0, 1 << 20)
    assert got_honoured == got_whole == served
    assert served.endswith(logcap.marker(cap))
    assert got_whole.count(b"log cap") == 1


def test_a_partial_last_line_is_held_until_its_end_or_the_final_read():
    cutter = LineCutter()
    assert cutter.take(b"done\npart") == "done\n"
    assert cutter.take(b"ial") == ""
    assert cutter.take(b" line\nnext") == "partial line\n"
    assert cutter.take(b"", final=True) == "next"


def test_a_character_split_between_replies_is_decoded_whole():
    cutter = LineCutter()
    data = "café ☕\n".encode()
    assert cutter.take(data[:4]) + cutter.take(data[4:7]) + cutter.take(data[7:]) == "café ☕\n"


def test_lines_end_only_at_newlines_and_carriage_returns():
    assert lines_of("a\r\nb\rc\x0cd\u2028e\n") == ["a", "b", "c\x0cd\u2028e"]
    assert lines_of("same\nsame\n") == ["same", "same"]
    assert lines_of("") == []


def test_an_overlapping_reply_or_frame_is_cut_to_what_was_not_seen():
    assert unseen(10, 6, b"abcdefgh") == b"efgh"
    assert unseen(10, 12, b"xy") == b"xy"  # past what was seen: all of it
    assert unseen(10, 2, b"abc") == b""
    cursor = LogCursor(4)
    assert cursor.advance(b"0123456789", 10) == b"456789"  # a service that resent from 0
