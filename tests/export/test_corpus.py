"""The corpus (tests/export/corpus): each notebook aims at one behaviour of a notebook in a
kernel. Each runs on the real local engine as 1 and as 2 replicas, and each replica's printed
output (its archived log, marker lines and the runner's own `canfar-jlab:` lines left out)
must equal what nbclient's own execution of the notebook printed: its stream outputs (a
carriage-return line as its last state), the text/plain of its results and displays, and the
traceback of its errors, in order.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from export.conftest import normalize
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from canfar_jlab.credentials import engine_credentials
from canfar_jlab.kernel_runner import MARKER_PREFIX
from canfar_jlab.runs import LaunchRequest, RunStore, follow_run, launch
from canfar_jlab.skaha import SkahaClient

CORPUS = Path(__file__).parent / "corpus"
NOTEBOOKS = sorted(path.name for path in (CORPUS / "notebooks").glob("*.ipynb"))
NEEDS = {  # notebook -> module its kernel needs (test extra: ipywidgets, tqdm, bash_kernel)
    "widgets.ipynb": "ipywidgets",
    "interact.ipynb": "ipywidgets",
    "tqdm_bar.ipynb": "tqdm",
    "bash_kernel.ipynb": "bash_kernel",
}
FAILS = {"error_stops.ipynb": (2, "IndexError: list index out of range")}
PLOTS = {"plot_show.ipynb", "plot_result.ipynb"}
# A display updated later: the log shows each value as it came, the notebook only the last.
UPDATED = {"display_updates.ipynb"}
# parameters.ipynb: one replica with -p, two as a sweep (one value each)
PARAMETERS = {"sigma": 5.0, "label": "one"}
SWEEP = {"sigma": [3.0, 4.0], "label": "swept"}
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def test_the_corpus_has_at_least_fifteen_notebooks():
    assert len(NOTEBOOKS) >= 15


# ---- what nbclient's own execution prints ------------------------------------------------------


def collapse(text: str) -> str:
    """A stream as a terminal shows it: each line's text after its last carriage return."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line[line.rfind("\r") + 1 :] for line in lines)


def printed(notebook: nbformat.NotebookNode) -> str:
    widgets = (notebook.metadata.get("widgets") or {}).get(WIDGET_STATE, {}).get("state", {})
    out: list[str] = []
    stream: list[str] = []  # consecutive messages of one stream, joined as the browser does

    def end_stream() -> None:
        if stream:
            out.append(collapse("".join(stream)))
            stream.clear()

    def show(outputs: list, name: str | None = None) -> str | None:
        for output in outputs:
            kind = output["output_type"]
            if kind == "stream":
                if name is not None and output["name"] != name:
                    end_stream()
                name = output["name"]
                stream.append(output["text"])
                continue
            end_stream()
            name = None
            data = output.get("data", {})
            view = data.get("application/vnd.jupyter.widget-view+json")
            if view:  # what Output widgets inside it captured came first (interact's result)
                show(captured(view["model_id"]))
                end_stream()
            if kind in ("display_data", "execute_result") and "text/plain" in data:
                text = data["text/plain"]
                out.append(text if text.endswith("\n") else text + "\n")
            elif kind == "error":
                out.append(ANSI.sub("", "\n".join(output["traceback"])) + "\n")
        return name

    def captured(model_id: str) -> list:
        state = widgets.get(model_id, {}).get("state", {})
        found = list(state.get("outputs", []))
        for child in state.get("children", []):
            found += captured(child.removeprefix("IPY_MODEL_"))
        return found

    for cell in notebook.cells:
        show(cell.get("outputs", []))
        end_stream()
    return "".join(out)


def with_parameters(notebook: nbformat.NotebookNode, values: dict) -> None:
    """Papermill's injection, written here independently of the runner's."""
    at = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    source = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(at + 1, cell)


async def nbclient_run(path: Path, values: dict | None = None) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    if values:
        with_parameters(notebook, values)
    client = NotebookClient(
        notebook,
        kernel_name=notebook.metadata.get("kernelspec", {}).get("name", "python3"),
        timeout=120,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        await client.async_execute()
    except CellExecutionError:
        pass  # the outputs up to the failing cell, traceback included, are what it printed
    return notebook


# ---- the replicas' side -------------------------------------------------------------------------


def replica_printed(log: str) -> str:
    return "".join(
        line
        for line in log.splitlines(keepends=True)
        if not line.startswith(MARKER_PREFIX) and not line.startswith("canfar-jlab: ")
    )


def text_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        o.get("text") or o.get("data", {}).get("text/plain", "")
        for c in notebook.cells
        for o in c.get("outputs", [])
    ]


