"""Until tests/conftest.py lists "fixtures_engine" in pytest_plugins, bring the fixtures in here."""

from fixtures_engine import *  # noqa: F403
