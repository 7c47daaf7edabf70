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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import CITEXT, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.types import TypeEngine

from contract import (
    ADDRESS_FIELDS,
    ADDRESS_PARTS,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    FINGERPRINT,
    KEY,
    RAW_CONTACTS,
    RAW_FINGERPRINT,
)
from loaders.fingerprint import fingerprint_customers
from loaders.ids import time_ordered_ids
from loaders.staging import (
    CreateTempTableAs,
    copy_frame,
    read_frame,
    reserve_temp_buffers,
    staging_table,
)
from loaders.tables import customer, customer_contact, org

log = logging.getLogger(__name__)


@contextmanager
def timed(step: str) -> Iterator[None]:
    """Log how long a step of the load took (INFO), so that a slow load can be explained."""
    started = time.perf_counter()
    yield
    log.info("%s took %.2fs", step, time.perf_counter() - started)


def _execute(conn: Connection, step: str, statement: sa.Executable) -> CursorResult[Any]:
    with timed(step):
        return conn.execute(statement)


def _create_temp_table(
    conn: Connection, step: str, query: sa.Select[Any], name: str
) -> sa.TableClause:
    """Run CREATE TEMP TABLE name ... AS query (timed); the new table, to read it."""
    statement = CreateTempTableAs(name, query)
    _execute(conn, step, statement)
    return statement.table


# Advisory lock namespace of erp-sync imports (any constant; the second key is the org).
IMPORT_LOCK_CLASS = 0x45_52_50  # "ERP"


#: Called with the classification table (`customer_delta`, `contact_delta`) and the fields the
#: file sets, after the classification and before any write: the change history's hook.
BeforeWrite = Callable[[Connection, sa.TableClause, list[str]], None]


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


def lock_organisation(conn: Connection, org_id: uuid.UUID) -> int:
    """Wait for, then hold until the transaction ends, the organisation's import lock.

    Every holder of the lock may write the organisation's customers (a load, a revert), so it
    counts one change (org.change_count, migration 0011). Returns the count before this one: if
    it equals a count read earlier (`stored_state`), nothing was written in between.
    """
    conn.execute(
        sa.select(sa.func.pg_advisory_xact_lock(IMPORT_LOCK_CLASS, sa.func.hashtext(str(org_id))))
    )
    return int(
        conn.execute(
            sa.update(org)
            .values(change_count=org.c.change_count + 1)
            .where(org.c.id == org_id)
            .returning(org.c.change_count - 1)
        ).scalar_one()
    )


@dataclass(frozen=True)
class Split:
    """An export's customers and contacts by what the load does with them."""

    new_customers: pl.DataFrame
    """customers the organisation does not have yet (with their fingerprint): COPYed straight in"""
    new_contacts: pl.DataFrame
    """the contacts of the new customers"""
    customers: pl.DataFrame
    """stored customers whose fingerprint differs (with the new one): staged and merged"""
    contacts: pl.DataFrame
    """the contacts of those"""
    unchanged_customers: int = 0
    """stored customers the file repeats exactly: never staged, compared or written"""
    unchanged_contacts: int = 0
    raw_updates: pl.DataFrame | None = None
    """(key, raw_hash, raw_contacts) of stored customers that are not staged but whose raw
    fingerprint changes (`update_raw_prints`)"""


#: The columns of `raw` in `split_export`: the raw fingerprint a customer is stored with.
RAW_COLUMNS = (RAW_FINGERPRINT, RAW_CONTACTS)


