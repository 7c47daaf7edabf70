"""Undo an applied run from its change history, set-based, on the caller's transaction.

The caller holds the organisation's import lock (loaders/upsert.py `lock_organisation`) and
has checked that no later run touched the same customers (`later_conflicts`). `revert_changes`
then, in this order (the one-primary index is checked row by row):

1. deletes what the run inserted (rows whose created_run_id is the run, and rows a revert
   re-inserted), recording each deleted row whole, so that reverting the revert restores it;
2. puts back every value the run changed, primary contacts first demoted;
3. re-inserts what the run deleted (the run was itself a revert);
4. promotes again the primary contacts the run demoted.

The revert's own history is the run's, swapped: what the run wrote before is what the revert
writes after. The unit of a conflict is the customer, its contacts included.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from contract import (
    APPLIED_STATUSES,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    FINGERPRINT,
    RAW_CONTACTS,
    RAW_FINGERPRINT,
)
from loaders.exceptions import LoaderError
from loaders.history import RunInfo
from loaders.staging import reserve_temp_buffers
from loaders.tables import customer, customer_contact, import_run, org

#: Customer numbers named per conflicting run.
CONFLICTS_SHOWN = 5


@dataclass(frozen=True)
class Conflict:
    """A later applied run that touched customers the reverted run touched too."""

    run_id: uuid.UUID
    source: str
    finished_at: datetime
    numbers: tuple[str, ...]
    """the first customer numbers both runs touched"""


class RevertRefusedError(LoaderError):
    """Later runs changed the same customers; `--cascade` reverts them first."""

    def __init__(self, run_id: uuid.UUID, conflicts: list[Conflict]) -> None:
        self.run_id = run_id
        self.conflicts = conflicts
        named = "; ".join(
            f"run {c.run_id} ({c.source.rsplit('/', 1)[-1]}) changed customer(s) "
            f"{', '.join(c.numbers)}"
            for c in conflicts[:3]
        )
        more = f"; and {len(conflicts) - 3} more run(s)" if len(conflicts) > 3 else ""
        super().__init__(
            f"run {run_id} cannot be reverted alone: later runs changed the same customers: "
            f"{named}{more}; revert them first, or use --cascade to revert them too, newest first"
        )


@dataclass(frozen=True)
class RevertCounts:
    """What one revert did."""

    customers_deleted: int = 0
    customers_restored: int = 0
    customers_updated: int = 0
    customers_deactivated: int = 0
    customers_reactivated: int = 0
    contacts_deleted: int = 0
    contacts_restored: int = 0
    contacts_updated: int = 0


_TOUCHED = """
    SELECT customer_id FROM change_history WHERE run_id = :run_id
    UNION SELECT id FROM customer WHERE org_id = :org_id AND created_run_id = :run_id
    UNION SELECT customer_id FROM customer_contact
          WHERE org_id = :org_id AND created_run_id = :run_id
