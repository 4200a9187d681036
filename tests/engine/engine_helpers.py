"""Shared helpers for the engine tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
from fixtures_engine import wait_for

TOOL = str(Path(__file__).with_name("replica_tool.py"))
IMAGE = "images.canfar.net/skaha/base:latest"
ACTIVE = ("Pending", "Running", "Terminating")


def create(client: httpx.Client, name: str, action: str, *args: str, **params: Any) -> str:
    """Create one headless session running `replica_tool.py ACTION ARGS` (query parameters,
    like the official client); return its id."""
    query: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "cmd": sys.executable,
        "args": " ".join([TOOL, action, *args]),
        **params,
    }
    response = client.post("/session", params=query)
    assert response.status_code == 200, response.text
    return response.text.strip()


def session(client: httpx.Client, session_id: str) -> dict[str, Any]:
    response = client.get(f"/session/{session_id}")
    assert response.status_code == 200, response.text
    return response.json()


def status_of(client: httpx.Client, session_id: str) -> str | None:
    response = client.get(f"/session/{session_id}")
    return response.json()["status"] if response.status_code == 200 else None


def wait_status(
    client: httpx.Client, session_id: str, *statuses: str | None, timeout: float = 30.0
) -> str | None:
    """Wait until the session's status is one of `statuses` (None: the session is gone)."""

    def reached() -> tuple[str | None] | None:
        status = status_of(client, session_id)
        return (status,) if status in statuses else None

    return wait_for(reached, timeout, f"session {session_id} to reach {statuses}")[0]


def logs(client: httpx.Client, session_id: str) -> str:
    response = client.get(f"/session/{session_id}", params={"view": "logs"})
    assert response.status_code == 200
    return response.text


def wait_log(client: httpx.Client, session_id: str, text: str, timeout: float = 30.0) -> str:
    def found() -> str:
        out = logs(client, session_id)
        return out if text in out else ""

    return wait_for(found, timeout, f"{text!r} in the log of {session_id}")


def gone(pid: int) -> bool:
    """True when no live process has this pid (a zombie counts as alive: it is not reaped)."""
    try:
        psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    return False


def delete(client: httpx.Client, *session_ids: str) -> None:
    for session_id in session_ids:
        assert client.delete(f"/session/{session_id}").status_code == 200
