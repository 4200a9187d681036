"""Engine settings: defaults, then `<home>/engine/config.yaml`, then `CANFAR_JLAB_ENGINE_*`
environment variables, then explicit overrides (command-line options), later ones winning."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .layout import EngineLayout

ENV_PREFIX = "CANFAR_JLAB_ENGINE_"
DAY = 86400.0
MIB = 1024**2
GIB = 1024**3

DEFAULT_IMAGES = (
    "images.canfar.net/skaha/astroml:latest",
    "images.canfar.net/skaha/base:latest",
)


class ConfigError(Exception):
    """A setting that cannot be used, described in one line."""


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": GIB, "t": 1024 * GIB}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}


def parse_size(value: object) -> int:
    """Bytes from an int or a string such as `64MiB`, `512k`, `2G` (binary units)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64MiB")
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size such as 64MiB, got {value!r}")
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as `7d`, `12h`, `30m`, `10s`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 7d")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 7d or 30s, got {value!r}")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]


def _machine_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the CPUs this process may use, not the whole host
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _machine_memory_gb() -> int:
    return max(1, psutil.virtual_memory().total // GIB)


class EngineConfig(BaseModel):
    """Everything an operator may tune; see docs/engine.md for the meaning of each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    cores: int = Field(default_factory=_machine_cores, ge=1, le=4096)
    memory_gb: int = Field(default_factory=_machine_memory_gb, ge=1)
    log_cap: int = Field(64 * MIB, ge=4096, description="bytes kept per replica log")
    retention: float = Field(7 * DAY, ge=0, description="seconds finished sessions are kept")
    grace_period: float = Field(30.0, ge=0, le=3600, description="SIGTERM to SIGKILL, seconds")
    deadline: float = Field(14 * DAY, gt=0, description="active deadline of a session, seconds")
    renew_extension: float = Field(4 * DAY, gt=0, description="what renew may extend to")
    nice: int = Field(0, ge=0, le=19, description="niceness added to replicas")
    images: tuple[str, ...] = DEFAULT_IMAGES
    image_hosts: tuple[str, ...] | None = Field(
        None, description="when set, images must start with one of these hosts (as Skaha)"
    )
    workdir: Path | None = Field(None, description="HOME, PWD and working dir of replicas")
    username: str | None = Field(None, description="the user sessions belong to")
    pass_env: tuple[str, ...] = Field(
        (), description="variables of the engine's environment that replicas also get"
    )

    @field_validator("log_cap", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        return parse_size(value)

    @field_validator("retention", "grace_period", "deadline", "renew_extension", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("images", "image_hosts", "pass_env", mode="before")
    @classmethod
    def _words(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: comma or space separated
            return tuple(part for part in re.split(r"[,\s]+", value) if part)
        return value

    @field_validator("workdir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def replica_home(self) -> Path:
        return self.workdir or Path.home()

    @property
    def memory_bytes(self) -> int:
        return self.memory_gb * GIB

    def public_repositories(self) -> list[str]:
        """What `/repository` lists: the enforced hosts, or CANFAR's registry when any is fine
        (the official client prefixes `repo/image` with it)."""
        return list(self.image_hosts) if self.image_hosts is not None else ["images.canfar.net"]


FIELDS = tuple(EngineConfig.model_fields)


def _from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings that `CANFAR_JLAB_ENGINE_<NAME>` variables give."""
    found: dict[str, Any] = {}
    for name in FIELDS:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None and value != "":
            found[name] = value
    return found


def settings_file(layout: EngineLayout) -> Path:
    """The options the running engine was started with: a daemon started again after a crash
    (on demand, with no options) reads them back instead of falling back to the defaults. A
    clean stop removes the file, so the next start is a fresh one."""
    return layout.root / "settings.json"


def load_config(
    layout: EngineLayout,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> EngineConfig:
    """Merge the sources in order and validate; a bad value raises ConfigError in one line."""
    merged: dict[str, Any] = {}
    merged.update(_from_file(layout.config_file))
    merged.update(settings_from_env(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return EngineConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise ConfigError(f"invalid engine setting {where}: {first['msg']}") from None
