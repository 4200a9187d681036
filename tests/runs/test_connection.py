"""The one connection helper (canfar_jlab/runs/connection.py), against the misbehaving Skaha
fake over real HTTP (tests/fake_skaha.py)."""

from __future__ import annotations

import asyncio
import time

from fake_skaha import FakeSkaha, Status

from canfar_jlab.credentials import Credentials, Secret
from canfar_jlab.runs import Connection
from canfar_jlab.skaha import RetryPolicy, SkahaClient

TOKEN = "fake-token-connection-0123456789"


async def test_a_call_whose_client_another_call_renewed_goes_on_with_the_new_one():
    """Two calls share the connection's client. One finds the engine restarted and renews the
    client (closing the old one) while the other waits to retry on it: that one goes on with
    the new client instead of failing with "the client has been closed" (a 500 on a preview
    right after `canfar-jlab engine stop && canfar-jlab engine start`)."""
    with FakeSkaha(TOKEN) as fake:
        credentials = Credentials(
            base_url=fake.url, source="a test token", kind="environment", token=Secret(TOKEN)
        )
        slow_retry = RetryPolicy(attempts=3, base_delay=2.0, max_delay=2.0)  # waits >= 1 s
        connection = Connection(
            resolve=lambda url: credentials,
            client=lambda creds: SkahaClient(creds, retry=slow_retry),
        )
        fake.add_session("job-1")
        fake.fail_next("GET session", Status(503, "restarting"))
        async with connection:
            first = await connection.connect()
            listing = asyncio.ensure_future(connection.list_sessions())
            deadline = time.monotonic() + 10
            while not fake.recorded("GET", "/session"):  # its first try failed: it waits
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await connection.reset(first)  # what the other call does on a refusal
            sessions = await asyncio.wait_for(listing, 20)
            assert first.closed and connection.client is not first
    assert [s.name for s in sessions] == ["job-1"]
