"""Platform stats per Skaha 1.4 and the older shape, and a 503 as "platform metrics unavailable".

Against the Skaha fake on 127.0.0.1 (tests/fake_skaha.py), which serves 1.4's metrics-service
shape by default, the legacy shape with an `instances` block on request, and 503 on request.
"""

from __future__ import annotations

import json

from fake_skaha import LEGACY_STATS, METRICS_DOWN, Status

from canfar_jlab.models import STATS_UNAVAILABLE, PlatformStats, stat_gb
from canfar_jlab.skaha import Unavailable


async def test_skaha_14_stats_are_capacity_and_allocation(fake, make_client):
    async with make_client(fake.url) as client:
        load = await client.platform_load()
    assert load.available and load.warning is None and load.shape == "skaha-1.4"
    assert (load.cores.capacity, load.cores.allocated, load.cores.free) == (96, 12, 84)
    assert (load.ram.capacity, load.ram.allocated, load.ram.free) == (512, 48.5, 463.5)
    assert load.gpus is None and load.instances is None
    assert load.session_max.label == "per-session limit"
    assert load.session_max.cores == 8 and load.session_max.ram_gb == 34.36  # 32 GiB
    shown = load.to_json()
    assert shown["load"]["cores"] == {"capacity": 96, "allocated": 12, "free": 84, "unit": "cores"}
    assert shown["cores"]["cpuCoresAvailable"] == 96  # Skaha's own fields are kept
    assert shown["available"] is True and shown["shape"] == "skaha-1.4"


async def test_the_legacy_shape_keeps_instances_and_calls_max_the_largest_node(fake, make_client):
    fake.stats = LEGACY_STATS
    async with make_client(fake.url) as client:
        load = await client.platform_load()
    assert load.shape == "legacy" and load.instances["headless"] == 7
    assert load.cores.capacity == 64 and load.cores.allocated == 20.5
    assert load.ram.capacity == 251.6 and load.ram.free == 171.6
    assert load.session_max.label == "largest node" and load.session_max.cores == 32


def test_gpu_block_and_memory_units():
    stats = PlatformStats.model_validate(
        {"cores": {}, "ram": {}, "gpu": {"requestedGPU": 1, "gpuAvailable": 4}}
    )
    load = stats.load()
    assert (load.gpus.capacity, load.gpus.free) == (4, 3)
    assert load.cores.capacity is None and load.cores.free is None
    assert [stat_gb(v) for v in ("1234.5G", "32Gi", "2T", "0G", "", "x")] == [
        1234.5,
        34.36,
        2000.0,
        0.0,
        None,
        None,
    ]


async def test_503_is_platform_metrics_unavailable_at_once_not_an_error(fake, make_client):
    fake.fail_next("GET stats", Status(503, METRICS_DOWN, {"Retry-After": "20"}))
    async with make_client(fake.url) as client:
        load = await client.platform_load()
        assert load.available is False
        assert load.warning == f"{STATS_UNAVAILABLE} (temporarily unavailable)"
        assert load.to_json()["load"] is None
        assert len(fake.recorded("GET", "/session")) == 1  # not retried: the next poll is
        # Other failures stay errors of the call.
        for _ in range(3):
            fake.fail_next("GET stats", Status(502, "bad gateway"))
        try:
            await client.platform_load()
        except Unavailable as exc:
            assert exc.status == 502
        else:
            raise AssertionError("a 502 is not a metrics warning")


async def test_interactive_view_lists_only_non_headless_sessions(fake, make_client):
    fake.add_session("batch-1")
    lab = fake.add_session("lab", type="notebook")
    async with make_client(fake.url) as client:
        listed = await client.list_sessions(type="headless", view="interactive")
    assert [s.id for s in listed] == [lab]
    request = fake.recorded("GET", "/session")[-1]
    assert dict(request.query) == {"view": "interactive"}  # Skaha ignores type with this view


def test_cli_stats_labels_and_503_warning(cli_fake, fake):
    shown = cli_fake("stats")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "cores:    12 allocated of 96 capacity (84 free at most)",
        "ram (GB): 48.5 allocated of 512 capacity (463.5 free at most)",
        "per-session limit: 8 cores, 34.36 GB RAM",
    ]
    fake.fail_next("GET stats", Status(503, METRICS_DOWN))
    down = cli_fake("stats")
    assert (down.returncode, down.stdout) == (0, "")
    assert down.stderr.strip() == "warning: platform metrics unavailable (temporarily unavailable)"
    fake.fail_next("GET stats", Status(503, METRICS_DOWN))
    as_json = json.loads(cli_fake("stats", "--json").stdout)
    assert as_json == {
        "available": False,
        "warning": "platform metrics unavailable (temporarily unavailable)",
        "shape": None,
        "load": None,
    }


def test_magic_shows_the_labels_and_the_warning():
    from fake_skaha import SKAHA_14_STATS

    from canfar_jlab.magic.views import Note, stats_table
    from canfar_jlab.models import PlatformLoad

    table = stats_table(PlatformStats.model_validate(SKAHA_14_STATS).load())
    assert list(table.columns) == ["RESOURCE", "ALLOCATED", "CAPACITY", "FREE AT MOST"]
    assert "per-session limit: 8 cores" in repr(table)
    note = stats_table(PlatformLoad.unavailable("temporarily unavailable"))
    assert isinstance(note, Note)
    assert repr(note) == "warning: platform metrics unavailable (temporarily unavailable)"
