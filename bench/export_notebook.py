"""How long export takes, and what the batch runner adds to a replica's start.

Run: .venv/bin/python bench/export_notebook.py

Prints, for the example notebook and a generated 200-cell notebook:
- export_notebook() time against a plain nbconvert PythonExporter export of the same notebook
  (the floor: what `jupyter nbconvert --to python` does, minus writing files);
- check_notebook() time alone;
and the wall time to run a one-cell exported script with the runner against `python -c pass`
and `python -m IPython --quick` on the same script (the floors for any IPython-based runner).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbconvert import PythonExporter
from nbformat import v4

from canfar_jlab.export import check_notebook, export_notebook

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "reduce_fits.ipynb"


def timed(function, repeat: int) -> float:
    """Median seconds of `repeat` calls, after one warm-up call."""
    function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def big_notebook(folder: Path, cells: int) -> Path:
    sources = [
        "%time x = sum(range(100))",
        "!echo hello",
        "files = !ls\nprint(len(files))",
        "import os\nvalue = os.getcwd()\nprint(value)",
        "%%writefile out.txt\nsome text",
    ]
    notebook = v4.new_notebook(
        cells=[v4.new_code_cell(sources[i % len(sources)]) for i in range(cells)]
    )
    path = folder / "big.ipynb"
    nbformat.write(notebook, path)
    return path


def bench_export(label: str, notebook: Path, out: Path, repeat: int) -> None:
    plain = timed(lambda: PythonExporter().from_filename(str(notebook)), repeat)
    ours = timed(lambda: export_notebook(notebook, out), repeat)
    check = timed(lambda: check_notebook(notebook), repeat)
    print(
        f"{label:<28} export {ours * 1000:7.1f} ms   plain nbconvert {plain * 1000:7.1f} ms"
        f"   ratio {ours / plain:4.2f}   checks alone {check * 1000:6.1f} ms"
    )


def bench_start(folder: Path, repeat: int) -> None:
    notebook = folder / "one.ipynb"
    nbformat.write(v4.new_notebook(cells=[v4.new_code_cell("print('hi')")]), notebook)
    exported = export_notebook(notebook, folder / "run-one")

    def run(argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    floor = timed(lambda: run([sys.executable, "-c", "pass"]), repeat)
    ipython = timed(
        lambda: run(
            [sys.executable, "-m", "IPython", "--quick", "--no-banner", str(exported.script_path)]
        ),
        repeat,
    )
    runner = timed(lambda: run(exported.argv), repeat)
    print(
        f"{'replica start (1 cell)':<28} runner {runner * 1000:7.1f} ms   python -c pass "
        f"{floor * 1000:7.1f} ms   ipython --quick {ipython * 1000:7.1f} ms   "
        f"ratio to ipython {runner / ipython:4.2f}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        bench_export("example (14 cells)", EXAMPLE, folder / "run-example", repeat=20)
        bench_export("generated (200 code cells)", big_notebook(folder, 200), folder / "run-big", 5)
        bench_start(folder, repeat=5)


if __name__ == "__main__":
    main()
