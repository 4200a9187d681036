"""Give each replica its share of the work: `chunk()` (blocks) and `stripe()` (round-robin).

Same signatures and behaviour as the official `canfar.helpers.distributed` (1.5), so a notebook
may use either: both are generators (bad arguments raise only when you iterate), replicas are
numbered from 1, and `replica`/`total` default to the `REPLICA_ID`/`REPLICA_COUNT` environment
variables that every replica gets, or 1 of 1 when they are unset, so a notebook run
interactively gets everything.

One addition: `chunk(..., balanced=True)` spreads the remainder over the first replicas
(10 items over 4 replicas: 3, 3, 2, 2) where the official split gives it all to the last one
(2, 2, 2, 4; with 19 over 10 even 1, ..., 1, 10).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _from_env(name: str, value: int | None) -> int:
    if value is not None:
        return value
    raw = os.environ.get(name, "1")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None


def chunk(
    iterable: Iterable[T],
    replica: int | None = None,
    total: int | None = None,
    *,
    balanced: bool = False,
) -> Iterator[T]:
    """The `replica`-th of `total` contiguous blocks of `iterable` (read fully into a list).

    Raises ValueError (when iterated) if total < 1, replica < 1 or replica > total. With fewer
    items than replicas, replica r gets item r (1-based) if there is one. Otherwise each block
    has len // total items and, by default, the last replica also gets the remainder; with
    `balanced=True` the first len % total replicas get one extra item each instead.
    """
    replica = _from_env("REPLICA_ID", replica)
    total = _from_env("REPLICA_COUNT", total)
    items = list(iterable)
    if total <= 0:
        raise ValueError("total must be positive")
    if replica < 1:
        raise ValueError("replica must be >= 1 (1-based indexing expected)")
    if replica > total:
        raise ValueError("replica cannot exceed total")
    index = replica - 1
    size, remainder = divmod(len(items), total)
    if balanced:
        start = index * size + min(index, remainder)
        end = start + size + (1 if index < remainder else 0)
    elif size == 0:  # fewer items than replicas: at most one each
        start, end = index, index + 1
    else:
        start = index * size
        end = len(items) if replica == total else start + size
    yield from items[start:end]


def stripe(
    iterable: Iterable[T], replica: int | None = None, total: int | None = None
) -> Iterator[T]:
    """Every `total`-th item of `iterable`, starting at item `replica` (1-based); lazy.

    As in the official helper, a replica below 1 or above a positive total gets nothing, and a
    total below 1 (with a replica of at least 1) raises ValueError when iterated.
    """
    replica = _from_env("REPLICA_ID", replica)
    total = _from_env("REPLICA_COUNT", total)
    if replica < 1 or 0 < total < replica:
        return
    yield from itertools.islice(iterable, replica - 1, None, total)
