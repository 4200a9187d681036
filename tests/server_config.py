"""The Jupyter server configuration every canfar_jlab server test starts from."""

from __future__ import annotations

from typing import Any


def server_config(app: dict[str, Any] | None = None, **server: Any) -> dict[str, Any]:
    """canfar_jlab enabled, authentication required, terminals off (their websocket handler
    would trip the JupyterServerAuthWarning filter); `app` configures CanfarJlabApp and
    `server` adds ServerApp settings."""
    config: dict[str, Any] = {
        "ServerApp": {
            "jpserver_extensions": {"canfar_jlab": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
            **server,
        }
    }
    if app:
        config["CanfarJlabApp"] = app
    return config
