"""Jupyter server configuration for the Galata browser tests."""

import os
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 - provided by Jupyter's config loader
configure_jupyter_server(c)

c.ServerApp.allow_root = True  # CI and these machines run as root

# The local engine keeps its state in a throwaway home, so browser tests never touch a
# developer's own runs.
os.environ.setdefault("CANFAR_JLAB_HOME", str(Path(tempfile.mkdtemp(prefix="canfar-jlab-ui-"))))
