"""Packing a night's organisations into shards by input bytes (pure: no Prefect, no database).

An organisation is never split (its files must run in order, one at a time), so a shard is a
list of whole organisations. The packing is the greedy "largest first into the lightest shard"
(LPT): within 4/3 of the best possible longest shard, and an organisation larger than a fair
share ends up alone in its shard. Within a shard the organisations keep the inbox's order.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_SHARDS = 4
"""Shards of a night when neither a count nor the pool's workers say otherwise."""


@dataclass(frozen=True)
class Shard:
    """Some whole organisations (inbox order) and their total input bytes."""

    orgs: tuple[str, ...]
    bytes: int

    @property
    def key(self) -> str:
        """A stable name of the shard's content: the same organisations, the same key."""
        digest = hashlib.sha256("\n".join(self.orgs).encode()).hexdigest()[:16]
        return f"{len(self.orgs)}-{digest}"


def pack_shards(sizes: Sequence[tuple[str, int]], shards: int) -> list[Shard]:
    """Pack (organisation, input bytes) into at most `shards` shards of about equal bytes.

    Empty shards are dropped; the result is ordered by the position of each shard's first
    organisation in `sizes`, and is the same for the same input.
    """
    if shards < 1:
        raise ValueError("at least one shard")
    if not sizes:
        return []
    order = {org: i for i, (org, _) in enumerate(sizes)}
    if len(order) != len(sizes):
        raise ValueError("an organisation appears twice")
    count = min(shards, len(sizes))
    # (bytes so far, organisations so far, shard index); the lightest, then emptiest, on top
    heap = [(0, 0, i) for i in range(count)]
    members: list[list[str]] = [[] for _ in range(count)]
    totals = [0] * count
    for org, size in sorted(sizes, key=lambda s: (-s[1], order[s[0]])):
        if size < 0:
            raise ValueError(f"{org}: negative size")
        total, members_so_far, index = heapq.heappop(heap)
        members[index].append(org)
        totals[index] = total + size
        heapq.heappush(heap, (totals[index], members_so_far + 1, index))
    packed = [
        Shard(tuple(sorted(orgs, key=order.__getitem__)), totals[i])
        for i, orgs in enumerate(members)
        if orgs
    ]
    return sorted(packed, key=lambda s: order[s.orgs[0]])


def shard_count(orgs: int, workers: int, requested: int | None = None) -> int:
    """How many shards a night gets: the requested count, else twice the online workers (so a
    fast worker takes another shard while a slow one finishes), else DEFAULT_SHARDS; never more
    than there are organisations."""
    if requested is not None:
        wanted = requested
    elif workers > 0:
        wanted = 2 * workers
    else:
        wanted = DEFAULT_SHARDS
    return max(1, min(wanted, orgs))
