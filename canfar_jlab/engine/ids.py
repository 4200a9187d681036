"""Session ids shaped like Skaha's: 8 characters, `[a-z][a-z0-9]{7}`."""

from __future__ import annotations

import re
import secrets
import string

_FIRST = string.ascii_lowercase
_REST = string.ascii_lowercase + string.digits
SESSION_ID = re.compile(r"[a-z][a-z0-9]{7}")


def new_session_id() -> str:
    return secrets.choice(_FIRST) + "".join(secrets.choice(_REST) for _ in range(7))
