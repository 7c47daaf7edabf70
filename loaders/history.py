"""The change history of applied runs: recorded set-based inside the load, read back, pruned.

A load records, in its own transaction and before it writes, one `change_history` row per
customer or contact it updates, deactivates, reactivates or demotes: the changed fields' values
before and after, as JSON objects (one INSERT ... SELECT per kind, never a row per round trip).
What it inserts is not recorded row by row: `created_run_id` of each new row names the run (the
column's default reads `erp_sync.run_id`, which `start_recording` sets for the transaction).

SQL identifiers come from the table metadata and the contract's field lists; values are bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from contract import (
    APPLIED_STATUSES,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    FINGERPRINT,
    RAW_CONTACTS,
    RAW_FINGERPRINT,
    ImportMode,
)
from loaders.tables import (
    RUN_SETTING,
    change_field_count,
    change_history,
    customer,
    customer_contact,
    import_run,
    org,
)

#: Recorded so that a revert restores it, never shown as a change of a value.
HIDDEN_FIELDS = frozenset({FINGERPRINT, RAW_FINGERPRINT, RAW_CONTACTS})


def _q(conn: Connection, name: str) -> str:
    """A quoted identifier; the name comes from the metadata or the contract, never a file."""
    return conn.dialect.identifier_preparer.quote(name)


def start_recording(conn: Connection, run_id: uuid.UUID | str) -> None:
    """Name the run for this transaction: every row it inserts gets created_run_id = run_id."""
    conn.execute(sa.select(sa.func.set_config(RUN_SETTING, str(run_id), True)))


def _changed_fields(conn: Connection, pairs: Sequence[tuple[str, str, str]]) -> str:
    """A LATERAL subquery: {field: old} and {field: new} of the pairs whose values differ.

    pairs: (field name, old value SQL, new value SQL); the objects are NULL when none differ.
    """
    values = ", ".join(f"('{name}', to_jsonb({old}), to_jsonb({new}))" for name, old, new in pairs)
    return (
        "LATERAL (SELECT jsonb_object_agg(v.field, v.old) AS before, "
        "jsonb_object_agg(v.field, v.new) AS after "
        f"FROM (VALUES {values}) AS v(field, old, new) WHERE v.old IS DISTINCT FROM v.new) x"
    )


def record_customer_changes(
    conn: Connection,
    run_id: uuid.UUID | str,
    org_id: uuid.UUID,
    delta: sa.TableClause,
    fields: Sequence[str],
) -> int:
    """Record the changes the load's customer UPDATE is about to write (call it before).

    `delta` is the load's classification (loaders/upsert.py `customer_delta`): every row not
    new is updated to its fields, its fingerprint, and `is_active OR reactivate`.
    """
    pairs = [(f, f"c.{_q(conn, f)}", f"d.{_q(conn, f)}") for f in fields if f in CUSTOMER_FIELDS]
    pairs.append(("is_active", "c.is_active", "(c.is_active OR d.reactivate)"))
    pairs.append((FINGERPRINT, f"c.{FINGERPRINT}", f"d.{FINGERPRINT}"))
    # the raw fingerprint (0009) goes back with the row when the run is reverted
    pairs += [(name, f"c.{name}", f"d.{name}") for name in (RAW_FINGERPRINT, RAW_CONTACTS)]
    statement = f"""
        INSERT INTO change_history
            (run_id, org_id, entity, action, customer_id, erp_customer_number, before, after)
        SELECT :run_id, :org_id, 'customer', 'update', c.id, c.erp_customer_number,
               x.before, x.after
        FROM {_q(conn, delta.name)} d
        JOIN customer c ON c.id = d.customer_id,
        {_changed_fields(conn, pairs)}
        WHERE NOT d.is_new AND x.before IS NOT NULL
    """
    result = conn.execute(sa.text(statement), {"run_id": str(run_id), "org_id": org_id})
    return int(result.rowcount)


def record_deactivations(
    conn: Connection, run_id: uuid.UUID | str, org_id: uuid.UUID, stage_key: sa.Table
) -> int:
    """Full mode: record the deactivation of the active customers that the file lacks."""
    statement = f"""
        INSERT INTO change_history
            (run_id, org_id, entity, action, customer_id, erp_customer_number, before, after)
        SELECT :run_id, :org_id, 'customer', 'update', c.id, c.erp_customer_number,
               '{{"is_active": true}}'::jsonb, '{{"is_active": false}}'::jsonb
        FROM customer c
        WHERE c.org_id = :org_id AND c.is_active
          AND NOT EXISTS (SELECT FROM {_q(conn, stage_key.name)} k
                          WHERE k.erp_customer_number = c.erp_customer_number)
    """
    result = conn.execute(sa.text(statement), {"run_id": str(run_id), "org_id": org_id})
    return int(result.rowcount)


def record_contact_changes(
    conn: Connection,
    run_id: uuid.UUID | str,
    org_id: uuid.UUID,
    delta: sa.TableClause,
    fields: Sequence[str],
) -> int:
    """Record the changes the load's contact statements are about to write (call before them).

    `delta` is `contact_delta`: every row not new is updated to its fields; when the file sets
    `is_primary`, the customer's other primary contact is demoted (recorded here too, unless
    the contact is in the delta itself).
    """
    shown = [f for f in fields if f in CONTACT_FIELDS]
    params = {"run_id": str(run_id), "org_id": org_id}
    recorded = 0
    if shown:
        pairs = [(f, f"cc.{_q(conn, f)}", f"d.{_q(conn, f)}") for f in shown]
        statement = f"""
            INSERT INTO change_history
                (run_id, org_id, entity, action, customer_id, contact_id, erp_customer_number,
                 contact_email, before, after)
            SELECT :run_id, :org_id, 'contact', 'update', cc.customer_id, cc.id,
                   cu.erp_customer_number, cc.email, x.before, x.after
            FROM {_q(conn, delta.name)} d
            JOIN customer_contact cc ON cc.id = d.contact_id
            JOIN customer cu ON cu.id = cc.customer_id,
            {_changed_fields(conn, pairs)}
            WHERE NOT d.is_new AND x.before IS NOT NULL
        """
        recorded += int(conn.execute(sa.text(statement), params).rowcount)
    if "is_primary" in shown:
        delta_name = _q(conn, delta.name)
        statement = f"""
            INSERT INTO change_history
                (run_id, org_id, entity, action, customer_id, contact_id, erp_customer_number,
                 contact_email, before, after)
            SELECT :run_id, :org_id, 'contact', 'update', cc.customer_id, cc.id,
                   cu.erp_customer_number, cc.email,
                   '{{"is_primary": true}}'::jsonb, '{{"is_primary": false}}'::jsonb
            FROM customer_contact cc
            JOIN customer cu ON cu.id = cc.customer_id
            WHERE cc.is_primary
              AND EXISTS (SELECT FROM {delta_name} d WHERE d.is_primary
                          AND d.customer_id = cc.customer_id AND d.email <> cc.email)
              AND NOT EXISTS (SELECT FROM {delta_name} d WHERE d.contact_id = cc.id)
        """
        recorded += int(conn.execute(sa.text(statement), params).rowcount)
    return recorded


def count_changes(conn: Connection, run_id: uuid.UUID | str) -> None:
    """Store how many customers and contacts the run changed per field (change_field_count)."""
    conn.execute(
        sa.text(
            """
            INSERT INTO change_field_count (run_id, entity, field, changes)
            SELECT h.run_id, h.entity, k.field, count(*)
            FROM change_history h, jsonb_object_keys(h.after) AS k(field)
            WHERE h.run_id = :run_id AND h.action = 'update' AND k.field <> ALL(:hidden)
            GROUP BY h.run_id, h.entity, k.field
            """
        ),
        {"run_id": str(run_id), "hidden": sorted(HIDDEN_FIELDS)},
    )


# --- reading it back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field of one customer or contact: its value before and after."""

    field: str
    before: Any
    after: Any


