"""Where canfar-jlab keeps its per-user state on disk."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """`$CANFAR_JLAB_HOME`, else `$XDG_DATA_HOME/canfar-jlab`, else `~/.local/share/canfar-jlab`."""
    explicit = os.environ.get("CANFAR_JLAB_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "canfar-jlab"
