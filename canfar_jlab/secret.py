"""Credential values that never show themselves, and the token expiry they come with.

Shared by `credentials.py` (which finds them) and `oidc.py` (which renews them), so neither
imports the other for them.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from typing import Any


class Secret:
    """A credential string that never shows itself in a repr, str, log record or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("an empty secret")
        self._value = value

    def reveal(self) -> str:
        """The value, for building an outgoing header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not picklable")


def epoch_time(value: Any) -> datetime | None:
    """A token's `expiry` field (seconds since the epoch) as a UTC time; None if unreadable."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