"""


def later_conflicts(conn: Connection, run: RunInfo) -> list[Conflict]:
    """The later applied runs that must be reverted before `run`, oldest first.

    A later run conflicts when it touched (updated, inserted a contact into, deactivated, ...)
    a customer that the run or an already conflicting run touched: the closure, so that
    `--cascade` reverting them newest first always finds each one unconflicted.
    """
    r = import_run.c
    later = conn.execute(
        sa.select(r.id, r.source, r.finished_at)
        .where(
            r.org_id == run.org_id,
            r.id != run.id,
            r.status.in_([str(s) for s in APPLIED_STATUSES]),
            r.dry_run.is_(False),
            r.reverted_by.is_(None),
            r.finished_at > (run.finished_at or run.started_at),
        )
        .order_by(r.finished_at, r.id)
    ).all()
    if not later:
        return []
    reserve_temp_buffers(conn)  # as an import would: the session may import next
    conn.execute(
        sa.text("CREATE TEMP TABLE revert_touched (customer_id uuid PRIMARY KEY) ON COMMIT DROP; ")
    )
    params = {"org_id": run.org_id}
    conn.execute(sa.text(f"INSERT INTO revert_touched {_TOUCHED}"), {**params, "run_id": run.id})
    conflicts = []
    for later_id, source, finished_at in later:
        numbers = conn.execute(
            sa.text(
                f"""
                SELECT c.erp_customer_number
                FROM ({_TOUCHED}) t
                JOIN revert_touched rt ON rt.customer_id = t.customer_id
                JOIN customer c ON c.id = t.customer_id
                ORDER BY c.erp_customer_number LIMIT :shown
                """
            ),
            {**params, "run_id": later_id, "shown": CONFLICTS_SHOWN},
        ).scalars()
        shown = tuple(numbers)
        if not shown:
            # A customer the run deleted has no row to name: look in the history too.
            shown = tuple(
                conn.execute(
                    sa.text(
                        f"""
                        SELECT DISTINCT h.erp_customer_number FROM change_history h
                        JOIN revert_touched rt ON rt.customer_id = h.customer_id
                        WHERE h.run_id = :run_id AND h.customer_id IN ({_TOUCHED})
                        ORDER BY 1 LIMIT :shown
                        """
                    ),
                    {**params, "run_id": later_id, "shown": CONFLICTS_SHOWN},
                ).scalars()
            )
        if not shown:
            continue
        conflicts.append(Conflict(later_id, source, finished_at, shown))
        conn.execute(
            sa.text(f"INSERT INTO revert_touched {_TOUCHED} ON CONFLICT DO NOTHING"),
            {**params, "run_id": later_id},
        )
    conn.execute(sa.text("DROP TABLE revert_touched"))
    return conflicts


def _restored(conn: Connection, table: sa.Table, fields: list[str], alias: str) -> str:
    """SET items: each field from the JSON object p.v when it has the key, else unchanged."""
    preparer = conn.dialect.identifier_preparer
    items = []
    for name in fields:
        column = table.c[name]
        quoted = preparer.format_column(column)
        if isinstance(column.type, JSONB):
            value = f"nullif(p.v -> '{name}', 'null'::jsonb)"
        else:
            value = f"(p.v ->> '{name}')::{column.type.compile(conn.dialect)}"
        items.append(f"{quoted} = CASE WHEN p.v ? '{name}' THEN {value} ELSE {alias}.{quoted} END")
    return ", ".join(items)


def _befores(entity: str, key: str) -> str:
    """p(id, v): the run's values before, per customer or contact, the earliest winning."""
    return f"""
        WITH p AS (
            SELECT h.{key} AS id, jsonb_object_agg(e.key, e.value ORDER BY h.id DESC) AS v
            FROM change_history h, jsonb_each(h.before) e
            WHERE h.run_id = :run_id AND h.entity = '{entity}' AND h.action = 'update'
            GROUP BY h.{key}
        )
    """


# Rows the run inserted: by created_run_id, or (a revert) re-inserted rows in its history.
# IN (subquery) rather than EXISTS: hashed once, not probed per row of the organisation.
_INSERTED_CUSTOMER = """
    (c.created_run_id = :run_id OR c.id IN (
        SELECT h.customer_id FROM change_history h WHERE h.run_id = :run_id
        AND h.action = 'insert' AND h.entity = 'customer'))
"""
_INSERTED_CONTACT = """
    (cc.created_run_id = :run_id OR cc.id IN (
        SELECT h.contact_id FROM change_history h WHERE h.run_id = :run_id
        AND h.action = 'insert' AND h.entity = 'contact'))
"""


