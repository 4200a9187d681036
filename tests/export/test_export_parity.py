"""A notebook run in a real kernel and the same notebook run as batch replicas print the same."""

from __future__ import annotations

import concurrent.futures
import csv
import json
import shutil
from functools import partial
from pathlib import Path

import pytest

from canfar_jlab import export

# These tests pin the script runner: the fallback for images without nbclient or ipykernel.
export_notebook = partial(export.export_notebook, runner="script")

EXAMPLE = Path(__file__).parents[2] / "examples" / "reduce_fits.ipynb"

# One cell per kind of magic or shell line a notebook may use. No language_info or kernelspec
# in the metadata: nbconvert's --to script cannot tell what such a notebook is; we can.
MAGIC_CELLS = [
    "%matplotlib inline\nimport os\nprint('start')",
    "%env CANFAR_TEST_FLAG=on\nprint(os.environ['CANFAR_TEST_FLAG'])",
    "%%time\ntotal = sum(range(1000))\nprint(total)",
    "y = %time 6 * 7\nprint('y =', y)",
    "%timeit -n 1 -r 1 sum(range(10))",
    "%%writefile note.txt\nfirst line\nsecond line",
    "!cat note.txt\n!echo 'from the shell' && echo 'to stderr' 1>&2",
    "files = !ls *.ipynb *.txt\nprint(sorted(files))\n"
    "print(type(files).__name__, files.n.splitlines()[0])",
    "os.makedirs('work', exist_ok=True)\n%cd work",
    "%pwd",
    "%cd -q ..\nprint(os.path.isdir('work'))",
    "%%bash\necho from bash\nls note.txt",
    "%%capture captured\nprint('hidden from the log')",
    "print(captured.stdout.strip())",
    "%pip --version",
    "display('text', 42)\n{'a': [1, 2]}",
    "from IPython.display import Markdown\ndisplay(Markdown('**bold**'))\nMarkdown('*result*')",
    "silenced = 'not shown'\nsilenced;",
    "import asyncio\nawait asyncio.sleep(0)\nprint('awaited')",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
    "fig, ax = plt.subplots()\nax.plot([3, 2])",
    "import pickle\nclass Point:\n    x = 3\nprint(__name__, pickle.loads(pickle.dumps(Point)).x)",
    "def last():\n    return 'last value'\nlast()",
]


def kernel_and_batch_stdout(helpers, notebook_name: str, cells, root: Path):
    """Copies of one notebook in two folders: one run in a kernel, one exported and run."""
    # Same folder name on both sides: a cell prints it.
    kernel_nb = helpers.write_notebook(root / "kernel" / "notebooks" / notebook_name, cells)
    batch_nb = helpers.write_notebook(root / "batch" / "notebooks" / notebook_name, cells)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        kernel = pool.submit(helpers.kernel_stdout, kernel_nb)  # overlap the kernel's start
        exported = export_notebook(batch_nb, root / "run")
        assert exported.problems == []
        batch = helpers.run_batch(exported.argv, cwd=root)
        kernel_text = kernel.result()
    # The replica ran in its own folder (replicas/1), which mirrors the notebook's.
    return kernel_text, batch, kernel_nb.parent, root / "run" / "replicas" / "1"


