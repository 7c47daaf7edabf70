"""The record of import runs: import_run (one row per run), import_issue (one per issue) and
import_rejected_row (one per rejected row): everything the run's report files are written from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from contract import APPLIED_STATUSES, ISSUE_COLUMNS, ImportMode, Summary
from loaders.exceptions import AmbiguousRunIdError
from loaders.tables import import_issue, import_rejected_row, import_run, org

if TYPE_CHECKING:  # reading runs (`erp-sync runs`, `report`) needs no polars: see record_run
    import polars as pl

# Every column of import_issue but its generated id.
ISSUE_COPY_COLUMNS = [column.name for column in import_issue.c if not column.primary_key]

REJECTED_ROW_COPY_COLUMNS = ["run_id", "position", "line", "cells", "extra", "errors", "file"]


@dataclass(frozen=True)
class StoredReports:
    """What a recorded run's report files are written from, as the run recorded it."""

    summary: Summary
    issues: pl.DataFrame
    """the issues in the order the run reported them (ISSUE_SCHEMA)"""
    header: tuple[str, ...] | None
    """the source header; None for a run recorded before the header was kept (migration 0005)"""
    rejected_rows: pl.DataFrame
    """`_line`, `c0`..`c{k-1}` (k = len(header) + len(contacts_header)), `_extra` and `errors`,
    in the run's order; with a contacts header also `_file` (the contacts file's rows)"""
    reports_written_at: datetime | None
    contacts_header: tuple[str, ...] | None = None
    """a two-file export's contacts header, when its rejected rows were split by file"""
    contacts_delimiter: str | None = None


def find_applied_run(conn: Connection, org_id: uuid.UUID, sha256: str) -> uuid.UUID | None:
    """The run that applied these bytes to this organisation, if any.

    Dry runs do not count, nor reverted runs (their bytes apply again), nor reverts.
    """
    return conn.execute(
        sa.select(import_run.c.id)
        .where(
            import_run.c.org_id == org_id,
            import_run.c.sha256 == sha256,
            import_run.c.status.in_([str(s) for s in APPLIED_STATUSES]),
            import_run.c.dry_run.is_(False),
            import_run.c.reverted_by.is_(None),
            import_run.c.mode != str(ImportMode.REVERT),
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
    header: Sequence[str] = (),
    rejected_rows: pl.DataFrame | None = None,
    reports_written_at: datetime | None = None,
    contacts_header: Sequence[str] = (),
    contacts_delimiter: str | None = None,
) -> None:
    """Insert the run's row and COPY its issues and rejected rows, on the caller's transaction.

    `rejected_rows` is the validators' frame (`_line`, `c0`..`c{k-1}` for the k columns of
    `header`, `_extra`, `errors`); with the header, the delimiter and the issues it is all that
    the report files need, so they can be written again from here (`read_stored_reports`).
    A two-file export's frame has `_file` and the contacts file's cells after the customers
    file's: with `contacts_header` they are kept too (rejected_contacts.csv).
    """
    import polars as pl

    from loaders.staging import copy_frame

    split = rejected_rows is not None and "_file" in rejected_rows.columns
    stored_contacts_header = list(contacts_header) if split else None

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
            header=list(header),
            contacts_header=stored_contacts_header,
            contacts_delimiter=contacts_delimiter if split else None,
            as_of=summary.as_of,
            reverts=uuid.UUID(summary.reverts) if summary.reverts else None,
            reports_written_at=reports_written_at,
        )
    )
    if issues.height:
        frame = issues.rename({"column": "column_name"}).with_columns(
            pl.lit(summary.run_id).alias("run_id"), pl.lit(str(org_id)).alias("org_id")
        )
        copy_frame(conn, import_issue, frame, ISSUE_COPY_COLUMNS)
    if rejected_rows is not None and rejected_rows.height:
        width = len(header) + len(stored_contacts_header or ())
        frame = _rejected_row_records(rejected_rows, width).with_columns(
            pl.lit(summary.run_id).alias("run_id")
        )
        copy_frame(conn, import_rejected_row, frame, REJECTED_ROW_COPY_COLUMNS)