def clean(text: str) -> str:
    """What may differ between two runs: addresses, timings."""
    return normalize(text)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Two copies of the corpus: one launched, one run by nbclient for the reference; and a
    Jupyter path with a bash kernelspec when bash_kernel is installed."""
    root = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS, root / "launched")
    shutil.copytree(CORPUS, root / "reference")
    kernels = root / "jupyter" / "kernels" / "bash"
    kernels.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "bash_kernel", "-f", "{connection_file}"],
        "display_name": "Bash",
        "language": "bash",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    return {"root": root, "jupyter": root / "jupyter"}


@pytest.mark.parametrize("name", NOTEBOOKS)
async def test_each_replica_prints_what_nbclient_printed(
    name, corpus, engine, tmp_path, monkeypatch
):
    needed = NEEDS.get(name)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{needed} is not installed (pyproject's test extra has it)")
    monkeypatch.setenv("JUPYTER_PATH", str(corpus["jupyter"]))  # the local engine's check
    launched = corpus["root"] / "launched" / "notebooks" / name
    reference_nb = corpus["root"] / "reference" / "notebooks" / name
    store = RunStore(tmp_path / "runs")
    env = {"JUPYTER_PATH": str(corpus["jupyter"])}
    if os.environ.get("PYTHONPATH"):  # the engine cleans replicas' env: they see what we see
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    one = {"parameters": PARAMETERS} if name == "parameters.ipynb" else {}
    two = {"parameters": SWEEP, "sweep": True} if name == "parameters.ipynb" else {"replicas": 2}

    async with SkahaClient(engine_credentials(engine.home, start=False)) as client:
        runs = [
            await launch(LaunchRequest(notebook=str(launched), env=env, **one), client, store),
            await launch(LaunchRequest(notebook=str(launched), env=env, **two), client, store),
        ]
        references = asyncio.gather(
            *[
                nbclient_run(reference_nb, values)
                for values in (
                    [PARAMETERS, {"sigma": 3.0, "label": "swept"}, {"sigma": 4.0, "label": "swept"}]
                    if name == "parameters.ipynb"
                    else [None]
                )
            ]
        )
        ended = await asyncio.wait_for(
            asyncio.gather(*(follow_run(r.name, client, store, interval=0.2) for r in runs)), 240
        )
        expected_notebooks = await references

    replicas = [(ended[0], 1), (ended[1], 1), (ended[1], 2)]
    for position, (run, index) in enumerate(replicas):
        replica = run.replica(index)
        reference = expected_notebooks[position if name == "parameters.ipynb" else 0]
        folder = Path(run.folder)
        log = (folder / replica.log).read_text()
        status = json.loads((folder / "replicas" / str(index) / "status.json").read_text())
        assert status["runner"] == "nbclient"
        assert status["replica"] == index and status["count"] == len(run.replicas)
        got, want = clean(replica_printed(log)), clean(printed(reference))
        if name in FAILS:
            cell, error = FAILS[name]
            assert run.state == "failed"
            assert status["failed_cell"]["index"] == cell and status["error"] == error
            assert f"canfar-jlab: stopped at code cell {cell} ({error})" in log
        else:
            assert run.state == "completed", log
            assert (status["state"], status["exit_code"]) == ("completed", 0)
        assert log.count(MARKER_PREFIX) >= 1
        executed = nbformat.read(folder / "replicas" / str(index) / "executed.ipynb", 4)
        if name in UPDATED:
            # every value the display took, in order, and the notebook keeps the last one
            assert got == "'first'\n" + want
            assert text_outputs(executed) == text_outputs(reference)
        else:
            assert got == want, f"{name}, replica {index} of {run.name}"
        if name in PLOTS:
            images = [o for c in executed.cells for o in c.get("outputs", []) if "data" in o]
            assert any("image/png" in o["data"] for o in images)
        if name == "parameters.ipynb":
            tags = [c.metadata.get("tags", []) for c in executed.cells]
            assert sum("injected-parameters" in t for t in tags) == 1
            assert status["parameters"] == run.spec.parameters | (
                run.spec.sweep[index - 1] if run.spec.sweep else {}
            )
        if name == "relative_io.ipynb":
            assert sorted(status["files"]) == ["out/table.csv", "result.txt"]
            written = folder / "replicas" / str(index) / "result.txt"
            assert written.read_text() == "written by one replica" and not written.is_symlink()
    if name == "parameters.ipynb":
        assert ended[1].spec.sweep == [{"sigma": 3.0}, {"sigma": 4.0}]
        assert ended[1].spec.parameters == {"label": "swept"}
    if name == "relative_io.ipynb":
        assert not (launched.parent / "result.txt").exists()  # nothing beside the notebook