def split_export(
    conn: Connection,
    org_id: uuid.UUID,
    customers: pl.DataFrame,
    contacts: pl.DataFrame,
    *,
    active_only: bool,
    stored: pl.DataFrame | None = None,
    raw: pl.DataFrame | None = None,
    rebase: bool = False,
) -> Split:
    """Sort the file's customers into new, changed and unchanged against the stored ones.

    One COPY TO reads every stored key of the organisation with its fingerprint. A customer
    whose fingerprint equals the one stored when it was last applied gets no staging, no
    comparison and no write; in full mode only active customers are skipped, so that inactive
    ones in the file still reach the reactivation. Keys not stored at all are new: they need
    no staging and no comparison either (`insert_new_customers`). Call it under the
    organisation's lock, so that no other import adds keys meanwhile.

    `stored` is `stored_customers` read under that lock (read here when not given). `raw` gives
    the raw fingerprint (`RAW_COLUMNS`) each of the file's customers is to be stored with; new
    and staged customers get it with their rows, the others through `raw_updates`. With
    `rebase`, the stored customers that `raw` does not name lose theirs (the prints were taken
    under other rules).
    """
    with timed("fingerprint customers"):
        prints = fingerprint_customers(customers, contacts)
        if stored is None:
            stored = stored_customers(conn, org_id)
        known = stored.select(KEY)
        customers = customers.join(prints, on=KEY, how="left")
        if raw is not None:
            customers = customers.join(raw, on=KEY, how="left")
        new_customers = customers.join(known, on=KEY, how="anti")
        skippable = stored.filter(pl.col(FINGERPRINT).is_not_null())
        if active_only:
            skippable = skippable.filter(pl.col("is_active"))
        same = prints.join(skippable, on=[KEY, FINGERPRINT], how="semi").select(KEY)
        if new_customers.height:
            new_keys = new_customers.select(KEY)
            new_contacts = contacts.join(new_keys, on=KEY, how="semi")
            done = pl.concat([new_keys, same])
        else:
            new_contacts = contacts.clear()
            done = same
        if done.height:
            customers = customers.join(done, on=KEY, how="anti")
            kept_contacts = contacts.join(done, on=KEY, how="anti")
        else:
            kept_contacts = contacts
        raw_updates = (
            _raw_updates(stored, raw, same, rebase=rebase) if raw is not None or rebase else None
        )
    return Split(
        new_customers=new_customers,
        new_contacts=new_contacts,
        customers=customers,
        contacts=kept_contacts,
        unchanged_customers=same.height,
        unchanged_contacts=contacts.height - kept_contacts.height - new_contacts.height,
        raw_updates=raw_updates,
    )


def _raw_updates(
    stored: pl.DataFrame, raw: pl.DataFrame | None, same: pl.DataFrame, *, rebase: bool
) -> pl.DataFrame:
    """The stored customers whose raw fingerprint changes but whose rows are not written.

    Those the file repeats (`same`: not staged) whose raw fingerprint differs; with `rebase`,
    also every other stored customer with a raw fingerprint that `raw` does not give one.
    """
    schema = {KEY: pl.String, RAW_FINGERPRINT: pl.Int64, RAW_CONTACTS: pl.Int32}
    wanted = (
        same.join(raw, on=KEY, how="inner") if raw is not None else pl.DataFrame(schema=schema)
    ).select(KEY, pl.col(RAW_FINGERPRINT).cast(pl.Int64), pl.col(RAW_CONTACTS).cast(pl.Int32))
    if rebase:
        others = stored.filter(pl.col(RAW_FINGERPRINT).is_not_null()).select(KEY)
        if raw is not None:
            others = others.join(raw.select(KEY), on=KEY, how="anti")
        wanted = pl.concat(
            [
                wanted,
                others.with_columns(
                    pl.lit(None, pl.Int64).alias(RAW_FINGERPRINT),
                    pl.lit(None, pl.Int32).alias(RAW_CONTACTS),
                ),
            ]
        )
    current = stored.select(KEY, *RAW_COLUMNS)
    differs = pl.any_horizontal(
        pl.col(name).ne_missing(pl.col(f"{name}_stored")) for name in RAW_COLUMNS
    )
    return (
        wanted.join(current, on=KEY, how="inner", suffix="_stored")
        .filter(differs)
        .select(KEY, *RAW_COLUMNS)
    )


def stored_customers(conn: Connection, org_id: uuid.UUID) -> pl.DataFrame:
    """Every stored key of the organisation, with its fingerprint (or null), is_active, and
    its raw fingerprint and contact count (or nulls)."""
    c = customer.c
    query = sa.select(
        c[KEY],
        c[FINGERPRINT],
        sa.cast(c.is_active, sa.Integer),
        c[RAW_FINGERPRINT],
        c[RAW_CONTACTS],
    ).where(c.org_id == org_id)
    frame = read_frame(conn, query, STORED_SCHEMA)
    return frame.with_columns(pl.col("is_active").cast(pl.Boolean))


#: The columns of `stored_customers` as read (is_active then becomes a Boolean).
STORED_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    KEY: pl.String,
    FINGERPRINT: pl.Int64,
    "is_active": pl.Int8,
    RAW_FINGERPRINT: pl.Int64,
    RAW_CONTACTS: pl.Int32,
}