def test_magics_and_shell_lines_print_what_the_kernel_printed(helpers, tmp_path):
    kernel_text, batch, kernel_dir, batch_dir = kernel_and_batch_stdout(
        helpers, "magics.ipynb", MAGIC_CELLS, tmp_path
    )
    assert batch.returncode == 0, batch.stderr
    kernel_text = helpers.normalize(kernel_text, kernel_dir)
    batch_text = helpers.normalize(batch.stdout, batch_dir)
    assert batch_text == kernel_text
    for expected in [
        "env: CANFAR_TEST_FLAG=on\non\n",
        "499500\nCPU times: <time>\nWall time: <time>\n",
        "y = 42\n",
        "<timeit>\n",
        "Writing note.txt\n",
        "first line\nsecond line\nfrom the shell\nto stderr\n",
        "['magics.ipynb', 'note.txt']\nSList magics.ipynb\n",
        "'<folder>/work'\n",
        "from bash\nnote.txt\n",
        "hidden from the log\n",
        "'text'\n42\n{'a': [1, 2]}\n",
        "<IPython.core.display.Markdown object>\n<IPython.core.display.Markdown object>\n",
        "awaited\n<Figure size 640x480 with 1 Axes>\n",
        "[<matplotlib.lines.Line2D at 0x?>]\n<Figure size 640x480 with 1 Axes>\n",
        "__main__ 3\n",  # notebook classes pickle, as in a kernel
        "'last value'\n",
    ]:
        assert expected in batch_text
    assert "not shown" not in batch_text  # a trailing ; silences a cell's value, as in kernels


def copy_example(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return Path(shutil.copy(EXAMPLE, folder / EXAMPLE.name))


def test_example_notebook_runs_in_a_kernel_and_as_one_replica_alike(helpers, tmp_path):
    kernel_nb = copy_example(tmp_path / "kernel")
    batch_nb = copy_example(tmp_path / "batch")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        kernel = pool.submit(helpers.kernel_stdout, kernel_nb)
        exported = export_notebook(batch_nb, tmp_path / "run")
        batch = helpers.run_batch(exported.argv)
        kernel_text = kernel.result()
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout == kernel_text
    assert "replica 1 measures 10 of 10 images\n" in kernel_text
    assert "star counts that disagree with the truth: 0\n" in kernel_text
    assert (kernel_nb.parent / "outputs" / "measurements.csv").exists()
    # Relative writes land in the replica's own folder, not beside the notebook.
    assert not (batch_nb.parent / "outputs").exists()
    assert (tmp_path / "run" / "replicas" / "1" / "outputs" / "measurements.csv").exists()


def test_example_as_four_replicas_measures_every_file_exactly_once(helpers, tmp_path):
    notebook = copy_example(tmp_path / "notebook")
    outputs = tmp_path / "outputs"
    exported = export_notebook(notebook, tmp_path / "run")
    assert exported.ok
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(
            pool.map(
                lambda replica: helpers.run_batch(
                    exported.argv,
                    env={
                        "REPLICA_ID": str(replica),
                        "REPLICA_COUNT": "4",
                        "CANFAR_RUN_OUTPUTS": str(outputs),
                    },
                ),
                range(1, 5),
            )
        )
    for replica, run in enumerate(runs, start=1):
        assert run.returncode == 0, f"replica {replica}: {run.stderr}"
        assert f"replica {replica} of 4\n" in run.stdout

    measured = {}
    for replica in range(1, 5):
        rows = json.loads((outputs / f"measurements-{replica}-of-4.json").read_text())
        assert [row["replica"] for row in rows] == [replica] * len(rows)
        for row in rows:
            assert row["file"] not in measured, f"{row['file']} measured twice"
            measured[row["file"]] = row
    assert sorted(measured) == [f"field-{i:03d}.fits" for i in range(10)]
    assert [
        len(json.loads((outputs / f"measurements-{r}-of-4.json").read_text())) for r in range(1, 5)
    ] == [3, 3, 2, 2]  # balanced chunks
    assert all(row["stars"] == row["true_stars"] for row in measured.values())
    with open(outputs / "measurements.csv", newline="") as table:
        assert sorted(row["file"] for row in csv.DictReader(table)) == sorted(measured)


@pytest.mark.parametrize("n_images", [3])
def test_example_parameters_override_the_defaults(helpers, tmp_path, n_images):
    notebook = copy_example(tmp_path / "notebook")
    exported = export_notebook(notebook, tmp_path / "run", parameters={"n_images": n_images})
    run = helpers.run_batch(exported.argv, env={"CANFAR_RUN_OUTPUTS": str(tmp_path / "out")})
    assert run.returncode == 0, run.stderr
    assert f"replica 1 measures {n_images} of {n_images} images\n" in run.stdout