def _array_element(value: pl.Expr) -> pl.Expr:
    """One element of a PostgreSQL array literal: NULL, or the text quoted and escaped."""
    import polars as pl

    escaped = value.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
        '"', '\\"', literal=True
    )
    return (
        pl.when(value.is_null())
        .then(pl.lit("NULL"))
        .otherwise(pl.concat_str([pl.lit('"'), escaped, pl.lit('"')]))
    )


def _rejected_row_records(rejected_rows: pl.DataFrame, width: int) -> pl.DataFrame:
    """The rejected rows as import_rejected_row's columns, arrays as text literals for COPY."""
    import polars as pl

    columns = rejected_rows.columns
    cells = [
        _array_element(pl.col(f"c{i}").cast(pl.String)) if f"c{i}" in columns else pl.lit("NULL")
        for i in range(width)
    ]
    cells_literal = (
        pl.concat_str([pl.lit("{"), pl.concat_str(cells, separator=","), pl.lit("}")])
        if cells
        else pl.lit("{}")
    )
    if "_extra" in columns and rejected_rows.schema["_extra"] != pl.Null:
        extra = pl.col("_extra").cast(pl.List(pl.String))
        extra_literal = pl.concat_str(
            [pl.lit("{"), extra.list.eval(_array_element(pl.element())).list.join(","), pl.lit("}")]
        )
    else:
        extra_literal = pl.lit(None, dtype=pl.String)
    return rejected_rows.with_row_index("position").select(
        pl.col("position").cast(pl.Int64),
        (pl.col("_line").cast(pl.Int64) if "_line" in columns else pl.lit(None, pl.Int64)).alias(
            "line"
        ),
        cells_literal.alias("cells"),
        extra_literal.alias("extra"),
        (
            pl.col("errors").cast(pl.String) if "errors" in columns else pl.lit(None, pl.String)
        ).alias("errors"),
        (pl.col("_file").cast(pl.String) if "_file" in columns else pl.lit(None, pl.String)).alias(
            "file"
        ),
    )


def read_stored_reports(conn: Connection, run_id: uuid.UUID) -> StoredReports | None:
    """Everything a recorded run's report files are written from, or None for no such run."""
    import polars as pl

    from contract.frames import ISSUE_SCHEMA

    run = conn.execute(
        sa.select(
            import_run.c.summary,
            import_run.c.header,
            import_run.c.reports_written_at,
            import_run.c.contacts_header,
            import_run.c.contacts_delimiter,
        ).where(import_run.c.id == run_id)
    ).one_or_none()
    if run is None:
        return None
    issue_rows = conn.execute(
        sa.select(
            *(
                import_issue.c.column_name.label("column")
                if name == "column"
                else import_issue.c[name]
                for name in ISSUE_COLUMNS
            )
        )
        .where(import_issue.c.run_id == run_id)
        .order_by(import_issue.c.id)
    ).all()
    issues = pl.DataFrame([tuple(r) for r in issue_rows], schema=ISSUE_SCHEMA, orient="row")
    header = tuple(run.header) if run.header is not None else None
    contacts_header = tuple(run.contacts_header) if run.contacts_header is not None else None
    width = len(header or ()) + len(contacts_header or ())
    rejected = conn.execute(
        sa.select(
            import_rejected_row.c.line,
            import_rejected_row.c.cells,
            import_rejected_row.c.extra,
            import_rejected_row.c.errors,
            import_rejected_row.c.file,
        )
        .where(import_rejected_row.c.run_id == run_id)
        .order_by(import_rejected_row.c.position)
    ).all()
    stored = pl.DataFrame(
        {
            "_line": [r.line for r in rejected],
            "cells": [r.cells for r in rejected],
            "_extra": [r.extra for r in rejected],
            "errors": [r.errors for r in rejected],
            "_file": [r.file for r in rejected],
        },
        schema={
            "_line": pl.Int64(),
            "cells": pl.List(pl.String),
            "_extra": pl.List(pl.String),
            "errors": pl.String(),
            "_file": pl.String(),
        },
    )
    rejected_rows = stored.select(
        "_line",
        *(pl.col("cells").list.get(i, null_on_oob=True).alias(f"c{i}") for i in range(width)),
        "_extra",
        "errors",
        *(["_file"] if contacts_header is not None else []),
    )
    return StoredReports(
        summary=summary_of(run.summary),
        issues=issues,
        header=header,
        rejected_rows=rejected_rows,
        reports_written_at=run.reports_written_at,
        contacts_header=contacts_header,
        contacts_delimiter=run.contacts_delimiter,
    )


