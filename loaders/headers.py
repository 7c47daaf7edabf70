"""The header of the last applied file per organisation and source profile (header drift)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from loaders.tables import source_header


@dataclass(frozen=True)
class StoredHeader:
    """How the last applied file of an organisation and profile was laid out."""

    header: tuple[str, ...]
    delimiter: str | None
    encoding: str | None


def last_header(conn: Connection, org_id: uuid.UUID, profile: str) -> StoredHeader | None:
    """The header of the organisation's last applied file of `profile`, if any."""
    row = conn.execute(
        sa.select(
            source_header.c.header, source_header.c.delimiter, source_header.c.encoding
        ).where(source_header.c.org_id == org_id, source_header.c.profile == profile)
    ).first()
    if row is None:
        return None
    return StoredHeader(tuple(row.header), row.delimiter, row.encoding)


def record_header(
    conn: Connection,
    org_id: uuid.UUID,
    profile: str,
    run_id: uuid.UUID,
    layout: StoredHeader,
) -> None:
    """Remember the header of an applied file (in the run's own transaction)."""
    values = {
        "org_id": org_id,
        "profile": profile,
        "header": list(layout.header),
        "delimiter": layout.delimiter,
        "encoding": layout.encoding,
        "run_id": run_id,
    }
    statement = insert(source_header).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[source_header.c.org_id, source_header.c.profile],
            set_={
                "header": statement.excluded.header,
                "delimiter": statement.excluded.delimiter,
                "encoding": statement.excluded.encoding,
                "run_id": statement.excluded.run_id,
                "updated_at": sa.func.now(),
            },
        )
    )
