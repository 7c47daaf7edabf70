"""Set-based merge of one validated export into an organisation's customers and contacts.

Everything runs on the caller's connection, inside the caller's transaction (loaders never
commit): the valid rows are COPied into temporary staging tables, compared with what is stored
in one join, and only new or changed rows are written. An unchanged customer is never rewritten,
so a re-sync costs a join, not an update per row.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult

from contract import ADDRESS_FIELDS, CONTACT_FIELDS, CUSTOMER_FIELDS, FINGERPRINT, KEY
from loaders.fingerprint import fingerprint_customers
from loaders.staging import copy_frame

log = logging.getLogger(__name__)


@contextmanager
def timed(step: str) -> Iterator[None]:
    """Log how long a step of the load took (INFO), so that a slow load can be explained."""
    started = time.perf_counter()
    yield
    log.info("%s took %.2fs", step, time.perf_counter() - started)


def _execute(
    conn: Connection, step: str, sql: str, params: dict[str, Any] | None = None
) -> CursorResult[Any]:
    with timed(step):
        return conn.execute(sa.text(sql), params or {})


# Advisory lock namespace of erp-sync imports (any constant; the second key is the org).
IMPORT_LOCK_CLASS = 0x45_52_50  # "ERP"


@dataclass(frozen=True)
class LoadCounts:
    """What a load did (or, in a dry run, would have done)."""

    customers_inserted: int = 0
    customers_updated: int = 0
    customers_unchanged: int = 0
    customers_deactivated: int = 0
    customers_reactivated: int = 0
    contacts_inserted: int = 0
    contacts_updated: int = 0
    contacts_unchanged: int = 0


def lock_organisation(conn: Connection, org_id: uuid.UUID) -> None:
    """Wait for, then hold until the transaction ends, the organisation's import lock."""
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:cls, hashtext(:org))"),
        {"cls": IMPORT_LOCK_CLASS, "org": str(org_id)},
    )


@dataclass(frozen=True)
class Unchanged:
    """Customers (and their contacts) left out of staging because their fingerprint matched."""

    customers: int = 0
    contacts: int = 0


def skip_unchanged(
    conn: Connection,
    org_id: uuid.UUID,
    customers: pl.DataFrame,
    contacts: pl.DataFrame,
    *,
    active_only: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, Unchanged]:
    """Drop the customers the file repeats exactly; give the others their new fingerprint.

    A customer whose fingerprint equals the one stored when it was last applied gets no
    staging, no comparison and no write. In full mode only active customers are skipped, so
    that inactive ones in the file still reach the reactivation.
    """
    with timed("fingerprint customers"):
        prints = fingerprint_customers(customers, contacts)
        stored = _stored_fingerprints(conn, org_id, active_only=active_only)
        same = prints.join(stored, on=[KEY, FINGERPRINT], how="semi").select(KEY)
        if same.height:
            customers = customers.join(same, on=KEY, how="anti")
            kept_contacts = contacts.join(same, on=KEY, how="anti")
        else:
            kept_contacts = contacts
        customers = customers.join(prints, on=KEY, how="left")
    skipped = Unchanged(customers=same.height, contacts=contacts.height - kept_contacts.height)
    return customers, kept_contacts, skipped


def _stored_fingerprints(conn: Connection, org_id: uuid.UUID, *, active_only: bool) -> pl.DataFrame:
    active = "AND is_active" if active_only else ""
    raw = conn.connection.driver_connection
    assert raw is not None
    buffer = bytearray()
    statement = (
        f"COPY (SELECT erp_customer_number, source_hash FROM customer "
        f"WHERE org_id = %s AND source_hash IS NOT NULL {active}) TO STDOUT WITH (FORMAT csv)"
    )
    with raw.cursor() as cursor, cursor.copy(statement, (org_id,)) as copy:
        for block in copy:
            buffer += block
    schema = {KEY: pl.String, FINGERPRINT: pl.Int64}
    if not buffer:
        return pl.DataFrame(schema=schema)
    return pl.read_csv(bytes(buffer), has_header=False, new_columns=list(schema), schema=schema)


