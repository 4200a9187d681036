"""The Skaha client's fixtures (tests/fixtures_client.py)."""

from fixtures_client import *  # noqa: F403 - fixtures, registered by name
