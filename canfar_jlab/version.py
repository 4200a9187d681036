"""The package's version, for modules that report it (User-Agent, the REST handshake, the
engine): imported from here, never from the package root, so no module imports the root."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    import warnings

    warnings.warn(
        "canfar_jlab was imported from a tree that was not installed; run `pip install -e .`",
        stacklevel=2,
    )
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