@dataclass(frozen=True)
class StoredState:
    """What an import reads of an organisation before its lock (`stored_state`)."""

    rules: str | None
    """the rules version of its raw fingerprints"""
    changes: int
    """its change count when read (`lock_organisation`)"""
    customers: pl.DataFrame
    """`stored_customers`, read after the count in the same transaction"""


def stored_state(conn: Connection, org_id: uuid.UUID) -> StoredState:
    """The organisation's raw rules version, change count and stored customers.

    The count is read first: a change committed after it makes the lock's count differ, so the
    customers read here are used under the lock only if nothing was written since the count.
    An organisation without customers costs no read of them.
    """
    rules, changes, any_customer = conn.execute(
        sa.select(
            org.c.raw_rules,
            org.c.change_count,
            sa.exists().where(customer.c.org_id == org_id),
        ).where(org.c.id == org_id)
    ).one()
    customers = (
        stored_customers(conn, org_id)
        if any_customer
        else pl.DataFrame(schema=STORED_SCHEMA).with_columns(pl.col("is_active").cast(pl.Boolean))
    )
    return StoredState(rules, int(changes), customers)


def stored_raw_prints(conn: Connection, org_id: uuid.UUID) -> tuple[str | None, pl.DataFrame]:
    """The organisation's raw rules version, and its customers that have a raw fingerprint (and
    a fingerprint): (key, raw_hash, raw_contacts, is_active). Read before validation, outside
    the lock."""
    rules = raw_rules(conn, org_id)
    c = customer.c
    query = sa.select(
        c[KEY], c[RAW_FINGERPRINT], c[RAW_CONTACTS], sa.cast(c.is_active, sa.Integer)
    ).where(
        # a customer without its fingerprint (0003) must go through the merge to get one
        c.org_id == org_id,
        c[RAW_FINGERPRINT].is_not(None),
        c[FINGERPRINT].is_not(None),
    )
    frame = read_frame(
        conn,
        query,
        {KEY: pl.String, RAW_FINGERPRINT: pl.Int64, RAW_CONTACTS: pl.Int32, "is_active": pl.Int8},
    )
    return rules, frame.with_columns(pl.col("is_active").cast(pl.Boolean))


def raw_rules(conn: Connection, org_id: uuid.UUID) -> str | None:
    """The rules version the organisation's raw fingerprints were taken under (None: none)."""
    return conn.execute(sa.select(org.c.raw_rules).where(org.c.id == org_id)).scalar()


def set_raw_rules(conn: Connection, org_id: uuid.UUID, rules: str | None) -> None:
    """Record the rules version of the organisation's raw fingerprints (None: forget them)."""
    conn.execute(
        sa.update(org)
        .values(raw_rules=rules)
        .where(org.c.id == org_id, org.c.raw_rules.is_distinct_from(rules))
    )


def skipped_still_stored(stored: pl.DataFrame, skipped: pl.DataFrame, *, active_only: bool) -> bool:
    """Whether every skipped customer (key, raw_hash, raw_contacts) is still stored so.

    `stored` is `stored_customers` read under the organisation's lock; a customer skipped
    before the lock that another import or a revert changed meanwhile makes it False.
    """
    if not skipped.height:
        return True
    candidates = stored.filter(pl.col(FINGERPRINT).is_not_null())
    if active_only:
        candidates = candidates.filter(pl.col("is_active"))
    matched = skipped.select(KEY, *RAW_COLUMNS).join(
        candidates.select(KEY, *RAW_COLUMNS), on=[KEY, *RAW_COLUMNS], how="semi"
    )
    return matched.height == skipped.height


stage_raw = staging_table("stage_raw", customer.c[KEY], *(customer.c[c] for c in RAW_COLUMNS))


def update_raw_prints(conn: Connection, org_id: uuid.UUID, updates: pl.DataFrame | None) -> int:
    """Write the raw fingerprints of `updates` (Split.raw_updates) onto the stored customers."""
    if updates is None or not updates.height:
        return 0
    c, s = customer.c, stage_raw.c
    with timed("write raw fingerprints"):
        stage_raw.create(conn)
        copy_frame(conn, stage_raw, updates, [KEY, *RAW_COLUMNS])
        statement = (
            sa.update(customer)
            .values({name: s[name] for name in RAW_COLUMNS})
            .where(c.org_id == org_id, c[KEY] == s[KEY])
        )
        return int(conn.execute(statement).rowcount)


