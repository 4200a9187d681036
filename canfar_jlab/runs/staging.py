"""Staging a run on CANFAR storage when the replicas cannot see the local run folder.

A JupyterLab on a laptop writes the run's script under the laptop's home; replicas on CANFAR
would fail with "file not found". So when the Jupyter server does not run in a Skaha session
(no `$skaha_sessionid`) or the runs root is not under `/arc`, a launch to a remote Skaha copies
the run folder's files (script, runner, notebook, sweep table) to the user's CANFAR storage,
`/arc/home/USER/canfar-runs/RUN/` or `$CANFAR_JLAB_STAGE_ROOT/RUN/` (e.g. a folder under
`/arc/projects/...`), through the storage service's VOSpace API (`canfar_jlab.vospace`) with
the same credential; the replicas run from there, their outputs stay there, and logs are
archived locally as for any run.

Which storage service: `$CANFAR_JLAB_STORAGE_URL` (with `$CANFAR_JLAB_STORAGE_URI`), else the
site's `storage` entry in `~/.canfar/config.yaml`, else CANFAR's own for CANFAR's Skaha. With
none known, the launch is refused before anything is created, saying why and what to set.
`CANFAR_JLAB_STAGE=never` turns staging off (the replicas see this folder by other means).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import LaunchRefused
from ..models import SessionSpec, StagedRun
from ..skaha import SkahaClient, SkahaError
from ..vospace import Storage, VOSpaceClient
from .sites import own_session_id

STAGE_ENV = "CANFAR_JLAB_STAGE"  # "never" to turn staging off
STAGE_ROOT_ENV = "CANFAR_JLAB_STAGE_ROOT"
STORAGE_URL_ENV = "CANFAR_JLAB_STORAGE_URL"
STORAGE_URI_ENV = "CANFAR_JLAB_STORAGE_URI"
ARC = PurePosixPath("/arc")
# CANFAR's storage service for /arc, for CANFAR's own Skaha when the config names none.
KNOWN_STORAGE = {
    "ws-uv.canfar.net": Storage("https://ws-uv.canfar.net/arc", "ivo://cadc.nrc.ca/arc"),
}
_SKIPPED = ("run.json",)  # the record stays local; everything else the replicas may read


@dataclass(frozen=True)
class StagePlan:
    storage: Storage
    root: str  # e.g. /arc/home/alice/canfar-runs

    def folder(self, name: str) -> str:
        return str(PurePosixPath(self.root) / name)


def needs_staging(client: SkahaClient, runs_root: Path) -> bool:
    """Whether replicas on `client`'s service could not read a run folder under `runs_root`."""
    if client.credentials.is_local_engine or os.environ.get(STAGE_ENV, "") == "never":
        return False
    under_arc = Path(os.path.abspath(runs_root)).is_relative_to(ARC)
    return own_session_id() is None or not under_arc


def storage_for(client: SkahaClient) -> Storage | None:
    url = os.environ.get(STORAGE_URL_ENV, "").strip()
    if url:
        return Storage(url, os.environ.get(STORAGE_URI_ENV, "").strip() or "ivo://cadc.nrc.ca/arc")
    configured = client.credentials.storage
    if configured is not None:
        return Storage(*configured)
    host = client.credentials.base_url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    return KNOWN_STORAGE.get(host)


