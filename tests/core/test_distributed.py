"""canfar_jlab.distributed against the official canfar helpers, and the properties users need."""

from __future__ import annotations

import itertools

import pytest
from canfar.helpers import distributed as official

from canfar_jlab.distributed import chunk, stripe

SIZES = range(0, 24)
TOTALS = range(-1, 9)
REPLICAS = range(-1, 10)


def outcome(function, items, replica, total):
    """The list a helper yields, or the ValueError message it raises while iterating."""
    try:
        return list(function(items, replica, total))
    except ValueError as error:
        return f"ValueError: {error}"


@pytest.mark.parametrize("name", ["chunk", "stripe"])
def test_same_results_as_official_helpers_over_a_grid(name):
    ours, theirs = {"chunk": (chunk, official.chunk), "stripe": (stripe, official.stripe)}[name]
    mismatches = []
    for size, total, replica in itertools.product(SIZES, TOTALS, REPLICAS):
        items = list(range(size))
        expected = outcome(theirs, items, replica, total)
        got = outcome(ours, items, replica, total)
        if got != expected:
            mismatches.append((size, replica, total, expected, got))
    assert mismatches == []


@pytest.mark.parametrize("name", ["chunk", "stripe"])
def test_same_results_for_one_shot_iterators(name):
    ours, theirs = {"chunk": (chunk, official.chunk), "stripe": (stripe, official.stripe)}[name]
    for size, total in itertools.product(range(0, 12), range(1, 5)):
        for replica in range(1, total + 1):
            assert list(ours(iter(range(size)), replica, total)) == list(
                theirs(iter(range(size)), replica, total)
            )


@pytest.mark.parametrize(
    ("env", "expected_chunk", "expected_stripe"),
    [
        ({}, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),
        ({"REPLICA_ID": "2", "REPLICA_COUNT": "3"}, [1], [1, 4]),
        ({"REPLICA_ID": "3", "REPLICA_COUNT": "3"}, [2, 3, 4], [2]),
        ({"REPLICA_ID": "2"}, "ValueError: replica cannot exceed total", []),
    ],
)
def test_defaults_come_from_the_replica_environment(
    monkeypatch, env, expected_chunk, expected_stripe
):
    monkeypatch.delenv("REPLICA_ID", raising=False)
    monkeypatch.delenv("REPLICA_COUNT", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for function, expected in ((chunk, expected_chunk), (stripe, expected_stripe)):
        assert outcome(function, range(5), None, None) == expected
    assert outcome(official.chunk, range(5), None, None) == expected_chunk
    assert outcome(official.stripe, range(5), None, None) == expected_stripe


def test_non_integer_environment_is_a_value_error(monkeypatch):
    monkeypatch.setenv("REPLICA_ID", "two")
    monkeypatch.setenv("REPLICA_COUNT", "3")
    for function in (chunk, stripe, official.chunk, official.stripe):
        with pytest.raises(ValueError):
            list(function(range(5)))
    with pytest.raises(ValueError, match="REPLICA_ID must be an integer, not 'two'"):
        list(chunk(range(5)))


def test_errors_wait_until_iteration_like_the_official_generators():
    lazy = chunk(range(5), 9, 3)  # replica > total, but nothing is checked yet
    with pytest.raises(ValueError, match="replica cannot exceed total"):
        next(lazy)


def test_stripe_is_lazy_on_an_endless_iterable():
    assert list(itertools.islice(stripe(itertools.count(), 2, 3), 4)) == [1, 4, 7, 10]


@pytest.mark.parametrize("balanced", [False, True])
def test_every_item_exactly_once_and_in_order(balanced):
    for size, total in itertools.product(range(0, 40), range(1, 12)):
        items = [f"file-{i}.fits" for i in range(size)]
        blocks = [list(chunk(items, r, total, balanced=balanced)) for r in range(1, total + 1)]
        assert [item for block in blocks for item in block] == items
        stripes = [list(stripe(items, r, total)) for r in range(1, total + 1)]
        assert sorted(item for part in stripes for item in part) == sorted(items)
        for part in stripes:
            assert part == [item for item in items if item in part]  # order kept


def test_balanced_blocks_differ_by_at_most_one():
    for size, total in itertools.product(range(0, 40), range(1, 12)):
        sizes = [
            len(list(chunk(range(size), r, total, balanced=True))) for r in range(1, total + 1)
        ]
        assert max(sizes) - min(sizes) <= 1
        assert sizes == sorted(sizes, reverse=True)  # the extra items go to the first replicas
    assert [len(list(chunk(range(10), r, 4, balanced=True))) for r in range(1, 5)] == [3, 3, 2, 2]
    assert [len(list(chunk(range(10), r, 4))) for r in range(1, 5)] == [2, 2, 2, 4]


def test_balanced_validates_like_the_default():
    for replica, total, message in [
        (1, 0, "total must be positive"),
        (0, 3, ">= 1"),
        (4, 3, "exceed"),
    ]:
        with pytest.raises(ValueError, match=message):
            list(chunk(range(10), replica, total, balanced=True))
