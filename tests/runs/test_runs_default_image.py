"""On CANFAR, a run's default image is the image of the Skaha session JupyterLab runs in (read
from Skaha by $skaha_sessionid), shown by preview (the form) and used by launch; a Skaha
look-alike on 127.0.0.1 stands in for CANFAR."""

from __future__ import annotations

import pytest
from fake_skaha import FakeSkaha
from runs_support import write_notebook

from canfar_jlab.credentials import Credentials, Secret
from canfar_jlab.runs import LaunchRefused, LaunchRequest, RunStore, launch, preview, sites
from canfar_jlab.skaha import RetryPolicy, SkahaClient

TOKEN = "fake-token-default-image"
LAB_IMAGE = "images.canfar.net/skaha/astroml-notebook:24.07"


def client_for(fake: FakeSkaha) -> SkahaClient:
    credentials = Credentials(
        base_url=fake.url, source="a test token", kind="environment", token=Secret(TOKEN)
    )
    return SkahaClient(credentials, retry=RetryPolicy(attempts=2, base_delay=0.01))


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv("CANFAR_JLAB_IMAGE", raising=False)
    monkeypatch.setattr(sites, "_session_images", {})


async def test_the_sessions_own_image_is_the_default(tmp_path, monkeypatch):
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    store = RunStore(tmp_path / "runs")
    with FakeSkaha(TOKEN) as fake:
        lab = fake.add_session("lab", type="notebook", image=LAB_IMAGE)
        monkeypatch.setenv("skaha_sessionid", lab)
        async with client_for(fake) as client:
            shown = await preview(LaunchRequest(notebook=str(notebook)), store, client)
            assert shown.image == LAB_IMAGE  # what the form shows as the default
            run = await launch(LaunchRequest(notebook=str(notebook)), client, store)
            assert run.spec.image == LAB_IMAGE
            # An explicit image, or $CANFAR_JLAB_IMAGE, still wins.
            monkeypatch.setenv("CANFAR_JLAB_IMAGE", "images.canfar.net/skaha/base:1")
            shown = await preview(LaunchRequest(notebook=str(notebook)), store, client)
            assert shown.image == "images.canfar.net/skaha/base:1"
        reads = fake.recorded("GET", f"/session/{lab}")
    assert len(reads) == 1  # read once, then remembered


async def test_a_session_this_service_does_not_know_is_no_default(tmp_path, monkeypatch):
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print(1)"])
    monkeypatch.setenv("skaha_sessionid", "zz999999")  # a session on another site
    with FakeSkaha(TOKEN) as fake:
        async with client_for(fake) as client:
            with pytest.raises(LaunchRefused, match="choose an image to run on"):
                await launch(LaunchRequest(notebook=str(notebook)), client, RunStore(tmp_path))
