"""Skaha's wire: pydantic models for what travels to and from a Skaha v1 session service.

Parsing is lenient where Skaha is inconsistent (v0 and v1 shapes, optional resource fields,
odd timestamps) and strict where we send (a `SessionSpec` is checked before anything leaves).
Python attribute names are snake_case; the wire names are their aliases, and `model_dump()`
gives the wire names back (see `shared/docs/skaha-api.md` §3, §5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .. import statuses

# Skaha stores names lower-cased and uses them as DNS labels (hostname, pod label).
SESSION_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Kubernetes' rule for environment variable names (C identifiers plus '.' and '-').
ENV_NAME_PATTERN = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# Skaha pastes cmd/args/env into a YAML template with Java String.replaceAll: `$` is a regex group
# reference and `"` or `\` break the quoting (skaha-api.md §2.1).
UNSAFE_CHARS = ("$", '"', "\\")


def unsafe_char(value: str, *, whitespace: bool = False, equals: bool = False) -> str | None:
    """The first character of `value` that Skaha cannot pass to a replica, as a message shows
    it ("a space", "'$'"), or None: always UNSAFE_CHARS; whitespace too where Skaha splits on
    spaces (args, paths in them); `=` too in env values (Skaha drops `KEY=a=b`). The one check
    for session specs, exported paths and the runs folder."""
    for ch in value:
        if ch in UNSAFE_CHARS or (whitespace and ch.isspace()) or (equals and ch == "="):
            return "a space" if ch == " " else repr(ch)
    return None


SESSION_TYPES = (
    "headless",
    "notebook",
    "desktop",
    "carta",
    "firefly",
    "contributed",
    "desktop-app",
)
MAX_REPLICAS = 256
# What a replica can be started with, checked before anything is created (the OS refuses more
# than ~2 MiB of argv + environment, 128 KiB per string; registries refuse longer image names).
MAX_ENV_COUNT = 256
MAX_ENV_BYTES = 64 * 1024
MAX_ARGS_BYTES = 64 * 1024
MAX_IMAGE_LENGTH = 512
MAX_PARAMETERS_DEPTH = 16
MAX_PARAMETERS_BYTES = 256 * 1024

_WIRE = ConfigDict(
    extra="allow",
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class SessionStatus(str, Enum):
    """Skaha v1 status names; v0's pod phases are mapped onto them."""

    PENDING = "Pending"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    COMPLETED = "Completed"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @property
    def is_terminal(self) -> bool:
        return self.value in statuses.SESSION_ENDED

    @property
    def is_active(self) -> bool:
        return self.value in statuses.SESSION_ACTIVE

    @property
    def is_live(self) -> bool:
        """The session exists on the service (Terminating included)."""
        return self.value in statuses.SESSION_LIVE

    @classmethod
    def parse(cls, value: object) -> SessionStatus:
        """Case-insensitive; `Succeeded` -> Completed, `Error` -> Failed; anything else Unknown."""
        if isinstance(value, SessionStatus):
            return value
        text = str(value or "").strip().lower()
        text = {"succeeded": "completed", "error": "failed"}.get(text, text)
        for member in cls:
            if member.value.lower() == text:
                return member
        return cls.UNKNOWN

    def __str__(self) -> str:
        return self.value


