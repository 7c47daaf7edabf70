"""Organisations: register and look up tenants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from loaders.exceptions import OrganisationNotFoundError
from loaders.tables import org


@dataclass(frozen=True)
class Organisation:
    """One tenant."""

    id: uuid.UUID
    slug: str
    name: str


def add_org(conn: Connection, slug: str, name: str | None = None) -> Organisation:
    """Register slug (idempotent: an existing one keeps its id; a given name updates it)."""
    stmt = insert(org).values(slug=slug, name=name or slug)
    if name is None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[org.c.slug])
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=[org.c.slug],
            set_={"name": stmt.excluded.name},
            where=org.c.name.is_distinct_from(stmt.excluded.name),
        )
    conn.execute(stmt)
    return get_org(conn, slug)


def get_org(conn: Connection, slug: str) -> Organisation:
    """The organisation with this slug, or OrganisationNotFoundError."""
    row = conn.execute(
        sa.select(org.c.id, org.c.slug, org.c.name).where(org.c.slug == slug)
    ).first()
    if row is None:
        raise OrganisationNotFoundError(
            f"unknown organisation {slug!r}: register it with `erp-sync org add {slug}`"
        )
    return Organisation(id=row.id, slug=row.slug, name=row.name)


def list_orgs(conn: Connection) -> list[Organisation]:
    """Every organisation, by slug."""
    rows = conn.execute(sa.select(org.c.id, org.c.slug, org.c.name).order_by(org.c.slug))
    return [Organisation(id=r.id, slug=r.slug, name=r.name) for r in rows]
