"""One import, as plain functions: read, validate, load in one transaction, write reports.

The Prefect flow in flows/import_flow.py wraps these steps as tasks; keeping them plain makes
each one testable on its own and keeps Prefect at the edge.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import reports
from contract import Summary
from contract.frames import empty_issues
from flows.progress import progress
from flows.reading import RawExport, ReadError, read_export
from loaders import runs, upsert
from loaders.exceptions import LoaderError
from loaders.orgs import Organisation
from validators import Validated, resolve_header, validate_rows

log = logging.getLogger(__name__)

SUCCEEDED, PARTIAL, SKIPPED, REJECTED, FAILED = (
    "succeeded",
    "partial",
    "skipped",
    "rejected",
    "failed",
)
EXIT_CODES = {SUCCEEDED: 0, SKIPPED: 0, PARTIAL: 1, REJECTED: 3, FAILED: 4}


@dataclass(frozen=True)
class ImportOptions:
    """What the caller asked for (the options of `erp-sync import`)."""

    mode: str = "upsert"
    dry_run: bool = False
    force: bool = False
    report_dir: Path = Path("reports")
    max_error_rate: float | None = None
    max_deactivate_rate: float | None = None


@dataclass
class RunState:
    """The run being built up; becomes summary.json."""

    run_id: str
    org: Organisation
    source: Path
    options: ImportOptions
    started_at: datetime
    sha256: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    status: str = FAILED
    rows: dict[str, int] = field(default_factory=lambda: {"read": 0, "valid": 0, "rejected": 0})
    counts: upsert.LoadCounts = field(default_factory=upsert.LoadCounts)
    customers_rejected: int = 0
    issues: pl.DataFrame = field(default_factory=empty_issues)
    file_errors: list[dict[str, str]] = field(default_factory=list)
    header: tuple[str, ...] = ()
    rejected_rows: pl.DataFrame | None = None
    finished_at: datetime | None = None

    @property
    def run_dir(self) -> Path:
        return self.options.report_dir / self.run_id

    def reject(self, code: str, message: str) -> None:
        self.status = REJECTED
        self.file_errors.append({"code": code, "message": message})

    def summary(self) -> dict[str, Any]:
        """The contract's summary.json document."""
        c = self.counts
        by_code = (
            self.issues.group_by("code").len().sort(["len", "code"], descending=[True, False])
            if self.issues.height
            else None
        )
        unknown = (
            self.issues.filter(pl.col("code") == "unknown_column")["column"].to_list()
            if self.issues.height
            else []
        )
        return {
            "run_id": self.run_id,
            "org": self.org.slug,
            "source": str(self.source),
            "sha256": self.sha256,
            "mode": self.options.mode,
            "dry_run": self.options.dry_run,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": (self.finished_at or _now()).isoformat(),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "rows": dict(self.rows),
            "customers": {
                "inserted": c.customers_inserted,
                "updated": c.customers_updated,
                "unchanged": c.customers_unchanged,
                "deactivated": c.customers_deactivated,
                "reactivated": c.customers_reactivated,
                "rejected": self.customers_rejected,
            },
            "contacts": {
                "inserted": c.contacts_inserted,
                "updated": c.contacts_updated,
                "unchanged": c.contacts_unchanged,
            },
            "issues_by_code": dict(by_code.iter_rows()) if by_code is not None else {},
            "file_errors": list(self.file_errors),
            "warnings": [f"unknown column {name!r} ignored" for name in unknown],
            "report_dir": str(self.run_dir),
        }


class DeactivationBudgetExceeded(Exception):
    """Full mode would deactivate more customers than --max-deactivate-rate allows."""


class _DryRunRollback(Exception):
    """Raised inside the transaction of a dry run so that nothing is kept."""


def _now() -> datetime:
    return datetime.now(UTC)


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def new_run(org: Organisation, source: Path, options: ImportOptions) -> RunState:
    """Start the record of one run."""
    return RunState(
        run_id=str(uuid.uuid4()), org=org, source=source, options=options, started_at=_now()
    )