def stage_export(
    conn: Connection,
    customers: pl.DataFrame,
    contacts: pl.DataFrame,
    keys_seen: pl.Series,
) -> None:
    """Create the staging tables (dropped at commit) and COPY the validated rows into them."""
    conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    _execute(
        conn,
        "create staging tables",
        """
            CREATE TEMP TABLE stage_customer (
                erp_customer_number text, name text, email text,
                default_currency text, default_language text, notes text,
                billing_address jsonb, shipping_address jsonb, source_hash bigint
            ) ON COMMIT DROP;
            CREATE TEMP TABLE stage_contact (
                erp_customer_number text, email text, name text, phone text, role text,
                is_primary boolean
            ) ON COMMIT DROP;
            CREATE TEMP TABLE stage_key (erp_customer_number text) ON COMMIT DROP;
            """,
    )
    customer_cols = [
        "erp_customer_number",
        *[f for f in (*CUSTOMER_FIELDS, FINGERPRINT) if f in customers.columns],
    ]
    contact_cols = [
        "erp_customer_number",
        "email",
        *[f for f in CONTACT_FIELDS if f in contacts.columns],
    ]
    keys = keys_seen.to_frame("erp_customer_number")
    with timed("copy into staging"):
        copy_frame(conn, "stage_customer", customers, customer_cols)
        copy_frame(conn, "stage_contact", contacts, contact_cols)
        copy_frame(conn, "stage_key", keys, ["erp_customer_number"])
    # Temporary tables are never analysed automatically; the joins below need row counts.
    _execute(
        conn, "analyze staging", "ANALYZE stage_customer; ANALYZE stage_contact; ANALYZE stage_key"
    )


def preview_deactivations(conn: Connection, org_id: uuid.UUID) -> tuple[int, int]:
    """(active customers not in the file, active customers): full mode's deactivation budget."""
    row = _execute(
        conn,
        "preview deactivations",
        """
            SELECT count(*) FILTER (
                       WHERE NOT EXISTS (SELECT 1 FROM stage_key k
                                         WHERE k.erp_customer_number = c.erp_customer_number)
                   ) AS missing,
                   count(*) AS active
            FROM customer c
            WHERE c.org_id = :org AND c.is_active
            """,
        {"org": org_id},
    ).one()
    return int(row.missing), int(row.active)


def _customer_value(field: str) -> str:
    """The SQL value a staged field gives the stored customer (addresses merge key by key)."""
    if field in ADDRESS_FIELDS:
        return (
            f"NULLIF(jsonb_strip_nulls(COALESCE(c.{field}, '{{}}'::jsonb) "
            f"|| COALESCE(s.{field}, '{{}}'::jsonb)), '{{}}'::jsonb)"
        )
    if field == "email":
        return "s.email::citext"
    if field == "default_currency":
        return "s.default_currency::char(3)"
    return f"s.{field}"


def apply_customers(
    conn: Connection, org_id: uuid.UUID, present: frozenset[str], *, full: bool
) -> LoadCounts:
    """Insert new customers, update changed ones, and in full mode (re)activate and deactivate."""
    fields = [f for f in CUSTOMER_FIELDS if f in present]
    stored = ", ".join(f"c.{f}" for f in fields)
    incoming = ", ".join(_customer_value(f) for f in fields)
    changed = f"ROW({stored}) IS DISTINCT FROM ROW({incoming})" if fields else "false"
    reactivate = "(c.id IS NOT NULL AND NOT c.is_active)" if full else "false"
    rehash = "c.source_hash IS DISTINCT FROM s.source_hash"
    _execute(
        conn,
        "classify customers",
        f"""
            CREATE TEMP TABLE customer_delta ON COMMIT DROP AS
            SELECT c.id AS customer_id, s.erp_customer_number,
                   {", ".join(f"{_customer_value(f)} AS {f}" for f in fields)},
                   c.id IS NULL AS is_new,
                   c.id IS NOT NULL AND {changed} AS changed,
                   {reactivate} AS reactivate, s.source_hash
            FROM stage_customer s
            LEFT JOIN customer c
              ON c.org_id = :org AND c.erp_customer_number = s.erp_customer_number
            WHERE c.id IS NULL OR {changed} OR {reactivate} OR {rehash}
            """,
        {"org": org_id},
    )
    staged = conn.execute(sa.text("SELECT count(*) FROM stage_customer")).scalar_one()
    columns = ", ".join(fields)
    inserted = _execute(
        conn,
        "insert customers",
        f"""
            INSERT INTO customer (org_id, erp_customer_number, {columns}, source_hash)
            SELECT :org, erp_customer_number, {columns}, source_hash
            FROM customer_delta WHERE is_new
            ORDER BY erp_customer_number
            ON CONFLICT (org_id, erp_customer_number) DO NOTHING
            """,
        {"org": org_id},
    ).rowcount
    assignments = "".join(f"{f} = d.{f}, " for f in fields)
    _execute(
        conn,
        "update customers",
        f"""
            UPDATE customer c
            SET {assignments} source_hash = d.source_hash,
                is_active = c.is_active OR d.reactivate
            FROM customer_delta d
            WHERE c.id = d.customer_id AND NOT d.is_new
            """,
    )
    # A row whose only news is its fingerprint was written but is not an update of a value.
    updated, reactivated = conn.execute(
        sa.text(
            "SELECT count(*) FILTER (WHERE NOT is_new AND (changed OR reactivate)),"
            " count(*) FILTER (WHERE reactivate) FROM customer_delta"
        )
    ).one()
    deactivated = 0
    if full:
        deactivated = _execute(
            conn,
            "deactivate customers",
            """
                UPDATE customer c SET is_active = false
                WHERE c.org_id = :org AND c.is_active
                  AND NOT EXISTS (SELECT 1 FROM stage_key k
                                  WHERE k.erp_customer_number = c.erp_customer_number)
                """,
            {"org": org_id},
        ).rowcount
    return LoadCounts(
        customers_inserted=inserted,
        customers_updated=updated,
        customers_unchanged=staged - inserted - updated,
        customers_deactivated=deactivated,
        customers_reactivated=int(reactivated),
    )


