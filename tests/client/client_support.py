"""Shared by the client tests: the test token, quick retries, credentials, the leak watch."""

from __future__ import annotations

import secrets

from canfar_jlab.credentials import Credentials, Secret, normalise_base_url
from canfar_jlab.skaha import RetryPolicy

TEST_TOKEN = "tok-" + secrets.token_hex(16)
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=2.0)


def token_credentials(url: str, token: str = TEST_TOKEN, **fields: object) -> Credentials:
    return Credentials(
        base_url=normalise_base_url(url),
        source="the test's token",
        kind="explicit",
        token=Secret(token),
        renew_hint="ask the test for a new token",
        **fields,  # type: ignore[arg-type]
    )


class LeakWatch:
    """Everything the tests saw that a user could see: log lines, error texts, CLI output."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.secrets: set[str] = {TEST_TOKEN}

    def add(self, kind: str, text: object) -> None:
        self.texts.append((kind, str(text)))

    def add_error(self, exc: BaseException) -> None:
        self.add("exception", f"{type(exc).__name__}: {exc}")
        self.add("exception repr", repr(exc))

    def leaked(self, since: int = 0) -> list[tuple[str, str]]:
        return [
            (kind, text)
            for kind, text in self.texts[since:]
            if any(secret in text for secret in self.secrets)
        ]

    def kinds(self) -> set[str]:
        return {kind.split(" ")[0] for kind, _ in self.texts}
