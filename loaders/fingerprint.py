"""A fingerprint per customer of everything a file says about it, to skip unchanged customers.

A re-sync of a million customers where few changed should not COPY and compare every row.
Each customer's fingerprint covers its own fields and all its contacts (and which columns the
file had); it is stored with the customer, and a customer whose fingerprint matches the stored
one is counted unchanged without being staged. The hash is polars' (64 bits): a new polars
version may hash differently, which only sends every customer down the full comparison once.

The raw fingerprint (`raw_fingerprints`) is taken before validation, of the rows' bytes: a
customer whose raw rows match the stored raw fingerprint, taken when they last validated with
no issue under the same rules, skips validation as well (flows/skipping.py).
"""

from __future__ import annotations

import hashlib

import polars as pl

from contract import FINGERPRINT, KEY, RAW_FINGERPRINT


def _seed(label: str, columns: list[str]) -> int:
    """A stable seed from the column names, so that another column set never matches."""
    digest = hashlib.sha256((label + "\x1f" + "\x1f".join(columns)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def fingerprint_customers(customers: pl.DataFrame, contacts: pl.DataFrame) -> pl.DataFrame:
    """(erp_customer_number, source_hash Int64), one row per customer of `customers`."""
    own = [c for c in customers.columns if not c.startswith("_")]
    theirs = [c for c in contacts.columns if not c.startswith("_") and c != KEY]
    own_hash = pl.struct(own).hash(seed=_seed("customer", own))
    contact_hashes = (
        contacts.lazy()
        .select(KEY, pl.struct(theirs).hash(seed=_seed("contact", theirs)).alias("h"))
        .group_by(KEY)
        # A wrapping sum of the contacts' hashes: the same for any order of the contacts.
        .agg(pl.col("h").sum().alias("contacts_hash"))
    )
    return (
        customers.lazy()
        .select(KEY, own_hash.alias("own_hash"))
        .join(contact_hashes, on=KEY, how="left")
        .select(
            KEY,
            pl.struct(pl.col("own_hash"), pl.col("contacts_hash").fill_null(0))
            .hash(seed=2)
            .reinterpret(signed=True)
            .alias(FINGERPRINT),
        )
        .collect()
    )


def raw_fingerprints(keys: pl.Series, row_prints: pl.Series) -> pl.DataFrame:
    """(erp_customer_number, raw_hash Int64, _rows UInt32, _at List[UInt32]), one row per
    non-null key; `_at` are the positions of the customer's rows.

    `keys` is each row's normalised customer key (as validation groups the rows), `row_prints`
    a hash of each row's record bytes as read (flows/reading.py `RawExport.row_prints`). A
    customer's fingerprint hashes its rows' hashes in file order, so that moving one of its rows
    before another changes it (the last row wins), while rows of other customers in between do
    not.
    """
    return (
        pl.DataFrame({KEY: keys, "_h": row_prints})
        .with_row_index("_at")
        .lazy()
        .filter(pl.col(KEY).is_not_null())
        # the rows of each group keep their order in the file
        .group_by(KEY)
        .agg(pl.col("_h"), pl.len().alias("_rows"), pl.col("_at"))
        .select(
            KEY,
            pl.col("_h")
            .hash(seed=_seed("raw customer records", []))
            .reinterpret(signed=True)
            .alias(RAW_FINGERPRINT),
            pl.col("_rows").cast(pl.UInt32),
            pl.col("_at"),
        )
        .collect()
    )