# What jsonb_strip_nulls() takes out of the validators' address JSON (polars' compact encoding
# of the present parts): `"part":null` with its comma. A quote inside a value is escaped, so
# the pattern cannot match inside one.
_NULL_PART = "|".join(ADDRESS_PARTS)
_NULL_PARTS = rf'"(?:{_NULL_PART})":null,?'


def _new_address(field: str) -> pl.Expr:
    """The stored value of a new customer's address: nulls stripped, null when nothing is left
    (as `_customer_value` gives it when nothing is stored)."""
    stripped = (
        pl.col(field).str.replace_all(_NULL_PARTS, "").str.replace(r",\}$", "}", literal=False)
    )
    return pl.when(stripped != "{}").then(stripped).alias(field)


def new_customer_rows(org_id: uuid.UUID, customers: pl.DataFrame) -> pl.DataFrame:
    """The `customer` rows of new customers (columns named as the table's), ids in key order."""
    fields = [f for f in CUSTOMER_FIELDS if f in customers.columns]
    return customers.sort(KEY).select(
        time_ordered_ids(customers.height),
        pl.lit(str(org_id)).alias("org_id"),
        KEY,
        *(_new_address(f) if f in ADDRESS_FIELDS else pl.col(f) for f in fields),
        *(name for name in (FINGERPRINT, *RAW_COLUMNS) if name in customers.columns),
    )


def new_contact_rows(
    org_id: uuid.UUID, customer_rows: pl.DataFrame, contacts: pl.DataFrame
) -> pl.DataFrame:
    """The `customer_contact` rows of new customers' contacts, in (customer, email) order."""
    fields = [f for f in CONTACT_FIELDS if f in contacts.columns]
    owners = customer_rows.select(KEY, pl.col("id").alias("customer_id"))
    rows = contacts.join(owners, on=KEY, how="inner").sort("customer_id", "email")
    return rows.select(
        time_ordered_ids(rows.height),
        pl.lit(str(org_id)).alias("org_id"),
        "customer_id",
        "email",
        *(pl.col(f).fill_null(False) if f == "is_primary" else pl.col(f) for f in fields),
    )


def insert_new_customers(
    conn: Connection, org_id: uuid.UUID, customers: pl.DataFrame, contacts: pl.DataFrame
) -> LoadCounts:
    """COPY customers the organisation does not have, and their contacts, straight in.

    Their ids are made here (time-ordered, increasing in key order, so that every index of
    both tables is appended to); created_at, updated_at and is_active take their defaults, as
    an INSERT of the merge would give them. Contacts come from the validators with one
    primary at most per customer and one row per (customer, lower-cased email).
    """
    if not customers.height:
        return LoadCounts()
    with timed("prepare new customers"):
        rows = new_customer_rows(org_id, customers)
    with timed("copy new customers"):
        copy_frame(conn, customer, rows, rows.columns)
    inserted_contacts = 0
    if contacts.height:
        with timed("prepare new contacts"):
            contact_rows = new_contact_rows(org_id, rows, contacts)
        with timed("copy new contacts"):
            inserted_contacts = copy_frame(
                conn, customer_contact, contact_rows, contact_rows.columns
            )
    return LoadCounts(customers_inserted=rows.height, contacts_inserted=inserted_contacts)


# Staging: copies of the stored columns (no constraints), dropped at commit. Emails stage as
# text and become citext in the statements that read them: ANALYZE of a citext column compares
# lower-cased copies and takes about 0.5 s more per 100k rows; the cast itself costs nothing.
_TEXT_EMAIL: dict[str, TypeEngine[Any]] = {"email": sa.Text()}
stage_customer = staging_table(
    "stage_customer",
    customer.c[KEY],
    *(customer.c[field] for field in CUSTOMER_FIELDS),
    customer.c[FINGERPRINT],
    *(customer.c[name] for name in RAW_COLUMNS),
    types=_TEXT_EMAIL,
)
stage_contact = staging_table(
    "stage_contact",
    customer.c[KEY],
    customer_contact.c.email,
    *(customer_contact.c[field] for field in CONTACT_FIELDS),
    types=_TEXT_EMAIL,
)
stage_key = staging_table("stage_key", customer.c[KEY])
STAGING_TABLES = (stage_customer, stage_contact, stage_key)


