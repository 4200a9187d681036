"""The Skaha client's fixtures (tests/fixtures_client.py), and the test engine's credentials."""

import pytest
from fixtures_client import *  # noqa: F403 - fixtures, registered by name

from canfar_jlab.credentials import engine_credentials


@pytest.fixture(scope="module")
def creds():
    """The test engine's credentials (the live hub's tests)."""
    return engine_credentials()
