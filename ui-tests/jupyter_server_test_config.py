"""Jupyter server configuration for the Galata browser tests."""

import os
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 - `c` is provided by Jupyter's config loader

c.ServerApp.allow_root = True  # CI and these machines run as root

# The local engine keeps its state in a throwaway home, so browser tests never touch a
# developer's own runs.
os.environ.setdefault("CANFAR_JLAB_HOME", str(Path(tempfile.mkdtemp(prefix="canfar-jlab-ui-"))))