def already_applied(engine: Engine, state: RunState) -> bool:
    """True (and the run marked skipped) when these bytes were applied before and not --force."""
    state.sha256 = state.sha256 or file_sha256(state.source)
    if state.options.force:
        return False
    with engine.connect() as conn:
        previous = runs.find_applied_run(conn, state.org.id, state.sha256)
    if previous is None:
        return False
    state.status = SKIPPED
    log.info("file already applied by run %s; skipping", previous)
    return True


def read_step(state: RunState) -> RawExport | None:
    """Read and decode the file; an unreadable file rejects the run."""
    progress(f"{state.org.slug}: reading {state.source.name}")
    try:
        raw = read_export(state.source)
    except ReadError as exc:
        state.reject(exc.code, exc.message)
        return None
    progress(f"{state.org.slug}: read {raw.rows.height:,} rows ({raw.encoding})")
    state.sha256 = raw.sha256
    state.encoding = raw.encoding
    state.delimiter = raw.delimiter
    state.header = raw.header
    return raw


def validate_step(state: RunState, raw: RawExport) -> Validated | None:
    """Check the header and every row; the run is rejected when the header or budget fails."""
    if not raw.header:
        state.status = SUCCEEDED  # an empty file changes nothing
        return None
    header = resolve_header(raw.header)
    if header.file_errors:
        state.issues = header.issues
        for error in header.file_errors:
            state.reject(error.code, error.message)
        return None
    validated = validate_rows(raw.rows, header)
    progress(
        f"{state.org.slug}: validated {validated.rows_valid:,} rows, "
        f"rejected {validated.rows_rejected:,}"
    )
    state.issues = validated.issues
    state.rejected_rows = validated.rejected_rows
    state.rows = {
        "read": validated.rows_read,
        "valid": validated.rows_valid,
        "rejected": validated.rows_rejected,
    }
    state.customers_rejected = validated.customers_rejected
    budget = state.options.max_error_rate
    if budget is not None and validated.rows_read:
        rate = validated.rows_rejected / validated.rows_read
        if rate > budget:
            state.reject(
                "error_budget",
                f"{validated.rows_rejected} of {validated.rows_read} rows rejected "
                f"({rate:.1%}), more than --max-error-rate {budget:g}",
            )
            return None
    return validated


def load_step(engine: Engine, state: RunState, validated: Validated | None) -> None:
    """Apply the validated rows in one transaction under the organisation's lock.

    The run's record (import_run, import_issue) is written in the same transaction, so a file
    is either applied and recorded, or neither. A dry run does the same work and rolls back.
    """
    options = state.options
    try:
        with engine.connect() as conn, conn.begin():
            upsert.lock_organisation(conn, state.org.id)
            if (
                not options.force
                and state.sha256 is not None
                and runs.find_applied_run(conn, state.org.id, state.sha256) is not None
            ):
                state.status = SKIPPED  # applied meanwhile by a concurrent import
                _record(conn, state)
                return
            if validated is not None and validated.rows_read:
                progress(f"{state.org.slug}: loading {validated.customers.height:,} customers")
                state.counts = _apply(conn, state, validated)
                progress(
                    f"{state.org.slug}: loaded (+{state.counts.customers_inserted:,} "
                    f"~{state.counts.customers_updated:,} ={state.counts.customers_unchanged:,})"
                )
            if state.status != REJECTED:
                state.status = PARTIAL if state.rows["rejected"] else SUCCEEDED
            if options.dry_run:
                raise _DryRunRollback
            _record(conn, state)
    except _DryRunRollback:
        record_outside_transaction(engine, state)
    except DeactivationBudgetExceeded as exc:
        state.counts = upsert.LoadCounts()
        state.reject("deactivate_budget", str(exc))
        record_outside_transaction(engine, state)


