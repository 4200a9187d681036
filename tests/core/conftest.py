"""The Skaha client's fixtures (tests/fixtures_client.py)."""

from fixtures_client import (  # noqa: F401 - fixtures, registered by name
    cli_fake,
    fake,
    home,
    leaks,
    make_client,
    other_host,
    raises,
    watch_for_leaks,
)