@dataclass
class EntityChange:
    """What a run did to one customer or contact, with the changed fields."""

    action: str
    """inserted, updated, deactivated, reactivated, deleted or restored"""
    email: str | None = None
    fields: list[FieldChange] = field(default_factory=list)


@dataclass
class CustomerChanges:
    """What a run did to one customer and its contacts."""

    erp_customer_number: str
    action: str | None
    """what happened to the customer itself; None when only its contacts changed"""
    fields: list[FieldChange] = field(default_factory=list)
    contacts: list[EntityChange] = field(default_factory=list)


@dataclass(frozen=True)
class RunInfo:
    """The run a history belongs to."""

    id: uuid.UUID
    org_id: uuid.UUID
    org: str
    source: str
    mode: str
    status: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    reverts: uuid.UUID | None
    reverted_by: uuid.UUID | None
    history_pruned_at: datetime | None
    as_of: datetime | None

    @property
    def applied(self) -> bool:
        """Whether the run changed data (succeeded or partial, not a dry run)."""
        return self.status in {str(s) for s in APPLIED_STATUSES} and not self.dry_run


def get_run_info(conn: Connection, run_id: uuid.UUID) -> RunInfo | None:
    """The run's identity and revert state, or None."""
    r = import_run.c
    row = conn.execute(
        sa.select(
            r.id,
            r.org_id,
            org.c.slug,
            r.source,
            r.mode,
            r.status,
            r.dry_run,
            r.started_at,
            r.finished_at,
            r.reverts,
            r.reverted_by,
            r.history_pruned_at,
            r.as_of,
        )
        .select_from(import_run.join(org, org.c.id == r.org_id))
        .where(r.id == run_id)
    ).one_or_none()
    if row is None:
        return None
    return RunInfo(*tuple(row))


