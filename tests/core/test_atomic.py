"""The core's one atomic writer (canfar_jlab/atomic.py) and its one check for characters Skaha
cannot pass to a replica (models.unsafe_char)."""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import pytest

from canfar_jlab.atomic import write_atomically
from canfar_jlab.models import unsafe_char

PACKAGE = Path(__file__).parents[2] / "canfar_jlab"
# Who else may call os.replace, and why: the programs copied into a replica import nothing of
# the package; actions.py renames an archived log (a move, not a write); the engine keeps its
# own 0600 files (engine/sessionfiles.py) and its token (engine/daemon.py); control rotates
# its log.
OS_REPLACE_ALLOWED = {
    "atomic.py",
    "replica_report.py",
    "kernel_runner.py",
    "runs/actions.py",
    "engine/sessionfiles.py",
    "engine/daemon.py",
    "engine/control.py",
}


def test_replaces_the_file_with_the_mode_asked(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("old")
    write_atomically(path, "new ✓", mode=0o600, durable=True)
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.yaml"]


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    target.mkdir()  # os.replace cannot put a file over a folder that holds something
    (target / "keep").write_text("kept")
    with pytest.raises(OSError):
        write_atomically(target, "new")
    assert (target / "keep").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_no_other_core_module_writes_files_by_its_own_rename():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            call = node.func if isinstance(node, ast.Call) else None
            if isinstance(call, ast.Attribute) and call.attr == "replace":
                if isinstance(call.value, ast.Name) and call.value.id == "os":
                    if where not in OS_REPLACE_ALLOWED:
                        found.append(f"{where}:{node.lineno}")
    assert not found, f"os.replace outside the one writer: {found}"


@pytest.mark.parametrize(
    ("value", "options", "shown"),
    [
        ("/home/me/runs", {}, None),
        ("a b", {}, None),
        ("a b", {"whitespace": True}, "a space"),
        ("a\tb", {"whitespace": True}, "'\\t'"),
        ("cost$5", {}, "'$'"),
        ('say "hi"', {}, "'\"'"),
        ("C:\\x", {}, "'\\\\'"),
        ("k=v", {}, None),
        ("k=v", {"equals": True}, "'='"),
    ],
)
def test_unsafe_char(value, options, shown):
    assert unsafe_char(value, **options) == shown
