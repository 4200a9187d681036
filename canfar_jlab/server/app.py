"""The ExtensionApp: configuration traitlets, routes, and start/stop hooks."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from .. import __version__
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
            "else use the local engine."
        ),
    )

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_table())

    def backend_summary(self) -> dict[str, str]:
        """Which kind of session service is in use, and where; never a credential."""
        if self.skaha_url:
            from urllib.parse import urlsplit

            return {"kind": "skaha", "host": urlsplit(self.skaha_url).hostname or ""}
        return {"kind": "local", "host": "127.0.0.1"}
