"""The CLI tests: against the fake Skaha (`cli_fake`, tests/fixtures_client.py) and against
the test engine (`cli`, `cli_here`: tests/fixtures_cli.py, a suite-wide plugin)."""

from fixtures_client import *  # noqa: F403 - fixtures, registered by name