def stage_export(
    conn: Connection,
    customers: pl.DataFrame,
    contacts: pl.DataFrame,
    keys_seen: pl.Series,
) -> None:
    """Create the staging tables (dropped at commit) and COPY the validated rows into them."""
    # SET has no Core form.
    conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    reserve_temp_buffers(conn)
    with timed("create staging tables"):
        for table in STAGING_TABLES:
            table.create(conn)
    with timed("copy into staging"):
        for table, frame in (
            (stage_customer, customers),
            (stage_contact, contacts),
            (stage_key, keys_seen.to_frame(KEY)),
        ):
            copy_frame(conn, table, frame, [c.name for c in table.c if c.name in frame.columns])
    # Temporary tables are never analysed automatically; the joins below need row counts.
    # ANALYZE has no Core form; the names are the Table objects'.
    names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in STAGING_TABLES)
    _execute(conn, "analyze staging", sa.text(f"ANALYZE {names}"))


def _not_in_file() -> sa.ColumnElement[bool]:
    """The stored customer's number is not among the file's (correlated with `customer`)."""
    return ~sa.exists().where(stage_key.c[KEY] == customer.c[KEY])


def preview_deactivations(conn: Connection, org_id: uuid.UUID) -> tuple[int, int]:
    """(active customers not in the file, active customers): full mode's deactivation budget."""
    query = sa.select(
        sa.func.count().filter(_not_in_file()).label("missing"),
        sa.func.count().label("active"),
    ).where(customer.c.org_id == org_id, customer.c.is_active)
    row = _execute(conn, "preview deactivations", query).one()
    return int(row.missing), int(row.active)


_EMPTY_JSON = sa.literal_column("'{}'::jsonb", JSONB)


def _customer_value(field: str) -> sa.ColumnElement[Any]:
    """The value a staged field gives the stored customer (addresses merge key by key)."""
    staged, stored = stage_customer.c[field], customer.c[field]
    if field == "email":
        return sa.cast(staged, CITEXT)
    if field in ADDRESS_FIELDS:
        merged = sa.func.coalesce(stored, _EMPTY_JSON).op("||")(
            sa.func.coalesce(staged, _EMPTY_JSON)
        )
        return sa.func.nullif(sa.func.jsonb_strip_nulls(merged), _EMPTY_JSON, type_=JSONB)
    return staged


def _differs(stored: list[sa.ColumnElement[Any]], incoming: list[sa.ColumnElement[Any]]) -> Any:
    """ROW(stored) IS DISTINCT FROM ROW(incoming): whether any field would change."""
    if not stored:
        return sa.false()
    return sa.tuple_(*stored).is_distinct_from(sa.tuple_(*incoming))


def apply_customers(
    conn: Connection,
    org_id: uuid.UUID,
    present: frozenset[str],
    *,
    full: bool,
    before_write: BeforeWrite | None = None,
) -> LoadCounts:
    """Insert new customers, update changed ones, and in full mode (re)activate and deactivate."""
    c, s = customer.c, stage_customer.c
    fields = [f for f in CUSTOMER_FIELDS if f in present]
    values = {f: _customer_value(f) for f in fields}
    changed = _differs([c[f] for f in fields], list(values.values()))
    reactivate = sa.and_(c.id.is_not(None), ~c.is_active) if full else sa.false()
    rehash = sa.or_(*(c[name].is_distinct_from(s[name]) for name in (FINGERPRINT, *RAW_COLUMNS)))
    classify = (
        sa.select(
            c.id.label("customer_id"),
            s[KEY],
            *(value.label(f) for f, value in values.items()),
            c.id.is_(None).label("is_new"),
            sa.and_(c.id.is_not(None), changed).label("changed"),
            reactivate.label("reactivate"),
            s[FINGERPRINT],
            *(s[name] for name in RAW_COLUMNS),
        )
        .select_from(
            stage_customer.outerjoin(customer, sa.and_(c.org_id == org_id, c[KEY] == s[KEY]))
        )
        .where(sa.or_(c.id.is_(None), changed, reactivate, rehash))
    )
    delta = _create_temp_table(conn, "classify customers", classify, "customer_delta")
    if before_write is not None:
        before_write(conn, delta, fields)
    d = delta.c
    staged = conn.execute(sa.select(sa.func.count()).select_from(stage_customer)).scalar_one()
    columns = [KEY, *fields, FINGERPRINT, *RAW_COLUMNS]
    insert = (
        pg_insert(customer)
        .from_select(
            ["org_id", *columns],
            sa.select(sa.literal(org_id, c.org_id.type), *(d[name] for name in columns))
            .where(d.is_new)
            .order_by(d[KEY]),
            include_defaults=False,
        )
        .on_conflict_do_nothing(index_elements=[c.org_id, c[KEY]])
        # SQLAlchemy keeps the rowcount of an INSERT only when asked to.
        .execution_options(preserve_rowcount=True)
    )
    inserted = _execute(conn, "insert customers", insert).rowcount
    update = (
        sa.update(customer)
        .values(
            {
                **{f: d[f] for f in (*fields, FINGERPRINT, *RAW_COLUMNS)},
                "is_active": sa.or_(c.is_active, d.reactivate),
            }
        )
        .where(c.id == d.customer_id, ~d.is_new)
    )
    _execute(conn, "update customers", update)
    # A row whose only news is its fingerprint was written but is not an update of a value.
    updated, reactivated = conn.execute(
        sa.select(
            sa.func.count().filter(~d.is_new, sa.or_(d.changed, d.reactivate)),
            sa.func.count().filter(d.reactivate),
        ).select_from(delta)
    ).one()
    deactivated = 0
    if full:
        deactivate = (
            sa.update(customer)
            .values(is_active=sa.false())
            .where(c.org_id == org_id, c.is_active, _not_in_file())
        )
        deactivated = _execute(conn, "deactivate customers", deactivate).rowcount
    return LoadCounts(
        customers_inserted=inserted,
        customers_updated=updated,
        customers_unchanged=staged - inserted - updated,
        customers_deactivated=deactivated,
        customers_reactivated=int(reactivated),
    )


