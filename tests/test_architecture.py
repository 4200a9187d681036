"""The rules of the house, checked: the core never imports a front door or the Jupyter server,
and the engine never imports Jupyter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "canfar_jlab"
CORE = ["models.py", "skaha.py", "credentials.py", "export.py", "live.py", "distributed.py",
        "paths.py", "runs", "oidc.py", "vospace.py"]  # fmt: skip
FRONT_DOORS = ("canfar_jlab.server", "canfar_jlab.magic", "canfar_jlab.cli", "jupyter_server")


def _modules(entry: str) -> list[Path]:
    path = PACKAGE / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", [p for e in CORE for p in _modules(e)], ids=str)
def test_core_imports_no_front_door(path):
    bad = {n for n in _imports(path) if n.startswith(FRONT_DOORS)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("engine"), ids=str)
def test_engine_imports_no_jupyter(path):
    bad = {n for n in _imports(path) if n.startswith(("jupyter", "IPython", "canfar_jlab.server"))}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_check_sees_relative_imports():
    # Guard against a resolver that silently finds nothing.
    assert "canfar_jlab.models.Session" in _imports(PACKAGE / "live.py")
