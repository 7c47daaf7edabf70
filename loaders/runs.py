"""The record of import runs: import_run (one row per run) and import_issue (one per issue)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from contract import APPLIED_STATUSES, Summary
from loaders.tables import import_issue, import_run, org

if TYPE_CHECKING:  # reading runs (`erp-sync runs`, `report`) needs no polars: see record_run
    import polars as pl

# Every column of import_issue but its generated id.
ISSUE_COPY_COLUMNS = [column.name for column in import_issue.c if not column.primary_key]


def find_applied_run(conn: Connection, org_id: uuid.UUID, sha256: str) -> uuid.UUID | None:
    """The run that applied these bytes to this organisation, if any (dry runs do not count)."""
    return conn.execute(
        sa.select(import_run.c.id)
        .where(
            import_run.c.org_id == org_id,
            import_run.c.sha256 == sha256,
            import_run.c.status.in_([str(s) for s in APPLIED_STATUSES]),
            import_run.c.dry_run.is_(False),
        )
        .order_by(import_run.c.started_at.desc())
        .limit(1)
    ).scalar()


def record_run(
    conn: Connection,
    org_id: uuid.UUID,
    summary: Summary,
    issues: pl.DataFrame,
    *,
    forced: bool,
) -> None:
    """Insert the run's row and COPY its issues, on the caller's transaction."""
    import polars as pl

    from loaders.staging import copy_frame

    rows, customers, contacts = summary.rows, summary.customers, summary.contacts
    document = summary.to_json_dict()
    conn.execute(
        import_run.insert().values(
            id=uuid.UUID(summary.run_id),
            org_id=org_id,
            source=summary.source,
            sha256=summary.sha256 or "",
            mode=str(summary.mode),
            dry_run=summary.dry_run,
            forced=forced,
            status=str(summary.status),
            started_at=summary.started_at,
            finished_at=summary.finished_at,
            encoding=summary.encoding,
            delimiter=summary.delimiter,
            rows_read=rows.read,
            rows_valid=rows.valid,
            rows_rejected=rows.rejected,
            customers_inserted=customers.inserted,
            customers_updated=customers.updated,
            customers_unchanged=customers.unchanged,
            customers_deactivated=customers.deactivated,
            customers_reactivated=customers.reactivated,
            customers_rejected=customers.rejected,
            contacts_inserted=contacts.inserted,
            contacts_updated=contacts.updated,
            contacts_unchanged=contacts.unchanged,
            issues_by_code=document["issues_by_code"],
            file_errors=document["file_errors"],
            report_dir=summary.report_dir,
            summary=document,
        )
    )
    if issues.height:
        frame = issues.rename({"column": "column_name"}).with_columns(
            pl.lit(summary.run_id).alias("run_id"), pl.lit(str(org_id)).alias("org_id")
        )
        copy_frame(conn, import_issue, frame, ISSUE_COPY_COLUMNS)


def list_runs(conn: Connection, org_slug: str | None = None, limit: int = 20) -> list[Summary]:
    """Summaries of past runs, newest first."""
    stmt = (
        sa.select(import_run.c.summary)
        .select_from(import_run.join(org, org.c.id == import_run.c.org_id))
        .order_by(import_run.c.started_at.desc())
        .limit(limit)
    )
    if org_slug is not None:
        stmt = stmt.where(org.c.slug == org_slug)
    return [Summary.model_validate(row.summary) for row in conn.execute(stmt)]


def get_run(conn: Connection, run_id: str) -> Summary | None:
    """One run's summary by id (a unique prefix of the id is enough), or None."""
    try:
        exact = uuid.UUID(run_id)
    except ValueError:
        exact = None
    if exact is not None:
        stmt = sa.select(import_run.c.summary).where(import_run.c.id == exact)
    else:
        stmt = (
            sa.select(import_run.c.summary)
            .where(sa.cast(import_run.c.id, sa.Text).startswith(run_id.lower()))
            .limit(2)
        )
    rows = conn.execute(stmt).all()
    return Summary.model_validate(rows[0].summary) if len(rows) == 1 else None
