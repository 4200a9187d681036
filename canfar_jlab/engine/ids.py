"""Session ids shaped like Skaha's: 8 characters, `[a-z][a-z0-9]{7}`."""

from __future__ import annotations

import re
import secrets
import string

_FIRST = string.ascii_lowercase
_REST = string.ascii_lowercase + string.digits
SESSION_ID = re.compile(r"[a-z][a-z0-9]{7}")


def new_session_id() -> str:
    # One draw of 64 random bits spelled in the id's alphabet (a choice per character cost a
    # system call each; the bias of 2**64 over 26 * 36**7 values is below one part in 10**7).
    bits = secrets.randbits(64)
    chars = [_FIRST[bits % 26]]
    bits //= 26
    for _ in range(7):
        bits, digit = divmod(bits, 36)
        chars.append(_REST[digit])
    return "".join(chars)
