"""Time-ordered ids (UUIDv7) made on the client, many at once, for rows COPYed straight in.

A row COPYed into `customer` needs its id before its contacts can name it, and asking the
server for a million ids costs a round trip of a million rows. The ids have the layout of
RFC 9562 UUIDv7, like the server's `erp_sync_new_id()` (migration 0002): 48 bits of Unix
milliseconds, the version, then a 32-bit sequence number over `rand_a` and the top of `rand_b`
(RFC 9562 6.2, method 1: the ids of one batch are strictly increasing, so they append to the
primary-key index in the order the rows are written), the variant, and 42 random bits.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

_MAX_BATCH = 1 << 32


def time_ordered_ids(count: int, *, now_ms: int | None = None) -> pl.Series:
    """`count` new UUIDv7 ids, increasing, as 32 hex digits (PostgreSQL reads them as uuid)."""
    if count >= _MAX_BATCH:
        raise ValueError(f"at most {_MAX_BATCH - 1} ids at once")
    ms = np.uint64(int(time.time() * 1000) if now_ms is None else now_ms)
    sequence = np.arange(count, dtype=np.uint64)
    random = np.random.default_rng().integers(0, 1 << 42, size=count, dtype=np.uint64)
    words = np.empty((count, 2), dtype=">u8")  # big-endian: the bytes of the uuid in order
    # high word: unix_ts_ms (48) | version 7 (4) | rand_a = sequence >> 20 (12)
    words[:, 0] = (ms << np.uint64(16)) | np.uint64(0x7000) | (sequence >> np.uint64(20))
    # low word: variant 0b10 (2) | sequence & 0xFFFFF (20) | random (42)
    words[:, 1] = (
        (np.uint64(0b10) << np.uint64(62))
        | ((sequence & np.uint64(0xFFFFF)) << np.uint64(42))
        | random
    )
    # numpy's fixed-width bytes drop trailing NUL bytes: the last byte must not be 0 (its
    # lowest random bit is set, 41 random bits are left).
    words[:, 1] |= np.uint64(1)
    as_bytes = pl.Series("id", words.view("S16").ravel(), dtype=pl.Binary)
    return as_bytes.bin.encode("hex")