def _action_of(entity_action: str, before: dict[str, Any] | None) -> str:
    if entity_action == "delete":
        return "deleted"
    if entity_action == "insert":
        return "restored"
    keys = set(before or {})
    if keys == {"is_active"} or (keys and "is_active" in keys):
        return "reactivated" if before and before.get("is_active") is False else "deactivated"
    return "updated"


def _fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    before, after = before or {}, after or {}
    return [
        FieldChange(name, before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
        if name not in HIDDEN_FIELDS
    ]


def _history_rows(conn: Connection, where: sa.ColumnElement[bool]) -> list[Any]:
    h = change_history.c
    return list(
        conn.execute(
            sa.select(
                h.run_id,
                h.entity,
                h.action,
                h.customer_id,
                h.contact_id,
                h.erp_customer_number,
                h.contact_email,
                h.before,
                h.after,
            )
            .where(where)
            .order_by(h.erp_customer_number, h.entity.desc(), h.contact_email, h.id)
        )
    )


def _inserted_rows(
    conn: Connection, org_id: uuid.UUID, run_ids: Sequence[uuid.UUID], number: str | None
) -> tuple[list[Any], list[Any]]:
    """(customers, contacts) that the runs inserted and that still exist."""
    c, cc = customer.c, customer_contact.c
    customers = sa.select(c.created_run_id, c.erp_customer_number).where(
        c.org_id == org_id, c.created_run_id.in_(run_ids)
    )
    contacts = (
        sa.select(cc.created_run_id, c.erp_customer_number, cc.email)
        .select_from(customer_contact.join(customer, c.id == cc.customer_id))
        .where(cc.org_id == org_id, cc.created_run_id.in_(run_ids))
    )
    if number is not None:
        customers = customers.where(c.erp_customer_number == number)
        contacts = contacts.where(c.erp_customer_number == number)
    return (
        list(conn.execute(customers.order_by(c.erp_customer_number))),
        list(conn.execute(contacts.order_by(c.erp_customer_number, cc.email))),
    )


def _merge(
    history: Sequence[Any], inserted_customers: Sequence[Any], inserted_contacts: Sequence[Any]
) -> dict[uuid.UUID, dict[str, CustomerChanges]]:
    """run id -> customer number -> what the run did, from history rows and inserted rows."""
    runs: dict[uuid.UUID, dict[str, CustomerChanges]] = {}

    def of(run_id: uuid.UUID, number: str) -> CustomerChanges:
        per_run = runs.setdefault(run_id, {})
        return per_run.setdefault(number, CustomerChanges(number, None))

    for run_id, number in inserted_customers:
        of(run_id, number).action = "inserted"
    for row in history:
        target = of(row.run_id, row.erp_customer_number)
        action = _action_of(row.action, row.before)
        if row.entity == "customer":
            fields = _fields(row.before, row.after) if row.action == "update" else []
            if row.action == "update" and not fields:
                continue  # only the fingerprint: its contacts changed, not the customer
            target.action = action
            target.fields = fields
        else:
            fields = _fields(row.before, row.after) if row.action == "update" else []
            target.contacts.append(EntityChange(action, row.contact_email, fields))
    for run_id, number, email in inserted_contacts:
        target = of(run_id, number)
        if target.action != "inserted":
            target.contacts.append(EntityChange("inserted", email))
    return runs


def run_changes(conn: Connection, run: RunInfo, number: str | None = None) -> list[CustomerChanges]:
    """What one run did, per customer (in customer number order); only `number` when given."""
    where = change_history.c.run_id == run.id
    if number is not None:
        where = sa.and_(
            where,
            change_history.c.org_id == run.org_id,
            change_history.c.erp_customer_number == number,
        )
    history = _history_rows(conn, where)
    customers, contacts = _inserted_rows(conn, run.org_id, [run.id], number)
    merged = _merge(history, customers, contacts).get(run.id, {})
    return [merged[key] for key in sorted(merged)]


def customer_history(
    conn: Connection, org_id: uuid.UUID, number: str
) -> list[tuple[RunInfo, CustomerChanges]]:
    """Every run that touched the customer, newest first, with what it did to it."""
    h, c, cc = change_history.c, customer.c, customer_contact.c
    run_ids = set(
        conn.execute(
            sa.select(h.run_id).where(h.org_id == org_id, h.erp_customer_number == number)
        ).scalars()
    )
    run_ids |= set(
        conn.execute(
            sa.union(
                sa.select(c.created_run_id).where(
                    c.org_id == org_id, c.erp_customer_number == number
                ),
                sa.select(cc.created_run_id)
                .select_from(customer_contact.join(customer, c.id == cc.customer_id))
                .where(c.org_id == org_id, c.erp_customer_number == number),
            )
        ).scalars()
    )
    run_ids.discard(None)
    if not run_ids:
        return []
    ids = sorted(run_ids)
    history = _history_rows(
        conn, sa.and_(h.org_id == org_id, h.erp_customer_number == number, h.run_id.in_(ids))
    )
    customers, contacts = _inserted_rows(conn, org_id, ids, number)
    merged = _merge(history, customers, contacts)
    infos = [info for run_id in ids if (info := get_run_info(conn, run_id)) is not None]
    infos.sort(key=lambda info: (info.finished_at or info.started_at, str(info.id)), reverse=True)
    return [(info, merged[info.id][number]) for info in infos if number in merged.get(info.id, {})]


def field_counts(conn: Connection, run_id: uuid.UUID | str) -> list[tuple[str, str, int]]:
    """(entity, field, rows changed) of one run, most changed first."""
    f = change_field_count.c
    rows = conn.execute(
        sa.select(f.entity, f.field, f.changes)
        .where(f.run_id == uuid.UUID(str(run_id)))
        .order_by(f.changes.desc(), f.entity, f.field)
    )
    return [(entity, name, int(n)) for entity, name, n in rows]


def fields_changed_per_run(conn: Connection, run_ids: Sequence[uuid.UUID | str]) -> dict[str, int]:
    """run id -> fields changed in all (the runs index's figure); runs with none are left out."""
    if not run_ids:
        return {}
    f = change_field_count.c
    rows = conn.execute(
        sa.select(f.run_id, sa.func.sum(f.changes))
        .where(f.run_id.in_([uuid.UUID(str(r)) for r in run_ids]))
        .group_by(f.run_id)
    )
    return {str(run_id): int(total) for run_id, total in rows}


def first_changes(
    conn: Connection, run_id: uuid.UUID | str, limit: int
) -> list[tuple[str, str | None, str, Any, Any]]:
    """The first `limit` field changes of a run: (customer number, contact email, field,
    before, after), in customer number order."""
    h = change_history.c
    rows = conn.execute(
        sa.select(h.erp_customer_number, h.contact_email, h.before, h.after)
        .where(h.run_id == uuid.UUID(str(run_id)), h.action == "update")
        .order_by(h.erp_customer_number, h.entity.desc(), h.contact_email, h.id)
        .limit(limit)
    )
    shown: list[tuple[str, str | None, str, Any, Any]] = []
    for number, email, before, after in rows:
        for change in _fields(before, after):
            shown.append((number, email, change.field, change.before, change.after))
    return shown[:limit]


# --- retention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    """What `history prune` deleted."""

    runs: int
    rows: int


def prune_history(conn: Connection, cutoff: datetime) -> Pruned:
    """Delete the change history of runs that finished before cutoff; never customers.

    The per-field counts stay (the reports and the index keep their figures); the runs are
    marked, and can no longer be reverted.
    """
    r = import_run.c
    old = (
        sa.select(r.id)
        .where(
            sa.func.coalesce(r.finished_at, r.started_at) < cutoff,
            r.history_pruned_at.is_(None),
            r.status.in_([str(s) for s in APPLIED_STATUSES]),
            r.dry_run.is_(False),
        )
        .scalar_subquery()
    )
    ids = list(conn.execute(sa.select(r.id).where(r.id.in_(old))).scalars())
    if not ids:
        return Pruned(0, 0)
    deleted = conn.execute(change_history.delete().where(change_history.c.run_id.in_(ids))).rowcount
    conn.execute(import_run.update().where(r.id.in_(ids)).values(history_pruned_at=sa.func.now()))
    return Pruned(len(ids), int(deleted))


# --- the as-of guard ---------------------------------------------------------------------------


def newest_applied_as_of(conn: Connection, org_id: uuid.UUID) -> tuple[datetime, str] | None:
    """(as-of, source) of the newest as-of applied for the organisation and not reverted."""
    r = import_run.c
    row = conn.execute(
        sa.select(r.as_of, r.source)
        .where(
            r.org_id == org_id,
            r.as_of.is_not(None),
            r.status.in_([str(s) for s in APPLIED_STATUSES]),
            r.dry_run.is_(False),
            r.reverted_by.is_(None),
            r.mode != str(ImportMode.REVERT),
        )
        .order_by(r.as_of.desc())
        .limit(1)
    ).one_or_none()
    return (row.as_of, row.source) if row is not None else None