async def plan_staging(client: SkahaClient, runs_root: Path) -> StagePlan | None:
    """The staging a launch needs (None: none), or LaunchRefused saying why it is impossible.

    Called before anything is created.
    """
    if not needs_staging(client, runs_root):
        return None
    service = client.credentials.service_name
    where = (
        "this Jupyter server does not run in a CANFAR session"
        if own_session_id() is None
        else f"the runs folder {runs_root} is not under /arc"
    )
    storage = storage_for(client)
    if storage is None:
        raise LaunchRefused(
            f"cannot launch on {service}: {where}, so the replicas would not find the run's "
            f"files, and no storage service is known for {service} to copy them to; set "
            f"{STORAGE_URL_ENV} to its VOSpace service (e.g. https://ws-uv.canfar.net/arc), "
            "or run JupyterLab in a session on that platform with the runs folder under /arc"
        )
    root = os.environ.get(STAGE_ROOT_ENV, "").strip()
    if not root:
        user = await _user_name(client)
        if user is None:
            raise LaunchRefused(
                f"cannot launch on {service}: {where}, and the run must be copied to your "
                f"CANFAR storage, but your user name is not known; set {STAGE_ROOT_ENV}, "
                "e.g. /arc/home/YOU/canfar-runs"
            )
        root = f"/arc/home/{user}/canfar-runs"
    if not PurePosixPath(root).is_absolute() or ".." in PurePosixPath(root).parts:
        raise LaunchRefused(f"{STAGE_ROOT_ENV} must be an absolute folder, e.g. /arc/projects/x")
    return StagePlan(storage=storage, root=root.rstrip("/"))


async def stage(
    plan: StagePlan, client: SkahaClient, folder: Path, name: str, spec: SessionSpec
) -> tuple[SessionSpec, StagedRun]:
    """Copy the run folder's files to the storage and point the replicas' spec at the copy.

    Raises LaunchRefused (nothing created on Skaha) when the storage refuses or fails.
    """
    remote = plan.folder(name)
    files = [
        (f"{remote}/{path.name}", path.read_bytes())
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name not in _SKIPPED
    ]
    try:
        async with VOSpaceClient(plan.storage, client.credentials) as storage:
            await storage.mkdirs(f"{remote}/outputs")
            await storage.upload_files(files)
    except SkahaError as error:
        raise LaunchRefused(
            f"cannot copy the run to {remote} on CANFAR storage: {error.message}"
        ) from None
    return remote_spec(spec, folder, remote), StagedRun(
        folder=remote,
        outputs=f"{remote}/outputs",
        storage=plan.storage.url,
        files=[path.rsplit("/", 1)[1] for path, _ in files],
    )


def _mover(folder: Path, remote: str):
    local = str(folder)

    def moved(value: str) -> str:
        return remote + value[len(local) :] if value.startswith(local) else value

    return moved


def staged_preview(preview: Any, folder: Path, remote: str) -> Any:
    """A launch preview showing the staged folder in the replicas' command and env."""
    moved = _mover(folder, remote)
    return preview.model_copy(
        update={
            "staged_folder": remote,
            "argv": [moved(arg) for arg in preview.argv],
            "replicas": [
                r.model_copy(update={"env": {k: moved(v) for k, v in r.env.items()}})
                for r in preview.replicas
            ],
        }
    )


def remote_spec(spec: SessionSpec, folder: Path, remote: str) -> SessionSpec:
    """`spec` with the local run folder replaced by the staged one in the command and env."""
    moved = _mover(folder, remote)
    return spec.model_copy(
        update={
            "cmd": moved(spec.cmd) if spec.cmd else spec.cmd,
            "args": [moved(arg) for arg in spec.args],
            "env": {key: moved(value) for key, value in spec.env.items()},
        }
    )


async def _user_name(client: SkahaClient) -> str | None:
    """The platform user name: from one of the user's sessions, else the token's claims."""
    try:
        for session in await client.list_sessions():
            if session.userid:
                return _safe(session.userid)
    except SkahaError:
        pass
    token = client.credentials.current_token
    if token is None:
        return None
    parts = token.reveal().split(".")
    if len(parts) != 3:  # not a JWT
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return None
    name = claims.get("preferred_username") if isinstance(claims, dict) else None
    return _safe(name) if isinstance(name, str) else None


def _safe(name: str) -> str | None:
    name = name.strip()
    ok = name and all(ch.isalnum() or ch in "-_." for ch in name) and name not in (".", "..")
    return name if ok else None
