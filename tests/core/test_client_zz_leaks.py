"""Runs last in tests/client: the test token appears in nothing these tests saw.

Each test's log records (canfar_jlab, httpx and httpcore at DEBUG) are collected by the autouse
`watch_for_leaks` fixture, and exception texts and CLI output by the tests themselves; each test
is already checked on its own, and this looks at the whole collection once more.
"""

from __future__ import annotations

import logging

import pytest
from client_support import TEST_TOKEN, LeakWatch


def test_the_watch_catches_a_leak(caplog):
    watch = LeakWatch()
    logging.getLogger("canfar_jlab.test").debug("Authorization: Bearer %s", TEST_TOKEN)
    for record in caplog.records:
        watch.add("log", record.getMessage())
    assert watch.leaked() == [("log", f"Authorization: Bearer {TEST_TOKEN}")]
    caplog.clear()  # this one leak was planted on purpose


def test_no_secret_in_any_log_record_exception_or_cli_output(leaks):
    kinds = leaks.kinds()
    if len(leaks.texts) < 50:
        pytest.skip("run with the other client tests: alone there is nothing to look at")
    assert {"log", "exception", "cli", "client"} <= kinds, kinds
    assert any("httpcore" in kind for kind, _ in leaks.texts), "DEBUG transport logs were watched"
    assert leaks.leaked() == []
