"""The ExtensionApp: configuration traitlets, routes, and start/stop hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Type, Unicode

from ..version import __version__
from .backend import Backend
from .handlers import route_table


class CanfarJlabApp(ExtensionApp):
    """canfar-jlab's server part (config section `CanfarJlabApp`)."""

    name = "canfar_jlab"
    description = "Run notebooks as batch replicas on CANFAR (Skaha) or the local engine."
    version = __version__
    load_other_extensions = True

    skaha_url = Unicode(
        "",
        config=True,
        help=(
            "Base URL of a Skaha v1 API (for example https://ws-uv.canfar.net/skaha/v1). "
            "Empty: find it from CANFAR_URL, ~/.canfar/config.yaml or ~/.ssl/cadcproxy.pem, "
            "else use the local engine (started on demand)."
        ),
    )
    request_timeout = Float(
        10.0,
        config=True,
        help="Seconds a route waits for the session service before answering 504.",
    )
    list_interval = Float(
        2.0,
        config=True,
        help="Seconds between the single session-list poll that feeds every live view.",
    )
    log_bytes_per_second = Float(
        2 * 2**20,
        config=True,
        help=(
            "Cap on whole-log bytes per second this server downloads from a session service "
            "without log offsets (Skaha) for live log views. 0: no cap."
        ),
    )

    backend_class = Type(
        default_value=Backend,
        klass=Backend,
        config=True,
        help=(
            "The service object every route calls (a subclass of "
            "canfar_jlab.server.backend.Backend), as jupyter-scheduler's scheduler_class."
        ),
    )

    runs_root = Unicode(
        "",
        config=True,
        help="Folder that holds one folder per run. Empty: $CANFAR_JLAB_RUNS, else ~/canfar-runs.",
    )

    def initialize_settings(self) -> None:
        self.backend = self.backend_class(
            url=self.skaha_url or None,
            request_timeout=self.request_timeout,
            list_interval=self.list_interval,
            log_bytes_per_second=self.log_bytes_per_second,
            runs_root=Path(self.runs_root) if self.runs_root else None,
            root_dir=Path(self.serverapp.root_dir),
        )
        self.settings["canfar_jlab_backend"] = self.backend

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_table())

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        # Runs launched before a restart (or from the CLI) still need their replicas followed
        # and their logs archived: resume in the background, never delaying the server's start.
        self._resume = asyncio.ensure_future(self.backend.resume())

    async def stop_extension(self) -> None:
        resume = getattr(self, "_resume", None)
        if resume is not None:
            resume.cancel()
        await self.backend.close()
