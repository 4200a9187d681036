"""Skaha's wire formats: session JSON, times, resource strings, stats, context, events, VOSI.

Field names, order and formats follow shared/docs/skaha-api.md §3 and §5 (Skaha v1).
"""

from __future__ import annotations

import functools
import signal
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.sax.saxutils import escape

from .config import EngineConfig
from .records import GIB, Event, SessionRecord

VOSI_AVAILABILITY_NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
SESSION_STANDARD = "http://www.opencadc.org/std/platform#session-1"
LEGACY_SESSION_STANDARD = "vos://cadc.nrc.ca~vospace/CADC/std/Proc#sessions-1.0"


@dataclass(frozen=True)
class Identity:
    """Who owns the sessions (the OS user running the engine) and where the API answers."""

    username: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    hostname: str


@dataclass(frozen=True)
class Usage:
    """Live use of one replica's process tree."""

    cores: float
    ram_bytes: int


def offset_datetime(ts: float) -> str:
    """Java `OffsetDateTime.toString()` at second precision: seconds left out when zero."""
    return _offset_datetime(int(ts))


def instant(ts: float) -> str:
    """Java `Instant.toString()` at second precision (seconds always present)."""
    return _instant(int(ts))


@functools.lru_cache(maxsize=8192)  # listings format the same few seconds over and over
def _offset_datetime(seconds: int) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    if moment.second == 0:
        return moment.strftime("%Y-%m-%dT%H:%MZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=8192)
def _instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value: float, places: str) -> str:
    return str(Decimal(repr(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def gigabytes(num_bytes: float) -> str:
    """Decimal GB with two decimals, no unit (`8Gi` gives `8.59`)."""
    return _decimal(num_bytes / 1e9, "0.01")


def platform_gigabytes(num_bytes: float) -> str:
    """Stats RAM: decimal GB with at most three decimals and a `G` unit (`"1234.5G"`)."""
    text = _decimal(num_bytes / 1e9, "0.001").rstrip("0").rstrip(".")
    return f"{text or '0'}G"


def core_quantity(cores: float) -> str:
    """A CPU request as Skaha prints it: `"2"`, or millicores as `"0.500"`."""
    return str(int(cores)) if float(cores).is_integer() else _decimal(cores, "0.001")


def wire_session(rec: SessionRecord, ident: Identity, usage: Usage | None) -> dict[str, Any]:
    """One Skaha Session object, fields in Skaha's order, null fields left out."""
    out: dict[str, Any] = {
        "id": rec.id,
        "userid": rec.userid,
        "runAsUID": str(ident.uid),
        "runAsGID": str(ident.gid),
        "supplementalGroups": list(ident.groups),
        "image": rec.image,
        "type": rec.type,
        "status": rec.status,
        "name": rec.name,
    }
    if rec.started is not None:
        out["startTime"] = offset_datetime(rec.started)
        out["expiryTime"] = instant(rec.started + rec.deadline)
    out["connectURL"] = ""
    if rec.fixed:
        out["requestedRAM"] = gigabytes((rec.ram or 0) * GIB)
        out["requestedCPUCores"] = core_quantity(
            rec.cores if rec.cores is not None else rec.alloc_cores
        )
    out["requestedGPUCores"] = str(rec.gpus or 0)
    if usage is not None:
        out["ramInUse"] = gigabytes(usage.ram_bytes)
        out["cpuCoresInUse"] = _decimal(usage.cores, "0.001")
    out["isFixedResources"] = rec.fixed
    return out


def public_wire_session(rec: SessionRecord) -> dict[str, Any]:
    """`view=all`: the reduced public fields."""
    out: dict[str, Any] = {"userid": rec.userid, "type": rec.type, "status": rec.status}
    if rec.started is not None:
        out["startTime"] = offset_datetime(rec.started)
    return out


def context_json(config: EngineConfig) -> dict[str, Any]:
    """`/context`: options are what this machine (or the configured capacity) can hold."""
    cores, memory = config.cores, config.memory_gb
    return {
        "cores": {
            "default": min(2, cores),
            "defaultRequest": 1,
            "defaultLimit": cores,
            "options": list(range(1, cores + 1)),
        },
        "memoryGB": {
            "default": min(8, memory),
            "defaultRequest": min(4, memory),
            "defaultLimit": memory,
            "options": list(range(1, memory + 1)),
        },
        "gpus": {"options": []},
        # Interactive sessions (notebook, desktop, ...) are not run locally.
        "maxInteractiveSessions": 0,
    }


def stats_json(config: EngineConfig, cores_in_use: int, ram_in_use: int) -> dict[str, Any]:
    """`view=stats`: allocation against this engine's capacity."""
    return {
        "cores": {
            "requestedCPUCores": float(cores_in_use),
            "cpuCoresAvailable": float(config.cores),
            "maxCPUCores": {"cpuCores": float(config.cores), "withRam": f"{config.memory_gb}Gi"},
        },
        "ram": {
            "requestedRAM": platform_gigabytes(ram_in_use),
            "ramAvailable": platform_gigabytes(config.memory_bytes),
            "maxRAM": {"ram": f"{config.memory_gb}Gi", "withCPUCores": float(config.cores)},
        },
    }


def events_table(events: list[Event]) -> str:
    """kubectl's column layout: TYPE REASON MESSAGE FIRST-TIME LAST-TIME, or `<none>`."""
    if not events:
        return "<none>\n"
    rows = [("TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME")]
    rows += [(e.type, e.reason, e.message, instant(e.first), instant(e.last)) for e in events]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "   " + row[4]
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def describe_exit(code: int | None, sig: int | None) -> str:
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"Process was killed by signal {sig} ({name})"
    return f"Process exited with code {code}"


def capabilities_xml(base: str) -> str:
    """VOSI capabilities that canfar's discovery reads: a `platform#session-1` interface with a
    token security method, plus the legacy v0 one."""
    base = escape(base)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" \
xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface xsi:type="vs:ParamHTTP" role="std">
      <accessURL use="full">{base}/capabilities</accessURL>
    </interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#availability">
    <interface xsi:type="vs:ParamHTTP" role="std">
      <accessURL use="full">{base}/availability</accessURL>
    </interface>
  </capability>
  <capability standardID="{SESSION_STANDARD}">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.0">
      <accessURL use="base">{base}/v1/session</accessURL>
      <securityMethod standardID="ivo://ivoa.net/sso#token"/>
    </interface>
  </capability>
  <capability standardID="{LEGACY_SESSION_STANDARD}">
    <interface xsi:type="vs:ParamHTTP" role="std" version="0.1">
      <accessURL use="base">{base}/v0/session</accessURL>
      <securityMethod standardID="ivo://ivoa.net/sso#token"/>
    </interface>
  </capability>
</vosi:capabilities>
"""


def availability_xml(available: bool, note: str) -> str:
    flag = "true" if available else "false"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:availability xmlns:vosi="{VOSI_AVAILABILITY_NS}">\n'
        f"  <vosi:available>{flag}</vosi:available>\n"
        f"  <vosi:note>{escape(note)}</vosi:note>\n"
        "</vosi:availability>\n"
    )
