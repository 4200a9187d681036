"""What every canfar-jlab handler shares: authentication, authorization, JSON errors."""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

# Resource names follow jupyter_server's advice: "<extension>:<area>", so a deployment's
# Authorizer can allow reading runs without allowing launching them.
AUTH_RESOURCE_PREFIX = "canfar"


class CanfarHandler(ExtensionHandlerMixin, APIHandler):
    """Base for every route. Each verb still carries `@web.authenticated` and `@authorized`.

    `APIHandler.write_error` already answers JSON with no traceback; we keep it that way.
    """

    auth_resource = f"{AUTH_RESOURCE_PREFIX}:config"

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload if isinstance(payload, str) else self._encode(payload))

    @staticmethod
    def _encode(payload: Any) -> str:
        import json

        return json.dumps(payload)