def _contact_value(field: str) -> str:
    return "s.email::citext" if field == "email" else f"s.{field}"


def apply_contacts(conn: Connection, org_id: uuid.UUID, present: frozenset[str]) -> LoadCounts:
    """Merge contacts by email (case-insensitively), keeping at most one primary per customer."""
    fields = [f for f in CONTACT_FIELDS if f in present]
    stored = ", ".join(f"cc.{f}" for f in fields)
    incoming = ", ".join(f"s.{f}" for f in fields)
    changed = f"ROW({stored}) IS DISTINCT FROM ROW({incoming})" if fields else "false"
    _execute(
        conn,
        "classify contacts",
        f"""
            CREATE TEMP TABLE contact_delta ON COMMIT DROP AS
            SELECT cu.id AS customer_id, s.email::citext AS email,
                   {"".join(f"s.{f} AS {f}, " for f in fields)}
                   cc.id AS contact_id, cc.id IS NULL AS is_new
            FROM stage_contact s
            JOIN customer cu
              ON cu.org_id = :org AND cu.erp_customer_number = s.erp_customer_number
            LEFT JOIN customer_contact cc
              ON cc.customer_id = cu.id AND cc.email = s.email::citext
            WHERE cc.id IS NULL OR {changed}
            """,
        {"org": org_id},
    )
    staged = conn.execute(sa.text("SELECT count(*) FROM stage_contact")).scalar_one()
    if "is_primary" in fields:
        # Demote first, in its own statement: the one-primary index is checked row by row, so
        # the old primary must be gone before the new one is written.
        _execute(
            conn,
            "demote primaries",
            """
                UPDATE customer_contact cc SET is_primary = false
                FROM contact_delta d
                WHERE d.is_primary AND cc.customer_id = d.customer_id
                  AND cc.is_primary AND cc.email <> d.email
                """,
        )
    assignments = ", ".join(f"{f} = d.{f}" for f in fields)
    updated = 0
    if assignments:
        updated = _execute(
            conn,
            "update contacts",
            f"""
                UPDATE customer_contact cc SET {assignments}
                FROM contact_delta d
                WHERE cc.id = d.contact_id AND NOT d.is_new
                """,
        ).rowcount
    insert_fields = [f for f in fields if f != "is_primary"]
    primary = "COALESCE(is_primary, false)" if "is_primary" in fields else "false"
    optional = "".join(f"{f}, " for f in insert_fields)
    inserted = _execute(
        conn,
        "insert contacts",
        f"""
            INSERT INTO customer_contact (org_id, customer_id, email, {optional} is_primary)
            SELECT :org, customer_id, email, {optional} {primary}
            FROM contact_delta WHERE is_new
            ORDER BY customer_id, email
            """,
        {"org": org_id},
    ).rowcount
    return LoadCounts(
        contacts_inserted=inserted,
        contacts_updated=updated,
        contacts_unchanged=staged - inserted - updated,
    )
