"""Where canfar-jlab keeps its per-user state and settings on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .atomic import write_atomically

SETTINGS_FILE = "settings.json"


def data_home() -> Path:
    """`$CANFAR_JLAB_HOME`, else `$XDG_DATA_HOME/canfar-jlab`, else `~/.local/share/canfar-jlab`."""
    explicit = os.environ.get("CANFAR_JLAB_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "canfar-jlab"


def config_home() -> Path:
    """`$CANFAR_JLAB_CONFIG`, else `$XDG_CONFIG_HOME/canfar-jlab`, else `~/.config/canfar-jlab`."""
    explicit = os.environ.get("CANFAR_JLAB_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "canfar-jlab"


def user_settings() -> dict[str, Any]:
    """The user's settings (`canfar-jlab config set`); {} when none or unreadable."""
    try:
        data = json.loads((config_home() / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def set_user_setting(key: str, value: Any) -> Path:
    """Store one setting (None removes it), atomically; returns the settings file."""
    folder = config_home()
    folder.mkdir(parents=True, exist_ok=True)
    settings = user_settings()
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = value
    path = folder / SETTINGS_FILE
    write_atomically(path, json.dumps(settings, indent=1) + "\n")
    return path