def _apply(conn: sa.Connection, state: RunState, validated: Validated) -> upsert.LoadCounts:
    full = state.options.mode == "full"
    customers, contacts, skipped = upsert.skip_unchanged(
        conn, state.org.id, validated.customers, validated.contacts, active_only=full
    )
    upsert.stage_export(conn, customers, contacts, validated.keys_seen)
    if full:
        missing, active = upsert.preview_deactivations(conn, state.org.id)
        budget = state.options.max_deactivate_rate
        if budget is not None and active and missing / active > budget:
            raise DeactivationBudgetExceeded(
                f"full mode would deactivate {missing} of {active} active customers "
                f"({missing / active:.1%}), more than --max-deactivate-rate {budget:g}"
            )
    customer_counts = upsert.apply_customers(
        conn, state.org.id, frozenset(validated.customers.columns), full=full
    )
    contact_counts = upsert.apply_contacts(
        conn, state.org.id, frozenset(validated.contacts.columns)
    )
    return replace(
        customer_counts,
        customers_unchanged=customer_counts.customers_unchanged + skipped.customers,
        contacts_inserted=contact_counts.contacts_inserted,
        contacts_updated=contact_counts.contacts_updated,
        contacts_unchanged=contact_counts.contacts_unchanged + skipped.contacts,
    )


def _record(conn: sa.Connection, state: RunState) -> None:
    state.finished_at = _now()
    runs.record_run(conn, state.org.id, state.summary(), state.issues, forced=state.options.force)


def record_outside_transaction(engine: Engine, state: RunState) -> None:
    """Record a run that applied nothing (rejected, skipped, dry run, failed) on its own."""
    with engine.begin() as conn:
        _record(conn, state)


def record_failure(engine: Engine | None, state: RunState, exc: BaseException) -> None:
    """Mark the run failed and try to record it; the database may be the thing that failed."""
    state.status = FAILED
    state.counts = upsert.LoadCounts()
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    state.file_errors.append({"code": "failed", "message": f"{type(exc).__name__}: {reason}"})
    if engine is None:
        return
    try:
        record_outside_transaction(engine, state)
    except (sa.exc.SQLAlchemyError, LoaderError) as second:
        log.warning("could not record the failed run: %s", type(second).__name__)


def run_steps(
    engine: Engine,
    state: RunState,
    *,
    read: Callable[[RunState], RawExport | None] = read_step,
    validate: Callable[[RunState, RawExport], Validated | None] = validate_step,
    load: Callable[[RunState, Validated | None], None] | None = None,
    report: Callable[[RunState], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole import: skip check, read, validate, load, then the reports (always written).

    The Prefect flow passes its tasks in place of the plain steps; tests call it as it is.
    """
    load = load or (lambda s, v: load_step(engine, s, v))
    report = report or report_step
    try:
        if already_applied(engine, state):
            record_outside_transaction(engine, state)
        else:
            raw = read(state)
            validated = validate(state, raw) if raw is not None else None
            # The raw rows are not needed any more (the rejected ones are in validated): let the
            # load have their memory.
            del raw
            if state.status == REJECTED:
                record_outside_transaction(engine, state)
            else:
                load(state, validated)
    except Exception as exc:  # an infrastructure failure: the transaction applied nothing
        log.error("import failed: %s", type(exc).__name__)
        record_failure(engine, state, exc)
    return report(state)


def report_step(state: RunState) -> dict[str, Any]:
    """Write summary.json, errors.csv, rejected_rows.csv and report.html; return the summary."""
    state.finished_at = state.finished_at or _now()
    summary = state.summary()
    rejected = state.rejected_rows
    if rejected is None:
        schema: dict[str, pl.DataType] = {
            "_line": pl.Int64(),
            "_nfields": pl.Int32(),
            "_extra": pl.List(pl.String),
            "errors": pl.String(),
        }
        schema |= {f"c{i}": pl.String() for i in range(len(state.header))}
        rejected = pl.DataFrame(schema=schema)
    reports.write_run_reports(
        state.run_dir,
        Summary.model_validate(summary),
        state.issues,
        state.header,
        rejected,
        state.delimiter or ",",
    )
    return summary
