"""Sizing replicas from what earlier ones used (issue 17): a re-run with more memory asks for
2x the observed peak, a pilot's measurements size the rest of its run (1.5x peak RAM, the cores
it kept busy). Requests are rounded up to the options the service's `/context` offers, and
refused with the reason when even the largest is too small.
"""

from __future__ import annotations

import math

from ..models import Context
from .store import RunError

GB = 10**9  # Skaha's memory options are decimal gigabytes


class TooLarge(RunError):
    """The service offers nothing big enough."""


def round_up(wanted: float, options: list[int], what: str) -> int:
    """The smallest option >= `wanted` (the whole number above `wanted` when the service lists
    no options); TooLarge when every option is smaller."""
    if not options:
        return max(1, math.ceil(wanted))
    fitting = sorted(option for option in options if option >= wanted)
    if not fitting:
        raise TooLarge(
            f"{what}: {wanted:g} needed, but the largest the service offers is {max(options)}"
        )
    return fitting[0]


def ram_for(peak_rss_bytes: int, factor: float, context: Context) -> int:
    """GB of RAM to request for a replica whose tree peaked at `peak_rss_bytes`."""
    wanted = max(peak_rss_bytes, 1) * factor / GB
    return round_up(wanted, context.memory_gb.options, "RAM (GB)")


def cores_for(cpu_seconds: float, wall_seconds: float, context: Context) -> int:
    """Cores to request for a replica that used `cpu_seconds` over `wall_seconds`."""
    busy = cpu_seconds / wall_seconds if wall_seconds > 0 else 1.0
    return round_up(max(busy, 1.0), context.cores.options, "cores")