def apply_contacts(
    conn: Connection,
    org_id: uuid.UUID,
    present: frozenset[str],
    *,
    before_write: BeforeWrite | None = None,
) -> LoadCounts:
    """Merge contacts by email (case-insensitively), keeping at most one primary per customer."""
    cc, cu, s = customer_contact.c, customer.c, stage_contact.c
    fields = [f for f in CONTACT_FIELDS if f in present]
    email = sa.cast(s.email, CITEXT)
    changed = _differs([cc[f] for f in fields], [s[f] for f in fields])
    classify = (
        sa.select(
            cu.id.label("customer_id"),
            email.label("email"),
            *(s[f] for f in fields),
            cc.id.label("contact_id"),
            cc.id.is_(None).label("is_new"),
        )
        .select_from(
            stage_contact.join(customer, sa.and_(cu.org_id == org_id, cu[KEY] == s[KEY])).outerjoin(
                customer_contact, sa.and_(cc.customer_id == cu.id, cc.email == email)
            )
        )
        .where(sa.or_(cc.id.is_(None), changed))
    )
    delta = _create_temp_table(conn, "classify contacts", classify, "contact_delta")
    if before_write is not None:
        before_write(conn, delta, fields)
    d = delta.c
    staged = conn.execute(sa.select(sa.func.count()).select_from(stage_contact)).scalar_one()
    if "is_primary" in fields:
        # Demote first, in its own statement: the one-primary index is checked row by row, so
        # the old primary must be gone before the new one is written.
        demote = (
            sa.update(customer_contact)
            .values(is_primary=sa.false())
            .where(
                d.is_primary, cc.customer_id == d.customer_id, cc.is_primary, cc.email != d.email
            )
        )
        _execute(conn, "demote primaries", demote)
    updated = 0
    if fields:
        update = (
            sa.update(customer_contact)
            .values({f: d[f] for f in fields})
            .where(cc.id == d.contact_id, ~d.is_new)
        )
        updated = _execute(conn, "update contacts", update).rowcount
    insert_fields = [f for f in fields if f != "is_primary"]
    primary = sa.func.coalesce(d.is_primary, sa.false()) if "is_primary" in fields else sa.false()
    insert = (
        sa.insert(customer_contact)
        .from_select(
            ["org_id", "customer_id", "email", *insert_fields, "is_primary"],
            sa.select(
                sa.literal(org_id, cc.org_id.type),
                d.customer_id,
                d.email,
                *(d[f] for f in insert_fields),
                primary,
            )
            .where(d.is_new)
            .order_by(d.customer_id, d.email),
            include_defaults=False,
        )
        .execution_options(preserve_rowcount=True)
    )
    inserted = _execute(conn, "insert contacts", insert).rowcount
    return LoadCounts(
        contacts_inserted=inserted,
        contacts_updated=updated,
        contacts_unchanged=staged - inserted - updated,
    )