def revert_changes(conn: Connection, run: RunInfo, revert_id: uuid.UUID) -> RevertCounts:
    """Put the organisation's customers back as they were before `run`; record it as revert_id.

    On the caller's transaction, under the organisation's lock, after `later_conflicts`.
    """
    params = {"run_id": run.id, "org_id": run.org_id, "revert_id": revert_id}
    # The raw fingerprints (migration 0009) no longer say what the put-back rows came from:
    # the next import validates every customer and takes them anew.
    conn.execute(sa.update(org).values(raw_rules=None).where(org.c.id == run.org_id))

    def run_sql(statement: str) -> int:
        return int(conn.execute(sa.text(statement), params).rowcount)

    # 1. what the run inserted: recorded whole, then deleted (contacts before customers).
    contacts_deleted = run_sql(
        f"""
        INSERT INTO change_history (run_id, org_id, entity, action, customer_id, contact_id,
                                    erp_customer_number, contact_email, before)
        SELECT :revert_id, :org_id, 'contact', 'delete', cc.customer_id, cc.id,
               c.erp_customer_number, cc.email, to_jsonb(cc)
        FROM customer_contact cc JOIN customer c ON c.id = cc.customer_id
        WHERE cc.org_id = :org_id AND ({_INSERTED_CONTACT} OR {_INSERTED_CUSTOMER})
        """
    )
    customers_deleted = run_sql(
        f"""
        INSERT INTO change_history (run_id, org_id, entity, action, customer_id,
                                    erp_customer_number, before)
        SELECT :revert_id, :org_id, 'customer', 'delete', c.id, c.erp_customer_number,
               to_jsonb(c)
        FROM customer c WHERE c.org_id = :org_id AND {_INSERTED_CUSTOMER}
        """
    )
    run_sql(
        """
        DELETE FROM customer_contact WHERE id IN (
            SELECT contact_id FROM change_history
            WHERE run_id = :revert_id AND entity = 'contact' AND action = 'delete')
        """
    )
    run_sql(
        """
        DELETE FROM customer WHERE id IN (
            SELECT customer_id FROM change_history
            WHERE run_id = :revert_id AND entity = 'customer' AND action = 'delete')
        """
    )
    # 2. the values the run changed; a primary the run set is demoted here, before step 4.
    customer_fields = [*CUSTOMER_FIELDS, "is_active", FINGERPRINT, RAW_FINGERPRINT, RAW_CONTACTS]
    customers_changed = run_sql(
        f"""
        {_befores("customer", "customer_id")}
        UPDATE customer c SET {_restored(conn, customer, customer_fields, "c")}
        FROM p WHERE c.id = p.id AND c.org_id = :org_id
        """
    )
    contact_fields = [f for f in CONTACT_FIELDS if f != "is_primary"]
    contacts_updated = run_sql(
        f"""
        {_befores("contact", "contact_id")}
        UPDATE customer_contact cc SET {_restored(conn, customer_contact, contact_fields, "cc")},
            is_primary = CASE WHEN p.v ? 'is_primary' AND NOT (p.v ->> 'is_primary')::boolean
                              THEN false ELSE cc.is_primary END
        FROM p WHERE cc.id = p.id AND cc.org_id = :org_id
        """
    )
    # 3. what the run deleted (a revert's deletions), whole again: customers, then contacts.
    customers_restored = run_sql(
        """
        INSERT INTO customer
        SELECT r.* FROM change_history h, jsonb_populate_record(NULL::customer, h.before) r
        WHERE h.run_id = :run_id AND h.entity = 'customer' AND h.action = 'delete'
        ORDER BY h.id
        """
    )
    contacts_restored = run_sql(
        """
        INSERT INTO customer_contact
        SELECT r.* FROM change_history h,
             jsonb_populate_record(NULL::customer_contact, h.before) r
        WHERE h.run_id = :run_id AND h.entity = 'contact' AND h.action = 'delete'
        ORDER BY h.id
        """
    )
    # 4. the primaries the run demoted.
    run_sql(
        f"""
        {_befores("contact", "contact_id")}
        UPDATE customer_contact cc SET is_primary = true
        FROM p WHERE cc.id = p.id AND cc.org_id = :org_id AND (p.v ->> 'is_primary')::boolean
        """
    )
    # The revert's own history: the run's updates swapped, its deletions as insertions.
    run_sql(
        """
        INSERT INTO change_history (run_id, org_id, entity, action, customer_id, contact_id,
                                    erp_customer_number, contact_email, before, after)
        SELECT :revert_id, org_id, entity,
               CASE action WHEN 'delete' THEN 'insert' ELSE 'update' END,
               customer_id, contact_id, erp_customer_number, contact_email,
               CASE action WHEN 'update' THEN after END, before
        FROM change_history
        WHERE run_id = :run_id AND action IN ('update', 'delete')
        ORDER BY id
        """
    )
    activity = conn.execute(
        sa.text(
            """
            SELECT
              count(*) FILTER (WHERE (before ->> 'is_active')::boolean IS FALSE),
              count(*) FILTER (WHERE (before ->> 'is_active')::boolean IS TRUE),
              count(*) FILTER (WHERE EXISTS (
                  SELECT FROM jsonb_object_keys(before) k(field)
                  WHERE k.field <> ALL(:hidden)))
            FROM change_history
            WHERE run_id = :run_id AND entity = 'customer' AND action = 'update'
            """
        ),
        {**params, "hidden": ["is_active", FINGERPRINT, RAW_FINGERPRINT, RAW_CONTACTS]},
    ).one()
    del customers_changed
    return RevertCounts(
        customers_deleted=customers_deleted,
        customers_restored=customers_restored,
        customers_updated=int(activity[2]),
        customers_deactivated=int(activity[0]),
        customers_reactivated=int(activity[1]),
        contacts_deleted=contacts_deleted,
        contacts_restored=contacts_restored,
        contacts_updated=contacts_updated,
    )


def mark_reverted(conn: Connection, run: RunInfo, revert_id: uuid.UUID) -> None:
    """The run's changes are undone; a run that the reverted run had reverted stands again."""
    r = import_run.c
    conn.execute(import_run.update().where(r.id == run.id).values(reverted_by=revert_id))
    if run.reverts is not None:
        conn.execute(import_run.update().where(r.id == run.reverts).values(reverted_by=None))