def runs_missing_reports(conn: Connection, org_id: uuid.UUID) -> list[uuid.UUID]:
    """The organisation's runs whose report files were never written, oldest first."""
    return list(
        conn.execute(
            sa.select(import_run.c.id)
            .where(
                import_run.c.org_id == org_id,
                import_run.c.reports_written_at.is_(None),
                import_run.c.header.is_not(None),
            )
            .order_by(import_run.c.started_at)
        ).scalars()
    )


def mark_reports_written(conn: Connection, run_id: uuid.UUID, report_dir: str | None) -> None:
    """Note that the run's report files were written now, into report_dir (its run folder)."""
    values: dict[str, Any] = {"reports_written_at": sa.func.now()}
    if report_dir is not None:
        values["report_dir"] = report_dir
        values["summary"] = sa.func.jsonb_set(
            import_run.c.summary,
            sa.literal(["report_dir"], sa.ARRAY(sa.Text)),
            sa.func.to_jsonb(sa.cast(sa.literal(report_dir), sa.Text)),
        )
    conn.execute(import_run.update().where(import_run.c.id == run_id).values(**values))


def summary_of(document: Mapping[str, Any]) -> Summary:
    """A stored summary document as the run wrote it: jsonb keeps no key order, so
    issues_by_code is put back in the summary's order (most frequent first, then by code)."""
    by_code: Mapping[str, int] = document.get("issues_by_code") or {}
    ordered = dict(sorted(by_code.items(), key=lambda item: (-item[1], item[0])))
    return Summary.model_validate({**document, "issues_by_code": ordered})


#: Runs named at most when a run id prefix matches several.
AMBIGUOUS_SHOWN = 10


def find_run_id(conn: Connection, run_id: str) -> uuid.UUID | None:
    """The id of the run named by run_id or by a unique prefix of it; None when no run matches.

    Raises AmbiguousRunIdError, naming the runs, when the prefix matches more than one.
    """
    try:
        return conn.execute(
            sa.select(import_run.c.id).where(import_run.c.id == uuid.UUID(run_id))
        ).scalar()
    except ValueError:
        pass
    rows = conn.execute(
        sa.select(import_run.c.id, import_run.c.source, org.c.slug)
        .select_from(import_run.join(org, org.c.id == import_run.c.org_id))
        .where(sa.cast(import_run.c.id, sa.Text).startswith(run_id.lower(), autoescape=True))
        .order_by(import_run.c.started_at.desc())
        .limit(AMBIGUOUS_SHOWN + 1)
    ).all()
    if len(rows) > 1:
        candidates = [(str(r.id), r.slug, PurePath(r.source).name) for r in rows[:AMBIGUOUS_SHOWN]]
        raise AmbiguousRunIdError(run_id, candidates, more=len(rows) > AMBIGUOUS_SHOWN)
    return rows[0].id if rows else None


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
    return [summary_of(row.summary) for row in conn.execute(stmt)]


def get_run(conn: Connection, run_id: str) -> Summary | None:
    """One run's summary by id (a unique prefix of the id is enough), or None."""
    found = find_run_id(conn, run_id)
    if found is None:
        return None
    document = conn.execute(
        sa.select(import_run.c.summary).where(import_run.c.id == found)
    ).scalar_one()
    return summary_of(document)
