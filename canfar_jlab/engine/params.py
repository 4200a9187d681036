"""Create parameters: read like Skaha reads them, checked in Skaha's order with its messages.

Order (skaha-api.md §2.1): image present -> image host and type -> cores, ram -> name ->
(interactive types, which the local engine refuses) -> gpus -> env -> cmd.

Beyond Skaha's own checks, what would only fail later (in Kubernetes, or at exec time here) is
refused before anything is created: names that are not DNS labels, NUL bytes, more env entries
or bytes of env or args than a process can be started with, image names no registry accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from ..models import MAX_ARGS_BYTES, MAX_ENV_BYTES, MAX_ENV_COUNT, MAX_IMAGE_LENGTH
from .errors import bad_request

SESSION_TYPES = (
    "carta",
    "contributed",
    "desktop",
    "notebook",
    "headless",
    "desktop-app",
    "firefly",
)
_NAME = re.compile(r"[A-Za-z0-9\-]+")
# The name becomes the pod's hostname: a DNS label (Skaha only checks the characters, and
# Kubernetes then fails the Job).
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_JAVA_DOUBLE_SUFFIX = re.compile(r"(?<=[0-9.])[fFdD]$")

Params = Mapping[str, Sequence[str]]


class CreateRequest(BaseModel):
    """A validated create request for one headless session."""

    model_config = ConfigDict(frozen=True)

    name: str
    image: str
    type: str
    cores: float | None
    ram: float | None
    gpus: int | None
    cmd: str
    args: list[str]
    env: list[tuple[str, str]]
    dropped_env: list[str]  # names Skaha would drop silently (value containing '=')


def first(params: Params, key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def java_double(text: str) -> float | None:
    """What Java's `Double.parseDouble` accepts (trimmed, optional f/d suffix), else None."""
    text = _JAVA_DOUBLE_SUFFIX.sub("", text.strip())
    if not text or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _resource(params: Params, key: str, options: Sequence[int]) -> float | None:
    raw = first(params, key)
    if raw is None:
        return None
    value = java_double(raw)
    if value is None or int(value) not in options:
        raise bad_request(f"Invalid value for '{key}': {quote(raw)}")
    return value


def quote(text: str, limit: int = 60) -> str:
    """At most `limit` characters of what the client sent, for a message."""
    return text if len(text) <= limit else text[:limit] + "..."


def _env(entries: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    kept: list[tuple[str, str]] = []
    dropped: list[str] = []
    if len(entries) > MAX_ENV_COUNT:
        raise bad_request(
            f"Invalid value for 'env': {len(entries)} entries, at most {MAX_ENV_COUNT} allowed"
        )
    size = sum(len(entry.encode()) + 1 for entry in entries)
    if size > MAX_ENV_BYTES:
        raise bad_request(
            f"Invalid value for 'env': {size} bytes in all, at most {MAX_ENV_BYTES} allowed"
        )
    for entry in entries:
        if "\x00" in entry:
            name = entry.split("=", 1)[0].replace("\x00", "\\0")
            raise bad_request(f"Invalid value for 'env': {quote(name)} contains a NUL byte")
        parts = entry.split("=")
        if len(parts) < 2 or (len(parts) == 2 and parts[1] == ""):
            # Skaha drops these silently; here a variable without a value is reported.
            shown = quote(parts[0]) + ("=" if len(parts) > 1 else "")
            raise bad_request(f"Invalid value for 'env': {shown} has no value (expected KEY=VALUE)")
        if parts[0] == "":
            raise bad_request("Invalid value for 'env': an entry has no name (expected KEY=VALUE)")
        if len(parts) > 2:
            dropped.append(parts[0])  # as Skaha: a value containing '=' is dropped
            continue
        kept.append((parts[0], parts[1]))
    return kept, dropped


def parse_create(
    params: Params,
    cores_options: Sequence[int],
    memory_options: Sequence[int],
    gpu_options: Sequence[int] = (),
    image_hosts: Sequence[str] | None = None,
) -> CreateRequest:
    """Validate `params` (query string and form body merged); raise HTTPRefusal(400) on the first
    problem, with Skaha's message where Skaha has one."""
    image = first(params, "image")
    if image is None or not image.strip():
        raise bad_request("Missing parameter 'image'")
    if len(image) > MAX_IMAGE_LENGTH or "\x00" in image or any(ch.isspace() for ch in image):
        raise bad_request(
            f"Invalid value for 'image': {quote(image)} (at most {MAX_IMAGE_LENGTH} "
            "characters, no spaces or NUL)"
        )
    if image_hosts is not None and not any(image.startswith(host) for host in image_hosts):
        raise bad_request(
            f"session image '{quote(image)}' must come from one of [{', '.join(image_hosts)}]"
        )

    raw_type = first(params, "type")
    kind = (raw_type or "").strip().lower() or "headless"
    if kind not in SESSION_TYPES:
        raise bad_request(f"Invalid session type: {quote(raw_type or '')}")

    cores = _resource(params, "cores", cores_options)
    ram = _resource(params, "ram", memory_options)

    name = first(params, "name")
    if name is None or not name.strip():
        raise bad_request("Missing parameter 'name'")
    if not _NAME.fullmatch(name):
        raise bad_request("name can only contain alpha-numeric chars and '-'")
    if not _DNS_LABEL.fullmatch(name.lower()):
        raise bad_request(
            f"Invalid value for 'name': {quote(name)} must be a DNS label: at most 63 "
            "characters, starting and ending with a letter or digit"
        )

    if kind != "headless":
        raise bad_request(
            f"session type '{kind}' is not supported by the local engine: "
            "it runs headless sessions only"
        )

    raw_gpus = first(params, "gpus")
    gpus = None
    if raw_gpus is not None:
        try:
            gpus = int(raw_gpus.strip())
        except ValueError:
            gpus = None
        if gpus is None or gpus not in gpu_options:
            raise bad_request(f"Invalid value for 'gpus': {quote(raw_gpus)}")

    env, dropped = _env(params.get("env", ()))

    cmd = first(params, "cmd")
    if cmd is None or not cmd.strip():
        raise bad_request(
            "Missing parameter 'cmd': the local engine has no container image to supply "
            "a default command"
        )
    raw_args = first(params, "args")
    if "\x00" in cmd or (raw_args and "\x00" in raw_args):
        raise bad_request("Invalid value for 'args': contains a NUL byte")
    if len(cmd.encode()) + len((raw_args or "").encode()) > MAX_ARGS_BYTES:
        raise bad_request(f"Invalid value for 'args': cmd and args exceed {MAX_ARGS_BYTES} bytes")
    args = raw_args.split(" ") if raw_args else []  # single spaces, as Skaha splits them

    return CreateRequest(
        name=name.lower(),
        image=image,
        type=kind,
        cores=cores,
        ram=ram,
        gpus=gpus,
        cmd=cmd,
        args=args,
        env=env,
        dropped_env=dropped,
    )
