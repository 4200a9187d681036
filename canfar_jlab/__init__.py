"""canfar-jlab: promote a notebook to N batch replicas on CANFAR (Skaha) or a local engine.

The package root stays import-light: the Jupyter server extension and the IPython magic are
imported only when Jupyter or IPython asks for them, so the core never drags them in.
"""

from .version import __version__ as __version__


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "canfar-jlab"}]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server.app import CanfarJlabApp

    return [{"module": "canfar_jlab", "app": CanfarJlabApp}]


def load_ipython_extension(ipython) -> None:  # IPython calls it with its shell
    from .magic import load_ipython_extension as load

    load(ipython)
