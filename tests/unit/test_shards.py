"""Packing a night's organisations into shards by input bytes (flows/shards.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.shards import DEFAULT_SHARDS, Shard, pack_shards, shard_count


def test_equal_sizes_spread_evenly_and_keep_inbox_order() -> None:
    sizes = [(f"org{i}", 100) for i in range(6)]
    shards = pack_shards(sizes, 3)
    assert [s.bytes for s in shards] == [200, 200, 200]
    assert sorted(o for s in shards for o in s.orgs) == [o for o, _ in sizes]
    for shard in shards:  # each shard lists its organisations in the inbox's order
        assert list(shard.orgs) == sorted(shard.orgs)


def test_a_very_large_organisation_is_a_shard_of_its_own() -> None:
    sizes = [("a-small", 10), ("big", 10_000), ("c-small", 20), ("d-small", 30), ("e", 5)]
    shards = pack_shards(sizes, 2)
    assert Shard(("big",), 10_000) in shards
    others = next(s for s in shards if s.orgs != ("big",))
    assert others.orgs == ("a-small", "c-small", "d-small", "e")
    assert others.bytes == 65


def test_never_more_shards_than_organisations_and_none_empty() -> None:
    shards = pack_shards([("a", 0), ("b", 0)], 5)
    assert len(shards) == 2
    assert all(s.orgs for s in shards)
    assert pack_shards([], 3) == []


def test_the_key_names_the_content() -> None:
    sizes = [("acme", 5), ("globex", 7), ("initech", 3)]
    first, again = pack_shards(sizes, 2), pack_shards(list(sizes), 2)
    assert [s.key for s in first] == [s.key for s in again]
    assert len({s.key for s in first}) == len(first)
    assert Shard(("acme",), 1).key != Shard(("globex",), 1).key


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one shard"):
        pack_shards([("a", 1)], 0)
    with pytest.raises(ValueError, match="twice"):
        pack_shards([("a", 1), ("a", 2)], 2)
    with pytest.raises(ValueError, match="negative"):
        pack_shards([("a", -1)], 1)


def test_shard_count_follows_request_then_workers_then_default() -> None:
    assert shard_count(orgs=100, workers=3, requested=7) == 7
    assert shard_count(orgs=100, workers=3) == 6
    assert shard_count(orgs=100, workers=0) == DEFAULT_SHARDS
    assert shard_count(orgs=2, workers=8) == 2
    assert shard_count(orgs=0, workers=0) == 1


@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=12),
)
def test_every_organisation_once_and_the_longest_shard_within_the_greedy_bound(
    bytes_per_org: list[int], count: int
) -> None:
    sizes = [(f"org{i:02d}", b) for i, b in enumerate(bytes_per_org)]
    shards = pack_shards(sizes, count)
    assert sorted(o for s in shards for o in s.orgs) == [o for o, _ in sizes]
    assert sum(s.bytes for s in shards) == sum(bytes_per_org)
    assert len(shards) <= count
    # greedy into the lightest shard: the longest is at most the mean plus the largest org
    mean = sum(bytes_per_org) / min(count, len(sizes))
    assert max(s.bytes for s in shards) <= mean + max(bytes_per_org) + 1
    if len(sizes) >= count:  # enough organisations: no shard is left empty
        assert len(shards) == count
