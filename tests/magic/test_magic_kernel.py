"""The magic in a real ipykernel, driven as JupyterLab drives it (execute requests over ZMQ,
"interrupt kernel" as the kernel manager sends it): output arrives in the cell that ran the
magic, tables as HTML with a text/plain fallback, and an interrupt stops `logs -f` cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from export.conftest import without_markers
from jupyter_client.manager import KernelManager, start_new_kernel

TIMEOUT = 60


@pytest.fixture
def kernel(runs_root, local_engine) -> Iterator[tuple[KernelManager, object]]:
    # The kernel inherits the test session's CANFAR_JLAB_HOME and CANFAR_JLAB_RUNS, so it finds
    # the same local engine and runs folder as every other front door.
    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=TIMEOUT)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(kernel, code: str, interrupt_when: str | None = None) -> tuple[str, list[tuple]]:
    """Run `code`; its reply status and outputs as (kind, text or mime types). With
    `interrupt_when`, interrupt the kernel once that text has been printed."""
    manager, client = kernel
    msg_id = client.execute(code)
    outputs: list[tuple] = []
    interrupted = False
    while True:
        message = client.get_iopub_msg(timeout=TIMEOUT)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            outputs.append((content["name"], content["text"]))
        elif kind in ("display_data", "execute_result"):
            outputs.append((kind, sorted(content["data"])))
        elif kind == "error":
            outputs.append(("error", content["ename"]))
        elif kind == "status" and content["execution_state"] == "idle":
            break
        printed = "".join(text for name, text in outputs if name == "stdout")
        if interrupt_when and not interrupted and interrupt_when in printed:
            manager.interrupt_kernel()
            interrupted = True
    reply = client.get_shell_msg(timeout=TIMEOUT)
    return reply["content"]["status"], outputs


def stdout_of(outputs: list[tuple]) -> str:
    return "".join(text for name, text in outputs if name == "stdout")


def test_the_magic_in_a_real_kernel(kernel):
    status, outputs = execute(
        kernel, "%load_ext canfar_jlab\n%config CanfarMagics.poll_interval = 0.1"
    )
    assert (status, outputs) == ("ok", [])

    status, outputs = execute(
        kernel,
        "%%canfar -r 2 --name in-kernel\nimport os\nprint('replica', os.environ['REPLICA_ID'])",
    )
    assert status == "ok"
    assert outputs == [("display_data", ["text/html", "text/plain"])]

    status, outputs = execute(kernel, "%canfar logs in-kernel -f")
    assert status == "ok"
    assert sorted(without_markers(stdout_of(outputs)).splitlines()) == [
        "[1] replica 1",
        "[2] replica 2",
    ]
    assert outputs[-1] == ("display_data", ["text/html", "text/plain"])

    execute(
        kernel,
        "%%canfar --name sleeper\nimport time\nprint('started', flush=True)\ntime.sleep(600)",
    )
    status, outputs = execute(kernel, "%canfar logs sleeper -f", interrupt_when="started")
    assert status == "ok"  # not an error: no traceback, the cell ends normally
    assert [(kind, without_markers(text)) for kind, text in outputs if without_markers(text)] == [
        ("stdout", "started\n"),
        ("stdout", "interrupted: stopped following run sleeper; it keeps running\n"),
    ]
    status, outputs = execute(kernel, "%canfar delete sleeper")
    assert status == "ok" and [kind for kind, _ in outputs] == ["display_data"]

    status, outputs = execute(kernel, "%canfar logs no-such-run")
    assert status == "ok"
    assert [name for name, _ in outputs] == ["stderr"]
    assert outputs[0][1].startswith("canfar: no run named 'no-such-run'")