def parse_timestamp(value: object) -> datetime | None:
    """Skaha's timestamps as an aware UTC datetime, or None when absent or unreadable.

    Accepts Java's `OffsetDateTime.toString()` (seconds left out when zero: `2025-03-05T21:48Z`),
    `Instant.toString()`, fractions of any length, `+HH:MM`/`+HHMM` offsets, and naive times (UTC).
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value.strip())
    if not match:
        return None
    date, hour, minute, second, fraction, zone = match.groups()
    try:
        year, month, day = (int(part) for part in date.split("-"))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        tz = timezone.utc
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))
        stamp = datetime(year, month, day, int(hour), int(minute), int(second or 0), micro, tz)
    except ValueError:
        return None
    return stamp.astimezone(timezone.utc)


_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)

_MEMORY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]i?|[kmgtp]i?)?[Bb]?\s*$")
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


def normalise_memory(value: str) -> str:
    """A session memory figure in v1's form: decimal GB, 2 decimals, no unit.

    v0 printed Kubernetes quantities with the `i` cut off (`"16G"` was `16Gi`), so a bare unit
    letter is read as binary here; `"8.59"` (already v1) passes through unchanged.
    """
    match = _MEMORY.match(value)
    if not match:
        return value
    number, unit = match.groups()
    if not unit:
        return value.strip()
    return f"{float(number) * _BINARY[unit[0].upper()] / 1e9:.2f}"


def _as_float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class Session(BaseModel):
    """One entry of `GET /session` or the reply of `GET /session/{id}`.

    Only `id` is required. Resource figures stay strings as Skaha sends them (v0's `"16G"` is
    rewritten to v1's decimal-GB string); the `*_gb` / `*_cores` properties give numbers.
    """

    model_config = _WIRE

    id: str
    userid: str | None = None
    run_as_uid: str | None = Field(default=None, alias="runAsUID")
    run_as_gid: str | None = Field(default=None, alias="runAsGID")
    supplemental_groups: list[int] = Field(default_factory=list, alias="supplementalGroups")
    appid: str | None = None
    image: str | None = None
    type: str | None = None
    status: SessionStatus = SessionStatus.UNKNOWN
    name: str | None = None
    start_time: datetime | None = Field(default=None, alias="startTime")
    expiry_time: datetime | None = Field(default=None, alias="expiryTime")
    connect_url: str | None = Field(default=None, alias="connectURL")
    requested_ram: str | None = Field(default=None, alias="requestedRAM")
    requested_cpu_cores: str | None = Field(default=None, alias="requestedCPUCores")
    requested_gpu_cores: str | None = Field(default=None, alias="requestedGPUCores")
    ram_in_use: str | None = Field(default=None, alias="ramInUse")
    cpu_cores_in_use: str | None = Field(default=None, alias="cpuCoresInUse")
    gpu_ram_in_use: str | None = Field(default=None, alias="gpuRAMInUse")
    gpu_utilization: str | None = Field(default=None, alias="gpuUtilization")
    is_fixed_resources: bool | None = Field(default=None, alias="isFixedResources")

    @model_validator(mode="before")
    @classmethod
    def _v0_placeholders(cls, data: Any) -> Any:
        # v0 filled missing columns with the literal "<none>".
        if isinstance(data, dict):
            return {k: (None if v == "<none>" else v) for k, v in data.items()}
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id_present(cls, value: Any) -> Any:
        if value is None or not str(value).strip():
            raise ValueError("a session needs an id")
        return str(value).strip()

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> SessionStatus:
        return SessionStatus.parse(value)

    @field_validator("start_time", "expiry_time", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime | None:
        return parse_timestamp(value)

    @field_validator("supplemental_groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> list[int]:
        if not isinstance(value, list):
            return []
        groups = []
        for item in value:
            try:
                groups.append(int(item))
            except (TypeError, ValueError):
                continue
        return groups

    @field_validator(
        "userid",
        "run_as_uid",
        "run_as_gid",
        "appid",
        "image",
        "type",
        "name",
        "connect_url",
        "requested_cpu_cores",
        "requested_gpu_cores",
        "cpu_cores_in_use",
        "gpu_utilization",
        mode="before",
    )
    @classmethod
    def _text(cls, value: Any) -> str | None:
        if value is None:
            return None
        if value == "not-applicable":  # v0 headless connectURL
            return ""
        return str(value)

    @field_validator("requested_ram", "ram_in_use", "gpu_ram_in_use", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str | None:
        return None if value is None else normalise_memory(str(value))

    @field_validator("is_fixed_resources", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool | None:
        if isinstance(value, str):
            return {"true": True, "false": False}.get(value.strip().lower())
        return value

    @property
    def requested_ram_gb(self) -> float | None:
        return _as_float(self.requested_ram)

    @property
    def ram_in_use_gb(self) -> float | None:
        return _as_float(self.ram_in_use)

    @property
    def requested_cores(self) -> float | None:
        return _as_float(self.requested_cpu_cores)

    @property
    def cores_in_use(self) -> float | None:
        return _as_float(self.cpu_cores_in_use)


class Image(BaseModel):
    """One entry of `GET /image`."""

    model_config = _WIRE

    id: str
    types: list[str] = Field(default_factory=list)
    digest: str | None = None


class ResourceOptions(BaseModel):
    """`cores`, `memoryGB` or `gpus` in `GET /context`."""

    model_config = _WIRE

    default: float | None = None
    default_request: float | None = Field(default=None, alias="defaultRequest")
    default_limit: float | None = Field(default=None, alias="defaultLimit")
    options: list[int] = Field(default_factory=list)


class Context(BaseModel):
    """`GET /context`: which cores, RAM (GB) and GPU counts a session may ask for."""

    model_config = _WIRE

    cores: ResourceOptions = Field(default_factory=ResourceOptions)
    memory_gb: ResourceOptions = Field(default_factory=ResourceOptions, alias="memoryGB")
    gpus: ResourceOptions = Field(default_factory=ResourceOptions)
    # The Helm file template renders this as a string ("5"), LimitRange mode as an integer.
    max_interactive_sessions: int | None = Field(default=None, alias="maxInteractiveSessions")

    @field_validator("max_interactive_sessions", mode="before")
    @classmethod
    def _int_or_text(cls, value: Any) -> int | None:
        try:
            return int(str(value).strip()) if value not in (None, "") else None
        except ValueError:
            return None


class MaxCores(BaseModel):
    model_config = _WIRE

    cpu_cores: float | None = Field(default=None, alias="cpuCores")
    with_ram: str | None = Field(default=None, alias="withRam")


class MaxRam(BaseModel):
    model_config = _WIRE

    ram: str | None = None
    with_cpu_cores: float | None = Field(default=None, alias="withCPUCores")


class CoreStats(BaseModel):
    model_config = _WIRE

    requested_cpu_cores: float | None = Field(default=None, alias="requestedCPUCores")
    cpu_cores_available: float | None = Field(default=None, alias="cpuCoresAvailable")
    max_cpu_cores: MaxCores | None = Field(default=None, alias="maxCPUCores")


class RamStats(BaseModel):
    model_config = _WIRE

    requested_ram: str | None = Field(default=None, alias="requestedRAM")
    ram_available: str | None = Field(default=None, alias="ramAvailable")
    max_ram: MaxRam | None = Field(default=None, alias="maxRAM")


class GpuStats(BaseModel):
    model_config = _WIRE

    requested_gpu: float | None = Field(default=None, alias="requestedGPU")
    gpu_available: float | None = Field(default=None, alias="gpuAvailable")


class PlatformStats(BaseModel):
    """`GET /session?view=stats`: platform-wide allocation and capacity (skaha-api.md §5.1)."""

    model_config = _WIRE

    cores: CoreStats = Field(default_factory=CoreStats)
    ram: RamStats = Field(default_factory=RamStats)
    gpu: GpuStats | None = None
    instances: dict[str, int] | None = None  # v0 only

    def load(self) -> PlatformLoad:
        """The figures labelled by what they mean (skaha-api.md §5.1, §10).

        In every Skaha version read, `*Available` is the cluster's capacity (summed node or Kueue
        capacity) and `requested*` what sessions have allocated, so free is capacity - allocated
        at best. Only the `max*` block changed meaning: the largest node before Skaha 1.1.4 (the
        shape that still has `instances`), the per-session ceiling since (1.4's metrics service).
        """
        legacy = self.instances is not None
        cores = _figures(self.cores.cpu_cores_available, self.cores.requested_cpu_cores, "cores")
        ram = _figures(stat_gb(self.ram.ram_available), stat_gb(self.ram.requested_ram), "GB")
        gpus = None
        if self.gpu is not None:
            gpus = _figures(self.gpu.gpu_available, self.gpu.requested_gpu, "gpus")
        largest = self.cores.max_cpu_cores
        max_ram = self.ram.max_ram
        most_cores = largest.cpu_cores if largest else None
        most_ram = max_ram.ram if max_ram else None
        if most_cores is None and max_ram is not None:
            most_cores = max_ram.with_cpu_cores
        if most_ram is None and largest is not None:
            most_ram = largest.with_ram
        return PlatformLoad(
            available=True,
            shape="legacy" if legacy else "skaha-1.4",
            cores=cores,
            ram=ram,
            gpus=gpus,
            session_max=SessionMax(
                label="largest node" if legacy else "per-session limit",
                cores=largest.cpu_cores
                if largest
                else (max_ram.with_cpu_cores if max_ram else None),
                ram_gb=stat_gb(max_ram.ram if max_ram else (largest.with_ram if largest else None)),
            )
            if largest is not None or max_ram is not None
            else None,
            instances=self.instances,
            raw=self,
        )


STATS_UNAVAILABLE = "platform metrics unavailable"


class LoadFigures(BaseModel):
    """One resource of the platform: what it has, what sessions hold, what may be left."""

    capacity: float | None = None
    allocated: float | None = None
    free: float | None = Field(default=None, description="capacity - allocated, at best")
    unit: str


class SessionMax(BaseModel):
    """The `max*` block: a per-session ceiling (Skaha 1.4) or the largest node (older)."""

    label: str
    cores: float | None = None
    ram_gb: float | None = None


class PlatformLoad(BaseModel):
    """What every door shows for `view=stats` (REST `stats`, CLI `stats --json`, magic).

    `available` is False, with `warning` saying why, when the service answered 503 ("platform
    metrics unavailable"): a warning, never an error of a run or of the panel.
    """

    available: bool
    warning: str | None = None
    shape: str | None = None  # "skaha-1.4" (no instances block) or "legacy" (v0, instances)
    cores: LoadFigures | None = None
    ram: LoadFigures | None = None
    gpus: LoadFigures | None = None
    session_max: SessionMax | None = None
    instances: dict[str, int] | None = None
    raw: PlatformStats | None = Field(default=None, exclude=True)

    @classmethod
    def unavailable(cls, detail: str = "") -> PlatformLoad:
        said = f" ({detail})" if detail else ""
        return cls(available=False, warning=f"{STATS_UNAVAILABLE}{said}")

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(resource, allocated, capacity, free at most) as text, for the CLI and the magic."""
        rows = []
        for label, figures in (("cores", self.cores), ("ram (GB)", self.ram), ("gpus", self.gpus)):
            if figures is not None:
                rows.append(
                    (
                        label,
                        _shown(figures.allocated),
                        _shown(figures.capacity),
                        _shown(figures.free),
                    )
                )
        return rows

    def session_max_text(self) -> str | None:
        """`per-session limit: 8 cores, 34.36 GB RAM` (or `largest node: ...`), if known."""
        most = self.session_max
        if most is None:
            return None
        return f"{most.label}: {_shown(most.cores)} cores, {_shown(most.ram_gb)} GB RAM"

    def to_json(self) -> dict[str, Any]:
        """The stats JSON of REST `GET stats` and `canfar-jlab stats --json`:
        `available`, `warning`, `shape`, `load` (labelled figures, or null when unavailable),
        and Skaha's own fields (`cores`, `ram`, optional `gpu`/`instances`) as sent."""
        wire = self.raw.model_dump(mode="json", exclude_none=True) if self.raw else {}
        load = self.model_dump(mode="json", exclude={"available", "warning", "shape", "raw"})
        return {
            **wire,
            "available": self.available,
            "warning": self.warning,
            "shape": self.shape,
            "load": load if self.available else None,
        }


_STAT_MEMORY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]i?)?B?\s*$", re.IGNORECASE)
_DECIMAL = {"K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3, "P": 1e6}


def stat_gb(value: str | None) -> float | None:
    """A stats memory figure in decimal GB: Skaha prints `"1234.5G"` (decimal) or `"32Gi"`."""
    match = _STAT_MEMORY.match(value or "")
    if not match:
        return None
    number, unit = float(match.group(1)), (match.group(2) or "G")
    if unit.lower().endswith("i"):
        return round(number * _BINARY[unit[0].upper()] / 1e9, 3)
    return round(number * _DECIMAL[unit[0].upper()], 3)


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _figures(capacity: float | None, allocated: float | None, unit: str) -> LoadFigures:
    free = None
    if capacity is not None and allocated is not None:
        free = round(max(0.0, capacity - allocated), 3)
    return LoadFigures(capacity=capacity, allocated=allocated, free=free, unit=unit)


class Availability(BaseModel):
    """`GET /skaha/availability` (VOSI): whether the service says it is up, and its note."""

    available: bool
    note: str | None = None


class SessionSpec(BaseModel):
    """What to create: the fields of `POST /session`, checked before anything is sent.

    `args` is a list: Skaha joins nothing and splits `args` on single spaces, so an argument
    that contains a space cannot be sent intact and is refused here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    image: str
    type: str = "headless"
    cores: int | None = Field(default=None, ge=1, le=256)
    ram: int | None = Field(default=None, ge=1, le=512, description="GB (applied as GiB)")
    gpus: int | None = Field(default=None, ge=0, le=28)
    cmd: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        name = str(value or "").strip().lower()
        check_session_name(name)
        return name

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        image = value.strip()
        if not image:
            raise ValueError("an image is required")
        if any(ch.isspace() for ch in image):
            raise ValueError(f"image {image!r} contains whitespace")
        return image

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        kind = str(value or "headless").strip().lower()
        if kind not in SESSION_TYPES:
            raise ValueError(f"unknown session type {kind!r}; one of {', '.join(SESSION_TYPES)}")
        return kind

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: int | None) -> int | None:
        return value or None  # Skaha refuses gpus=0; leaving it out means none

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_safe("cmd", value)
        if not value.strip():
            raise ValueError("cmd is empty")
        if any(ch.isspace() for ch in value):
            raise ValueError(
                f"cmd {value!r} contains whitespace; Skaha runs cmd as one program path "
                "(put its arguments in args)"
            )
        return value

    @field_validator("args", mode="before")
    @classmethod
    def _args(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            raise ValueError("args must be a list of arguments, not one string")
        args = [str(item) for item in value]
        if sum(len(arg.encode()) + 1 for arg in args) > MAX_ARGS_BYTES:
            raise ValueError(f"args exceed {MAX_ARGS_BYTES} bytes")
        for position, arg in enumerate(args):
            if "\x00" in arg:
                raise ValueError(f"args[{position}] contains a NUL byte")
            _check_safe(f"args[{position}]", arg)
            if arg == "":
                raise ValueError(f"args[{position}] is empty; Skaha cannot send an empty argument")
            if any(ch.isspace() for ch in arg):
                raise ValueError(
                    f"args[{position}] {arg!r} contains a space or other whitespace; Skaha splits "
                    "args on spaces, so pass it through a script file instead"
                )
        return args

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        env = {str(key): str(val) for key, val in dict(value).items()}
        check_env_size(env)
        for key, val in env.items():
            if "\x00" in key or "\x00" in val:
                raise ValueError(f"env {_short(key)} contains a NUL byte")
            if not ENV_NAME_PATTERN.match(key):
                raise ValueError(
                    f"env name {_short(key)!r} is not a valid environment variable name"
                )
            _check_safe(f"env {key}", val)
            if val == "":
                raise ValueError(f"env {key} is empty; Skaha silently drops KEY= entries")
            if "=" in val:
                raise ValueError(f"env {key} contains '='; Skaha silently drops such entries")
            if any(ch in "\n\r" for ch in val):
                raise ValueError(f"env {key} contains a line break")
        return env

    @model_validator(mode="after")
    def _headless_only(self) -> SessionSpec:
        if self.type != "headless" and (self.cmd or self.args or self.env):
            raise ValueError("cmd, args and env are only allowed for headless sessions")
        return self

    def form_fields(
        self, *, name: str | None = None, extra_env: dict[str, str] | None = None
    ) -> list[tuple[str, str]]:
        """The POST parameters in canfar's order, one `env=K=V` per variable.

        `extra_env` (e.g. REPLICA_ID) overrides the spec's own entries of the same name.
        """
        fields: list[tuple[str, str]] = [("name", name or self.name), ("image", self.image)]
        if self.cores is not None:
            fields.append(("cores", str(self.cores)))
        if self.ram is not None:
            fields.append(("ram", str(self.ram)))
        fields.append(("type", self.type))
        if self.gpus is not None:
            fields.append(("gpus", str(self.gpus)))
        if self.cmd is not None:
            fields.append(("cmd", self.cmd))
        if self.args:
            fields.append(("args", " ".join(self.args)))
        env = {**self.env, **(extra_env or {})}
        fields.extend(("env", f"{key}={val}") for key, val in env.items())
        return fields


def _short(text: str, limit: int = 60) -> str:
    """At most `limit` characters of a value, for a message that names it."""
    return text if len(text) <= limit else text[:limit] + "..."


def check_env_size(env: dict[str, Any]) -> None:
    """ValueError when `env` has more entries or bytes than a replica can be started with."""
    if len(env) > MAX_ENV_COUNT:
        raise ValueError(f"{len(env)} env variables, at most {MAX_ENV_COUNT} allowed")
    size = sum(len(str(k).encode()) + len(str(v).encode()) + 2 for k, v in env.items())
    if size > MAX_ENV_BYTES:
        raise ValueError(f"env holds {size} bytes in all, at most {MAX_ENV_BYTES} allowed")


def check_json_bounds(value: Any, what: str, depth: int, size: int) -> None:
    """ValueError when a JSON value nests deeper than `depth` or has more than `size` items and
    characters in all (counted without recursion, so no input can exhaust the stack)."""
    stack, total = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        if level > depth:
            raise ValueError(f"{what} nest deeper than {depth} levels")
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
            total += sum(len(str(k)) for k in item)
        elif isinstance(item, list | tuple):
            stack.extend((v, level + 1) for v in item)
        total += len(item) if isinstance(item, str) else 1
        if total > size:
            raise ValueError(f"{what} are larger than {size} characters")


def check_session_name(name: str) -> None:
    """Raise ValueError unless `name` (already lower-cased) is a valid Skaha session name."""
    if not SESSION_NAME_PATTERN.match(name):
        raise ValueError(
            f"session name {_short(name)!r} must be 1-63 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )


def replica_names(name: str, replicas: int) -> list[str]:
    """`name` for one replica, else `name-1` .. `name-N` (the official client's rule), checked."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"replicas must be between 1 and {MAX_REPLICAS}, not {replicas}")
    names = [name] if replicas == 1 else [f"{name}-{index}" for index in range(1, replicas + 1)]
    for each in names:
        check_session_name(each)
    return names


def _check_safe(field: str, value: str) -> None:
    shown = unsafe_char(value)
    if shown:
        raise ValueError(
            f"{field} contains {shown}, which Skaha mangles; pass complex commands through a "
            "script file instead"
        )


def explain(error: ValidationError) -> str:
    """A pydantic ValidationError as one line: `field: reason; field: reason`."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "__root__")
        message = str(item.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


class ReplicaOutcome(BaseModel):
    """What became of one replica of a create: its session id, or why it has none.

    `reconciled` marks an id found by listing sessions after the create reply was lost.
    """

    index: int = Field(ge=0, description="the replica's REPLICA_ID (0: the run's reduce step)")
    name: str
    session_id: str | None = None
    error: str | None = None
    error_status: int | None = None
    reconciled: bool = False

    @property
    def ok(self) -> bool:
        return self.session_id is not None


@dataclass(frozen=True)
class LogChunk:
    """Log text from `view=logs`.

    `honoured` says whether the service applied the requested byte offset (the local engine does,
    real Skaha sends the whole log); `next_offset` is the byte offset to ask for next time.
    """

    text: str
    next_offset: int
    honoured: bool
