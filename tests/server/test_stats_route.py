"""REST `GET canfar-jlab/stats` against a Skaha 1.4 look-alike on 127.0.0.1: labelled figures,
and a 503 from the metrics backend as a warning (200, `available: false`), never an error."""

from __future__ import annotations

import json

import pytest
from fake_skaha import LEGACY_STATS, METRICS_DOWN, Status
from server_config import server_config


@pytest.fixture
def jp_server_config(jp_server_config):
    return server_config({"request_timeout": 2.0})


async def _stats(jp_fetch) -> dict:
    response = await jp_fetch("canfar-jlab", "stats")
    assert response.code == 200
    return json.loads(response.body)


async def test_stats_are_labelled_capacity_and_allocated(jp_fetch, skaha):
    stats = await _stats(jp_fetch)
    assert stats["available"] is True and stats["warning"] is None
    assert stats["shape"] == "skaha-1.4"
    load = stats["load"]
    assert load["cores"] == {"capacity": 96.0, "allocated": 12.0, "free": 84.0, "unit": "cores"}
    assert load["ram"] == {"capacity": 512.0, "allocated": 48.5, "free": 463.5, "unit": "GB"}
    assert load["gpus"] is None and load["instances"] is None
    assert load["session_max"] == {"label": "per-session limit", "cores": 8.0, "ram_gb": 34.36}
    assert stats["cores"]["requestedCPUCores"] == 12.0  # Skaha's own fields, as before

    skaha.stats = LEGACY_STATS
    legacy = await _stats(jp_fetch)
    assert legacy["shape"] == "legacy" and legacy["load"]["session_max"]["label"] == "largest node"
    assert legacy["load"]["instances"]["total"] == 11


async def test_metrics_down_is_a_warning_not_an_error(jp_fetch, skaha):
    skaha.fail_next("GET stats", Status(503, METRICS_DOWN, {"Retry-After": "30"}))
    stats = await _stats(jp_fetch)
    assert stats == {
        "available": False,
        "warning": "platform metrics unavailable (temporarily unavailable)",
        "shape": None,
        "load": None,
    }
    # The next poll sees the metrics back.
    assert (await _stats(jp_fetch))["available"] is True
