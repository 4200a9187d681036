"""Jupyter server configuration for the Galata browser tests."""

import atexit
import os
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 - provided by Jupyter's config loader
configure_jupyter_server(c)

c.ServerApp.allow_root = True  # CI and these machines run as root

# The local engine keeps its state, and its replicas their HOME, in throwaway folders, so
# browser tests never touch a developer's own runs or files.
scratch = Path(tempfile.mkdtemp(prefix="canfar-jlab-ui-"))
os.environ.setdefault("CANFAR_JLAB_HOME", str(scratch / "state"))
os.environ.setdefault("CANFAR_JLAB_ENGINE_WORKDIR", str(scratch / "replica-home"))
(scratch / "replica-home").mkdir(exist_ok=True)
# Runs inside the server root, so the sidebar can open their folders in the file browser.
c.CanfarJlabApp.runs_root = str(Path(c.ServerApp.root_dir) / "canfar-runs")


def _stop_engine() -> None:
    # The engine is a daemon that outlives the Jupyter server by design; a test run's must not.
    from canfar_jlab.engine.control import stop_engine

    stop_engine(Path(os.environ["CANFAR_JLAB_HOME"]), terminate_replicas=True)


atexit.register(_stop_engine)
