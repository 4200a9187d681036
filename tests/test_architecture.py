"""The rules of the house, checked on every module of canfar_jlab (found, never listed by hand):

- no import cycles anywhere (lazy imports inside functions count; `TYPE_CHECKING` ones do not);
- the core never imports a front door (server, magic, cli) or the Jupyter server;
- the core reaches the engine only through its public face, the `canfar_jlab.engine` package
  (`ensure_engine`, `engine_status`, ...), never one of its modules;
- the engine never imports Jupyter;
- the programs copied into a replica (export_runner, kernel_runner, replica_folder,
  replica_report) import nothing of the package but one another;
- every module belongs to exactly one layer;
- tests/ mirrors the package: one folder per package, tests/core for the top-level modules.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "canfar_jlab"
FRONT_DOORS = ("canfar_jlab.server", "canfar_jlab.magic", "canfar_jlab.cli")
ENGINE = "canfar_jlab.engine"
ROOT = {"canfar_jlab", "canfar_jlab.__main__"}  # entry points: Jupyter, IPython, `python -m`
REPLICA_SIDE = {
    "canfar_jlab.export_runner",
    "canfar_jlab.kernel_runner",
    "canfar_jlab.replica_folder",
    "canfar_jlab.replica_report",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer(name: str) -> str:
    if name in ROOT:
        return "root"
    if any(_under(name, door) for door in FRONT_DOORS):
        return "door"
    if _under(name, ENGINE):
        return "engine"
    return "core"


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks (annotations only, never run)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(inner) for inner in ast.walk(node))
    return skipped


@cache
def imports(name: str) -> frozenset[str]:
    """Every absolute module name `name` imports, relative imports resolved; `from X import y`
    counts as importing `X.y` alone when `y` is a module (and `X` too when some name is not)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            submodules = {f"{module}.{a.name}" for a in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(module)
    found.discard(name)
    return frozenset(found)


def internal(name: str) -> set[str]:
    return {n for n in imports(name) if n in MODULES}


def cycles() -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(internal(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    return found


def test_no_import_cycles():
    found = cycles()
    detail = "; ".join(
        " <-> ".join(f"{m} (imports {sorted(internal(m) & set(c))})" for m in c) for c in found
    )
    assert not found, f"import cycles: {detail}"


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    # Guard against a finder that silently finds nothing: feed it a known cycle.
    fake = {"canfar_jlab.a": {"canfar_jlab.b"}, "canfar_jlab.b": {"canfar_jlab.a"}}
    monkeypatch.setattr(f"{__name__}.MODULES", {n: Path(n) for n in fake})
    monkeypatch.setattr(f"{__name__}.internal", lambda name: fake[name])
    assert cycles() == [["canfar_jlab.a", "canfar_jlab.b"]]


CORE = [name for name in MODULES if layer(name) == "core"]


@pytest.mark.parametrize("name", CORE)
def test_core_imports_no_front_door_and_only_the_engines_face(name):
    bad = {
        n
        for n in imports(name)
        if any(_under(n, door) for door in FRONT_DOORS)
        or n.startswith("jupyter_server")
        or (_under(n, ENGINE) and n != ENGINE)
    }
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", [n for n in MODULES if layer(n) == "engine"])
def test_engine_imports_no_jupyter_and_no_door(name):
    bad = {
        n
        for n in imports(name)
        if n.startswith(("jupyter", "IPython")) or any(_under(n, d) for d in FRONT_DOORS)
    }
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(REPLICA_SIDE))
def test_replica_programs_import_only_one_another(name):
    ours = {n for n in imports(name) if _under(n, "canfar_jlab")}
    assert ours <= REPLICA_SIDE, f"{name} imports {sorted(ours - REPLICA_SIDE)}"


def test_every_module_is_covered():
    # export_runner, launch_args and whatever is added next are checked as core modules.
    assert {"canfar_jlab.export_runner", "canfar_jlab.launch_args", "canfar_jlab.errors"} <= set(
        CORE
    )
    assert {layer(n) for n in MODULES} == {"root", "core", "door", "engine"}
    assert len(MODULES) == sum(1 for _ in PACKAGE.rglob("*.py"))


def test_the_check_sees_relative_and_lazy_imports():
    # Guard against a resolver that silently finds nothing.
    assert "canfar_jlab.models" in imports("canfar_jlab.live")
    assert "canfar_jlab.engine" in imports("canfar_jlab.credentials")  # inside a function
    assert "canfar_jlab.runs.snapshot" in imports("canfar_jlab.runs.rerun")


TESTS = Path(__file__).parent
# Test folders that are not a package: the top-level modules, and the exporter with the
# programs it copies into replicas.
NOT_PACKAGES = {"core", "export"}


def test_tests_mirror_the_packages():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders == packages | NOT_PACKAGES, "tests/ should hold one folder per package"
    top_level_tests = {p.name for p in TESTS.glob("test_*.py")}
    assert top_level_tests == {"test_architecture.py"}, "module tests go in tests/core"
