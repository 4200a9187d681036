"""REST handlers under <base_url>/canfar-jlab/."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from .. import __version__
from .base import CanfarHandler

ROUTE_PREFIX = "canfar-jlab"


class ConfigHandler(CanfarHandler):
    """Version handshake and which session service this server talks to (never a credential)."""

    SUPPORTED_METHODS = ("GET",)
    auth_resource = "canfar:config"

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.write_json({"version": __version__, "backend": self.extensionapp.backend_summary()})


def route_table() -> list[tuple[str, type[CanfarHandler]]]:
    """Every route the extension serves, relative to base_url (ExtensionApp prepends it).

    The auth test enumerates this very list, so a route added here is covered there.
    """

    def path(*parts: str) -> str:
        return url_path_join("/", ROUTE_PREFIX, *parts)

    return [
        (path("config"), ConfigHandler),
    ]
