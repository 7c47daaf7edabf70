"""One import as plain steps, each returning what it produces.

    check_applied  -> the file's bytes and sha256 (one pass), and the run that applied them before
    read_step      -> RawExport | Rejected       (the decoded rows, or why the file is unreadable)
    skip_step      -> RawExport, RawPrints       (the rows without the unchanged customers')
    validate_step  -> Validated | Rejected       (normalised rows and issues, or why it is refused)
    load_step      -> Loaded                     (one transaction: apply, count, record the run)
    summarise      -> Summary                    (pure: the results above become summary.json)
    report_step    -> ImportResult               (the report files of the run, or why not)

Everything the report files need is recorded with the run (loaders/runs.py), so that when they
cannot be written (a full disk, an unwritable folder, a kill after the commit) they can be
written again from the database: `write_reports_again` and `write_missing_reports`.

`run_import` puts them in order. The Prefect flow in flows/import_flow.py passes its tasks,
which wrap these steps one to one, as `Steps`; tests call `run_import` with the plain steps.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

import reporting
from contract import (
    APPLIED_STATUSES,
    KEY,
    ContactCounts,
    CustomerCounts,
    ExitCode,
    FileError,
    FileErrorCode,
    ImportMode,
    IssueCode,
    RowCounts,
    RunStatus,
    Summary,
)
from contract.changes import ChangeOverview, FieldCount, ShownChange
from contract.frames import empty_issues
from flows.asof import as_of_from_name, as_utc
from flows.progress import progress
from flows.reading import ExportBytes, RawExport, ReadError, ReadOptions, read_export
from flows.skipping import RawPrints, SkipInvalidated, raw_to_store, skip_unchanged, with_skipped
from loaders import headers, history, runs, upsert
from loaders.exceptions import LoaderError
from loaders.orgs import Organisation
from loaders.upsert import LoadCounts
from reporting.files import write_rejected_rows_csv
from validators import Validated, resolve_header, validate_rows
from validators.drift import Drift, Layout, compare_layouts
from validators.header import HeaderMap
from validators.mapping import Mapped, map_export, map_pair
from validators.profiles import DEFAULT_PROFILE, Profile, default_profile, load_profile
from validators.validate import PartPlan, combine_parts, part_count, plan_parts

log = logging.getLogger(__name__)

#: The rejected rows of a two-file export's contacts file, in its layout.
REJECTED_CONTACTS_FILE = "rejected_contacts.csv"


class ImportOptions(BaseModel):
    """What the caller asked for: the options of `erp-sync import` (and `sync`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: ImportMode = Field(default=ImportMode.UPSERT, description="upsert or full")
    dry_run: bool = Field(default=False, description="do everything, then roll the load back")
    force: bool = Field(default=False, description="apply bytes that were applied before")
    report_dir: Path = Field(default=Path("reports"), description="where run folders go")
    max_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="refuse the file above this rejected-row rate"
    )
    max_deactivate_rate: float | None = Field(
        default=None, ge=0, le=1, description="full mode: refuse above this deactivation rate"
    )
    profile: str = Field(
        default=DEFAULT_PROFILE,
        description="the source profile: a shipped profile's name or the path of a .toml file",
    )
    contacts: Path | None = Field(
        default=None, description="the contacts file of a two-file export (import only)"
    )
    strict_header: bool = Field(
        default=False, description="refuse a file that lost a column the last applied file had"
    )
    as_of: datetime | None = Field(
        default=None, description="the export's as-of time when its file name holds none"
    )
    skip_unchanged: bool = Field(
        default=True,
        description="internal (tests, benchmarks): skip the validation of customers whose raw "
        "rows last validated with no issue; False validates every row",
    )
    rules_extra: str = Field(
        default="",
        description="internal (tests): mixed into the rules version, as a change of the rules",
    )
    known_sha256: dict[str, tuple[str, tuple[int, ...]]] = Field(
        default_factory=dict,
        description="internal (sync): file path -> (sha256, file identity) the sync's plan took; "
        "trusted while the file is unchanged, so that the import does not hash it again",
    )


@dataclass(frozen=True)
class RunContext:
    """Which run this is: fixed when it starts, read by every step, changed by none."""

    run_id: str
    org: Organisation
    source: Path
    options: ImportOptions
    started_at: datetime
    profile: Profile = field(default_factory=default_profile)
    """the loaded source profile of `options.profile`"""
    as_of: datetime | None = None
    """the export's as-of time: from its file name, else --as-of, else None"""

    @property
    def run_dir(self) -> Path:
        """The run's report folder."""
        return self.options.report_dir / self.run_id


@dataclass(frozen=True)
class ExportInfo:
    """What the reports and the summary need of a read file, without its rows."""

    sha256: str | None
    encoding: str | None = None
    delimiter: str | None = None
    header: tuple[str, ...] = ()
    contacts_header: tuple[str, ...] = ()
    """the header of the contacts file of a two-file export"""
    contacts_delimiter: str | None = None

    @classmethod
    def of(cls, raw: RawExport) -> ExportInfo:
        """The identity and layout of a read export."""
        if raw.contacts is None:
            return cls(raw.sha256, raw.encoding, raw.delimiter, raw.header)
        return cls(
            pair_sha256(raw.sha256, raw.contacts.sha256),
            raw.encoding,
            raw.delimiter,
            raw.header,
            raw.contacts.header,
            raw.contacts.delimiter,
        )


def pair_sha256(customers: str, contacts: str) -> str:
    """The identity of a two-file export: the sha256 of both files' sha256, in order."""
    return hashlib.sha256(f"{customers}\n{contacts}".encode()).hexdigest()


@dataclass(frozen=True)
class Rejected:
    """A step refused the file as a whole: nothing is applied."""

    file_errors: tuple[FileError, ...]
    issues: pl.DataFrame = field(default_factory=empty_issues)
    """every issue found before the refusal (the header's, or all the rows')"""
    validated: Validated | None = None
    """the rows' findings, when the refusal came after validation (the error budget)"""


@dataclass(frozen=True)
class Loaded:
    """What the load step did; the run is recorded in import_run whatever it was."""

    status: RunStatus
    counts: LoadCounts
    finished_at: datetime
    file_errors: tuple[FileError, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """Everything the report files of a run are written from."""

    summary: Summary
    issues: pl.DataFrame
    export: ExportInfo
    rejected_rows: pl.DataFrame | None
    changes: ChangeOverview | None = None
    """what the run changed (applied runs; read from the database when the reports are written)"""


@dataclass(frozen=True)
class ReportsNotWritten:
    """The report files of a run could not be written: where, and why."""

    run_dir: Path
    reason: str

    @classmethod
    def of(cls, run_dir: Path, exc: OSError) -> ReportsNotWritten:
        """From the OSError that stopped the writing (read-only, not a directory, disk full)."""
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None and Path(exc.filename) != run_dir:
            reason = f"{reason} ({exc.filename})"
        return cls(run_dir, reason)


@dataclass(frozen=True)
class ImportResult:
    """What a run ended in: its summary, and whether its report files could be written."""

    summary: Summary
    reports_error: ReportsNotWritten | None = None

    @property
    def exit_code(self) -> ExitCode:
        """The run's exit code; 5 when it was applied but its report files were not written."""
        if self.reports_error is not None and self.summary.status in APPLIED_STATUSES:
            return ExitCode.REPORTS_NOT_WRITTEN
        return self.summary.exit_code

    def reports_error_message(self) -> str | None:
        """One line for a person: the state of the data, where and why, and what to run."""
        error = self.reports_error
        if error is None:
            return None
        summary = self.summary
        if summary.dry_run:
            state = f"dry run {summary.status}, nothing was changed"
        elif summary.status in APPLIED_STATUSES:
            state = f"the data was applied ({summary.status})"
        else:
            state = f"nothing was applied ({summary.status})"
        return (
            f"run {summary.run_id} ({summary.org}: {Path(summary.source).name}): {state}, but "
            f"its reports could not be written to {error.run_dir}: {error.reason}; write them "
            f"with `erp-sync report {summary.run_id} --write` (--report-dir DIR for another "
            "folder)"
        )


class DeactivationBudgetExceeded(Exception):
    """Full mode would deactivate more customers than --max-deactivate-rate allows."""


class StaleExport(Exception):
    """The export's as-of is older than the newest as-of applied for the organisation."""


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


def new_run(
    org: Organisation, source: Path, options: ImportOptions, as_of_pattern: str | None = None
) -> RunContext:
    """Start one run: a new id, its start time, its source profile (ProfileError if bad) and
    the export's as-of time."""
    return RunContext(
        run_id=str(uuid.uuid4()),
        org=org,
        source=source,
        options=options,
        started_at=_now(),
        profile=load_profile(options.profile),
        as_of=as_of_from_name(source.name, as_of_pattern) or as_utc(options.as_of),
    )


def read_options(profile: Profile) -> ReadOptions:
    """The reader's options of a profile's file options."""
    file = profile.file
    return ReadOptions(
        encoding=file.encoding,
        delimiter=file.delimiter,
        skip_lines=file.skip_lines,
        skip_lines_starting_with=file.skip_lines_starting_with,
    )


# --- the pure part -----------------------------------------------------------------------------


def summarise(
    ctx: RunContext,
    *,
    status: RunStatus,
    finished_at: datetime,
    export: ExportInfo,
    issues: pl.DataFrame,
    validated: Validated | None = None,
    counts: LoadCounts | None = None,
    file_errors: tuple[FileError, ...] = (),
) -> Summary:
    """The run's summary.json, from what its steps returned."""
    c = counts or LoadCounts()
    by_code = (
        issues.group_by("code").len().sort(["len", "code"], descending=[True, False])
        if issues.height
        else None
    )
    unknown = (
        issues.filter(pl.col("code") == IssueCode.UNKNOWN_COLUMN)["column"].to_list()
        if issues.height
        else []
    )
    rows = (
        RowCounts(
            read=validated.rows_read, valid=validated.rows_valid, rejected=validated.rows_rejected
        )
        if validated is not None
        else RowCounts()
    )
    return Summary(
        run_id=ctx.run_id,
        org=ctx.org.slug,
        source=str(ctx.source),
        sha256=export.sha256,
        mode=ctx.options.mode,
        dry_run=ctx.options.dry_run,
        status=status,
        started_at=ctx.started_at,
        finished_at=finished_at,
        encoding=export.encoding,
        delimiter=export.delimiter,
        rows=rows,
        customers=CustomerCounts(
            inserted=c.customers_inserted,
            updated=c.customers_updated,
            unchanged=c.customers_unchanged,
            deactivated=c.customers_deactivated,
            reactivated=c.customers_reactivated,
            rejected=validated.customers_rejected if validated is not None else 0,
        ),
        contacts=ContactCounts(
            inserted=c.contacts_inserted, updated=c.contacts_updated, unchanged=c.contacts_unchanged
        ),
        issues_by_code=dict(by_code.iter_rows()) if by_code is not None else {},
        file_errors=list(file_errors),
        warnings=[f"unknown column {name!r} ignored" for name in unknown]
        + (
            issues.filter(pl.col("code") == IssueCode.HEADER_DRIFT)["message"].to_list()
            if issues.height
            else []
        ),
        report_dir=str(ctx.run_dir),
        profile=None if ctx.profile.is_default else ctx.profile.name,
        contacts_source=str(ctx.options.contacts) if ctx.options.contacts else None,
        as_of=ctx.as_of,
    )


def stale_export(conn: sa.Connection, ctx: RunContext) -> FileError | None:
    """The `stale_export` file error when the export is older than what was applied; else None.

    An export with no as-of, or run with --force, is never refused.
    """
    if ctx.as_of is None or ctx.options.force:
        return None
    newest = history.newest_applied_as_of(conn, ctx.org.id)
    if newest is None or ctx.as_of >= newest[0]:
        return None
    as_of, source = newest
    return FileError(
        code=FileErrorCode.STALE_EXPORT,
        message=f"the export is as of {ctx.as_of.isoformat()}, older than "
        f"{as_of.isoformat()} of {Path(source).name}, already applied: nothing applied "
        "(--force applies it anyway)",
    )


def error_budget_exceeded(validated: Validated, budget: float | None) -> FileError | None:
    """The `error_budget` file error when more rows were rejected than --max-error-rate allows."""
    if budget is None or not validated.rows_read:
        return None
    rate = validated.rows_rejected / validated.rows_read
    if rate <= budget:
        return None
    return FileError(
        code=FileErrorCode.ERROR_BUDGET,
        message=f"{validated.rows_rejected} of {validated.rows_read} rows rejected "
        f"({rate:.1%}), more than --max-error-rate {budget:g}",
    )


def _no_rows() -> Validated:
    """The validation of a file with no header at all: nothing to apply, nothing wrong."""
    return Validated(
        customers=pl.DataFrame(),
        contacts=pl.DataFrame(),
        issues=empty_issues(),
        rejected_rows=pl.DataFrame(),
        keys_seen=pl.Series("erp_customer_number", [], dtype=pl.String),
        present=frozenset(),
        rows_read=0,
        rows_valid=0,
        rows_rejected=0,
        customers_rejected=0,
    )


# --- the steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What `check_applied` found: the export's sha256, the run that applied it (if any), and
    the bytes it read for it, which the read step takes instead of reading the file again."""

    sha256: str
    previous: uuid.UUID | None
    loaded: tuple[ExportBytes, ...] = ()


def check_applied(engine: Engine, ctx: RunContext) -> Applied:
    """The file's sha256 and, unless --force, the run that applied these bytes before.

    The bytes are read and hashed in one pass (`ExportBytes`) and kept for the read step, so
    that an import reads and hashes each file once.
    """
    known = ctx.options.known_sha256
    loaded = tuple(
        ExportBytes(path, known.get(str(path)))
        for path in (ctx.source, ctx.options.contacts)
        if path is not None
    )
    sha256 = loaded[0].sha256
    if len(loaded) == 2:
        sha256 = pair_sha256(sha256, loaded[1].sha256)
    if ctx.options.force:
        return Applied(sha256, None, loaded)
    with engine.connect() as conn:
        return Applied(sha256, runs.find_applied_run(conn, ctx.org.id, sha256), loaded)


def read_step(ctx: RunContext, loaded: tuple[ExportBytes, ...] = ()) -> RawExport | Rejected:
    """Read and decode the file (from the bytes `check_applied` read, when given), or say why
    it cannot be read."""
    progress(f"{ctx.org.slug}: reading {ctx.source.name}")
    given = {held.path: held for held in loaded}
    try:
        # one file: its cells are parsed by the skip step, only for the customers not skipped
        raw = read_export(
            ctx.source,
            read_options(ctx.profile),
            given.get(ctx.source),
            lazy=ctx.options.contacts is None,
        )
    except ReadError as exc:
        return Rejected(file_errors=(FileError(code=exc.code, message=exc.message),))
    contacts = ctx.options.contacts
    if contacts is not None:
        try:
            raw = replace(
                raw,
                contacts=read_export(contacts, read_options(ctx.profile), given.get(contacts)),
            )
        except ReadError as exc:
            message = f"{contacts.name}: {exc.message}"
            return Rejected(file_errors=(FileError(code=exc.code, message=message),))
    progress(f"{ctx.org.slug}: read {raw.rows.height:,} rows ({raw.encoding})")
    return raw


def skip_step(
    engine: Engine, ctx: RunContext, raw: RawExport, *, allow: bool = True
) -> tuple[RawExport, RawPrints | None]:
    """Take each customer's raw fingerprint; drop the unchanged ones' rows (flows/skipping.py)."""
    options = ctx.options
    raw, prints = skip_unchanged(
        engine,
        ctx.org.id,
        raw,
        ctx.profile,
        mode=options.mode,
        allow=allow and options.skip_unchanged,
        rules_extra=options.rules_extra,
    )
    if prints is not None and prints.skipped.height:
        progress(
            f"{ctx.org.slug}: {prints.skipped.height:,} customers unchanged since they last "
            f"validated ({prints.skipped_rows:,} rows skipped)"
        )
    return raw, prints


def validate_step(
    ctx: RunContext, raw: RawExport, prints: RawPrints | None = None
) -> Validated | Rejected:
    """Check the header and every row; refuse the file when its header or error budget fails.

    With `prints`, the rows of the customers skipped as unchanged count as read and valid."""
    if not raw.header:
        return _no_rows()  # an empty file changes nothing
    raw = raw.parsed()  # when the skip step did not parse it
    if ctx.profile.is_default:
        header = resolve_header(raw.header)
        if header.file_errors:
            return Rejected(file_errors=tuple(header.file_errors), issues=header.issues)
        validated = validate_rows(raw.rows, header)
    else:
        mapped = map_by_profile(ctx, raw)
        if mapped.header.file_errors:
            return Rejected(
                file_errors=tuple(mapped.header.file_errors), issues=mapped.header.issues
            )
        validated = validate_rows(
            mapped.rows, mapped.header, prior=mapped.prior, shadow=mapped.shadow
        )
    return judge_rows(ctx, validated, prints)


def judge_rows(
    ctx: RunContext, validated: Validated, prints: RawPrints | None
) -> Validated | Rejected:
    """The whole file's validation (the skipped customers' rows counted in), or its refusal by
    the error budget."""
    validated = with_skipped(validated, prints)
    progress(
        f"{ctx.org.slug}: validated {validated.rows_valid:,} rows, "
        f"rejected {validated.rows_rejected:,}"
    )
    over_budget = error_budget_exceeded(validated, ctx.options.max_error_rate)
    if over_budget is not None:
        return Rejected(file_errors=(over_budget,), issues=validated.issues, validated=validated)
    return validated


def map_by_profile(ctx: RunContext, raw: RawExport) -> Mapped:
    """The export (or the pair of files) mapped onto the contract's columns by its profile."""
    if raw.contacts is None:
        return map_export(raw.rows, raw.header, ctx.profile)
    contacts = ctx.options.contacts
    return map_pair(
        raw.rows,
        raw.header,
        raw.contacts.rows,
        raw.contacts.header,
        ctx.profile,
        contacts.name if contacts is not None else "contacts",
    )


def load_step(
    engine: Engine,
    ctx: RunContext,
    export: ExportInfo,
    validated: Validated,
    prints: RawPrints | None = None,
) -> Loaded:
    """Apply the validated rows in one transaction under the organisation's lock.

    The run's record (import_run, import_issue) is written in the same transaction, so a file
    is either applied and recorded, or neither. A dry run does the same work and rolls back;
    it, and a file refused by the deactivation budget, are recorded on their own. Raises
    SkipInvalidated (nothing applied) when a customer skipped as unchanged was changed by
    another import or a revert before the lock was taken.
    """
    options = ctx.options
    loaded: Loaded
    try:
        with engine.connect() as conn, conn.begin():
            changes = upsert.lock_organisation(conn, ctx.org.id)
            if (
                not options.force
                and export.sha256 is not None
                and runs.find_applied_run(conn, ctx.org.id, export.sha256) is not None
            ):
                # applied meanwhile by a concurrent import
                loaded = Loaded(RunStatus.SKIPPED, LoadCounts(), _now())
                _record(conn, ctx, loaded, export, validated)
                return loaded
            stale = stale_export(conn, ctx)
            if stale is not None:
                raise StaleExport(stale)
            history.start_recording(conn, ctx.run_id)
            counts = LoadCounts()
            if validated.rows_read:
                progress(f"{ctx.org.slug}: loading {validated.customers.height:,} customers")
                counts = _apply(
                    conn, ctx.run_id, ctx.org.id, options, validated, prints, changes=changes
                )
                history.count_changes(conn, ctx.run_id)
                progress(
                    f"{ctx.org.slug}: loaded (+{counts.customers_inserted:,} "
                    f"~{counts.customers_updated:,} ={counts.customers_unchanged:,})"
                )
            status = RunStatus.PARTIAL if validated.rows_rejected else RunStatus.SUCCEEDED
            loaded = Loaded(status, counts, _now())
            if options.dry_run:
                raise _DryRunRollback
            _record(conn, ctx, loaded, export, validated)
            return loaded
    except _DryRunRollback:
        pass
    except DeactivationBudgetExceeded as exc:
        error = FileError(code=FileErrorCode.DEACTIVATE_BUDGET, message=str(exc))
        loaded = Loaded(RunStatus.REJECTED, LoadCounts(), _now(), (error,))
    except StaleExport as exc:
        loaded = Loaded(RunStatus.REJECTED, LoadCounts(), _now(), exc.args)
    with engine.begin() as conn:
        _record(conn, ctx, loaded, export, validated)
    return loaded


def _apply(
    conn: sa.Connection,
    run_id: str,
    org_id: uuid.UUID,
    options: ImportOptions,
    validated: Validated,
    prints: RawPrints | None = None,
    *,
    changes: int | None = None,
) -> LoadCounts:
    full = options.mode == ImportMode.FULL
    rebase = False
    raw = None
    if prints is not None and prints.stored is not None and prints.changes == changes:
        # nothing was written since the skip step read the stored customers (the change count)
        stored, rules = prints.stored, prints.stored_rules
    else:
        with upsert.timed("read stored customers"):
            stored = upsert.stored_customers(conn, org_id)
        rules = upsert.raw_rules(conn, org_id) if prints is not None else None
        if (
            prints is not None
            and prints.skipped.height
            and (
                rules != prints.stored_rules
                or not upsert.skipped_still_stored(stored, prints.skipped, active_only=full)
            )
        ):
            raise SkipInvalidated
    if prints is not None:
        # under other rules (or none), every raw fingerprint is set anew: nothing was skipped
        rebase = rules != prints.rules
        raw = raw_to_store(validated, prints)
    split = upsert.split_export(
        conn,
        org_id,
        validated.customers,
        validated.contacts,
        active_only=full,
        stored=stored,
        raw=raw,
        rebase=rebase,
    )
    del stored
    skipped = prints.skipped.height if prints is not None else 0
    skipped_contacts = prints.skipped_contacts if prints is not None else 0
    upsert.update_raw_prints(conn, org_id, split.raw_updates)
    if rebase and prints is not None:
        upsert.set_raw_rules(conn, org_id, prints.rules)
    if not full and not split.customers.height and not split.contacts.height:
        # nothing to compare or merge (a rerun): only the new customers, if any
        new = upsert.insert_new_customers(conn, org_id, split.new_customers, split.new_contacts)
        return LoadCounts(
            customers_inserted=new.customers_inserted,
            customers_unchanged=split.unchanged_customers + skipped,
            contacts_inserted=new.contacts_inserted,
            contacts_unchanged=split.unchanged_contacts + skipped_contacts,
        )
    merged = _stage_and_merge(
        conn,
        run_id,
        org_id,
        options,
        validated,
        split.customers,
        split.contacts,
        new=(split.new_customers, split.new_contacts),
    )
    return _add_counts(
        merged,
        LoadCounts(
            customers_unchanged=split.unchanged_customers + skipped,
            contacts_unchanged=split.unchanged_contacts + skipped_contacts,
        ),
    )


def _add_counts(*counts: LoadCounts) -> LoadCounts:
    """The sum of loads' counts, field by field."""
    return LoadCounts(
        **{name: sum(getattr(c, name) for c in counts) for name in LoadCounts.__dataclass_fields__}
    )


def _stage_and_merge(
    conn: sa.Connection,
    run_id: str,
    org_id: uuid.UUID,
    options: ImportOptions,
    validated: Validated,
    customers: pl.DataFrame,
    contacts: pl.DataFrame,
    *,
    new: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    check_budget: bool = True,
) -> LoadCounts:
    """Stage the stored customers the file changes and merge them (full mode: deactivate the
    ones it lacks); `new` customers, when given, are COPYed in between, after the deactivation
    budget is judged on the stored customers."""
    full = options.mode == ImportMode.FULL
    upsert.stage_export(conn, customers, contacts, validated.keys_seen)
    if full and check_budget:
        # before the new customers go in: the budget is a share of the customers stored
        missing, active = upsert.preview_deactivations(conn, org_id)
        budget = options.max_deactivate_rate
        if budget is not None and active and missing / active > budget:
            raise DeactivationBudgetExceeded(
                f"full mode would deactivate {missing} of {active} active customers "
                f"({missing / active:.1%}), more than --max-deactivate-rate {budget:g}"
            )
    # The change history, recorded before each write from the same classification tables.
    if full:
        history.record_deactivations(conn, run_id, org_id, upsert.stage_key)

    def record_customers(conn: sa.Connection, delta: sa.TableClause, fields: list[str]) -> None:
        history.record_customer_changes(conn, run_id, org_id, delta, fields)

    def record_contacts(conn: sa.Connection, delta: sa.TableClause, fields: list[str]) -> None:
        history.record_contact_changes(conn, run_id, org_id, delta, fields)

    inserted = upsert.insert_new_customers(conn, org_id, *new) if new is not None else LoadCounts()
    customer_counts = upsert.apply_customers(
        conn,
        org_id,
        frozenset(validated.customers.columns),
        full=full,
        before_write=record_customers,
    )
    contact_counts = upsert.apply_contacts(
        conn, org_id, frozenset(validated.contacts.columns), before_write=record_contacts
    )
    return _add_counts(inserted, customer_counts, contact_counts)


def _record(
    conn: sa.Connection,
    ctx: RunContext,
    loaded: Loaded,
    export: ExportInfo,
    validated: Validated,
) -> None:
    summary = summarise(
        ctx,
        status=loaded.status,
        finished_at=loaded.finished_at,
        export=export,
        issues=validated.issues,
        validated=validated,
        counts=loaded.counts,
        file_errors=loaded.file_errors,
    )
    runs.record_run(
        conn,
        ctx.org.id,
        summary,
        validated.issues,
        forced=ctx.options.force,
        header=export.header,
        rejected_rows=validated.rejected_rows,
        contacts_header=export.contacts_header,
        contacts_delimiter=export.contacts_delimiter,
    )
    if loaded.status in APPLIED_STATUSES and not ctx.options.dry_run and export.header:
        layout = layout_of(export)
        headers.record_header(
            conn,
            ctx.org.id,
            ctx.profile.name,
            uuid.UUID(ctx.run_id),
            headers.StoredHeader(layout.header, layout.delimiter, layout.encoding),
        )


def layout_of(export: ExportInfo) -> Layout:
    """The layout drift is judged on: the header (and the contacts file's, prefixed)."""
    contacts = tuple(f"contacts: {name}" for name in export.contacts_header)
    return Layout((*export.header, *contacts), export.delimiter, export.encoding)


def drift_step(
    engine: Engine, ctx: RunContext, export: ExportInfo, validated: Validated
) -> Validated | Rejected:
    """Compare the header with the last applied file's of this organisation and profile.

    Each difference is a `header_drift` warning; with --strict-header a column lost refuses
    the file. The first file of an organisation and profile has nothing to drift from.
    """
    return with_drift(ctx, validated, read_drift(engine, ctx, export))


def read_drift(engine: Engine, ctx: RunContext, export: ExportInfo) -> Drift | None:
    """How the header differs from the last applied file's of this organisation and profile
    (None: no header, no such file, or no difference)."""
    if not export.header:
        return None
    with engine.connect() as conn:
        stored = headers.last_header(conn, ctx.org.id, ctx.profile.name)
    if stored is None:
        return None
    drift = compare_layouts(
        Layout(stored.header, stored.delimiter, stored.encoding), layout_of(export)
    )
    return drift if drift.messages else None


def with_drift(ctx: RunContext, validated: Validated, drift: Drift | None) -> Validated | Rejected:
    """The validation with the drift's warnings, or the --strict-header refusal."""
    if drift is None:
        return validated
    issues = pl.concat([drift.issues, validated.issues], how="vertical")
    if ctx.options.strict_header and drift.lost:
        error = FileError(
            code=FileErrorCode.HEADER_DRIFT,
            message=f"--strict-header: the file lacks column(s) {', '.join(drift.lost)} that "
            "the last applied file had",
        )
        return Rejected(file_errors=(error,), issues=issues, validated=validated)
    return replace(validated, issues=issues)


def record_run(
    engine: Engine,
    ctx: RunContext,
    summary: Summary,
    issues: pl.DataFrame,
    export: ExportInfo,
    rejected_rows: pl.DataFrame | None = None,
) -> None:
    """Record a run that applied nothing (skipped, rejected, failed) in a transaction of its own.

    With the header and the rejected rows, as a load records them: its reports can be written
    again from the database.
    """
    with engine.begin() as conn:
        runs.record_run(
            conn,
            ctx.org.id,
            summary,
            issues,
            forced=ctx.options.force,
            header=export.header,
            rejected_rows=rejected_rows,
            contacts_header=export.contacts_header,
            contacts_delimiter=export.contacts_delimiter,
        )


def write_reports(outcome: Outcome) -> None:
    """Write summary.json, errors.csv, rejected_rows.csv and report.html into the run's folder."""
    export = outcome.export
    rejected = outcome.rejected_rows
    if rejected is None or not rejected.width:
        schema: dict[str, pl.DataType] = {
            "_line": pl.Int64(),
            "_nfields": pl.Int32(),
            "_extra": pl.List(pl.String),
            "errors": pl.String(),
        }
        schema |= {f"c{i}": pl.String() for i in range(len(export.header))}
        rejected = pl.DataFrame(schema=schema)
    summary = outcome.summary
    contacts_rejected = None
    if "_file" in rejected.columns:
        # a two-file export: each file's rejected rows in its own layout
        contacts_rejected = rejected.filter(pl.col("_file").is_not_null())
        rejected = rejected.filter(pl.col("_file").is_null())
    reporting.write_run_reports(
        Path(summary.report_dir or "."),
        summary,
        outcome.issues,
        export.header,
        rejected,
        export.delimiter or ",",
        outcome.changes,
    )
    if contacts_rejected is not None:
        width = len(export.header)
        write_rejected_rows_csv(
            Path(summary.report_dir or ".") / REJECTED_CONTACTS_FILE,
            export.contacts_header,
            contacts_rejected.rename(
                {f"c{width + i}": f"c{i}" for i in range(len(export.contacts_header))}
                | {f"c{i}": f"_customers_c{i}" for i in range(width)}
            ),
            export.contacts_delimiter or export.delimiter or ",",
        )


#: Changes listed in report.html's "What changed" section.
CHANGES_SHOWN = 50


def change_overview(engine: Engine | None, summary: Summary) -> ChangeOverview | None:
    """What an applied run changed, for its report; None for a run that changed nothing, or
    when the database cannot say (the report is written without the section)."""
    if engine is None or summary.dry_run or summary.status not in APPLIED_STATUSES:
        return None
    try:
        with engine.connect() as conn:
            counts = history.field_counts(conn, summary.run_id)
            first = history.first_changes(conn, summary.run_id, CHANGES_SHOWN)
    except (sa.exc.SQLAlchemyError, LoaderError) as exc:
        log.info("the changes of run %s could not be read: %s", summary.run_id, exc)
        return None
    inserted = {
        entity: count
        for entity, count in (
            ("customer", summary.customers.inserted),
            ("contact", summary.contacts.inserted),
        )
        if count
    }
    return ChangeOverview(
        counts=tuple(FieldCount(entity, name, n) for entity, name, n in counts),
        first=tuple(
            ShownChange(number, email, name, _as_text(before), _as_text(after))
            for number, email, name, before, after in first
        ),
        shown_limit=CHANGES_SHOWN,
        inserted=inserted,
    )


def _as_text(value: object) -> str:
    import json

    return "(empty)" if value is None else json.dumps(value, ensure_ascii=False)


def report_step(engine: Engine | None, outcome: Outcome) -> ImportResult:
    """Write the run's report files and note it on the run; say where and why when they fail.

    A report folder that cannot be written (read-only, not a directory, disk full) fails neither
    the run nor the command: the run stays as recorded, its reports_written_at stays NULL, and
    the files can be written again from the database.
    """
    summary = outcome.summary
    run_dir = Path(summary.report_dir or ".")
    if outcome.changes is None:
        changes = change_overview(engine, summary)
        if changes is not None:
            outcome = replace(outcome, changes=changes)
    try:
        write_reports(outcome)
    except OSError as exc:
        log.info("the reports of run %s could not be written: %s", summary.run_id, exc)
        return ImportResult(summary, ReportsNotWritten.of(run_dir, exc))
    if engine is not None:
        _mark_reports_written(engine, uuid.UUID(summary.run_id), None)
    return ImportResult(summary)


def _mark_reports_written(engine: Engine, run_id: uuid.UUID, report_dir: str | None) -> None:
    # A failed run may not be recorded at all (the database was what failed): nothing to mark.
    try:
        with engine.begin() as conn:
            runs.mark_reports_written(conn, run_id, report_dir)
    except (sa.exc.SQLAlchemyError, LoaderError) as exc:
        log.info("could not note that the reports of run %s were written: %s", run_id, exc)


# --- writing the reports of recorded runs again ------------------------------------------------


class ReportsNotStoredError(Exception):
    """The run was recorded before its report contents were (migration 0005): no rewrite."""


@dataclass(frozen=True)
class Rewritten:
    """The report files of one recorded run, written again (or why not)."""

    run_id: str
    org: str
    source: str
    run_dir: Path
    error: str | None = None

    def message(self) -> str:
        """One line for a person."""
        run = f"run {self.run_id} ({self.org}: {Path(self.source).name})"
        if self.error is None:
            return f"wrote the missing reports of {run} to {self.run_dir}"
        return (
            f"the missing reports of {run} could not be written to {self.run_dir}: "
            f"{self.error}; write them with `erp-sync report {self.run_id} --write`"
        )


def write_reports_again(
    engine: Engine, run_id: uuid.UUID, report_dir: Path | None = None
) -> ImportResult:
    """Write a recorded run's report files again from the database, as its import wrote them.

    Into its recorded folder, or into report_dir/<run_id> (then recorded as the run's folder,
    in the summary too). Raises LookupError for no such run, ReportsNotStoredError for a run
    recorded before its report contents were.
    """
    with engine.connect() as conn:
        stored = runs.read_stored_reports(conn, run_id)
    if stored is None:
        raise LookupError(f"no run with id {run_id}")
    if stored.header is None:
        raise ReportsNotStoredError(
            f"run {run_id} was recorded before erp-sync kept what its reports are written from "
            "(migration 0005): its reports cannot be written again"
        )
    summary = stored.summary
    moved: str | None = None
    if report_dir is not None and str(report_dir / str(run_id)) != summary.report_dir:
        moved = str(report_dir / str(run_id))
        summary = summary.model_copy(update={"report_dir": moved})
    export = ExportInfo(
        summary.sha256,
        summary.encoding,
        summary.delimiter,
        stored.header,
        stored.contacts_header or (),
        stored.contacts_delimiter,
    )
    # a two-file run's rows, even none, are split by file: rejected_contacts.csv is written too
    split = stored.contacts_header is not None
    rejected = stored.rejected_rows if stored.rejected_rows.height or split else None
    run_dir = Path(summary.report_dir or ".")
    try:
        write_reports(
            Outcome(summary, stored.issues, export, rejected, change_overview(engine, summary))
        )
    except OSError as exc:
        return ImportResult(summary, ReportsNotWritten.of(run_dir, exc))
    _mark_reports_written(engine, run_id, moved)
    return ImportResult(summary)


def write_missing_reports(engine: Engine, org_id: uuid.UUID, report_dir: Path) -> list[Rewritten]:
    """Write the missing report files of an organisation's earlier runs into report_dir.

    Never raises: an old run's reports that still cannot be written are named in the result,
    and the command goes on.
    """
    try:
        with engine.connect() as conn:
            missing = runs.runs_missing_reports(conn, org_id)
    except (sa.exc.SQLAlchemyError, LoaderError) as exc:
        log.info("could not look for runs with missing reports: %s", exc)
        return []
    done = []
    for run_id in missing:
        try:
            result = write_reports_again(engine, run_id, report_dir)
        except Exception as exc:  # an old run's reports never fail a new command
            reason = f"{type(exc).__name__}: {exc}"
            done.append(Rewritten(str(run_id), "?", "?", report_dir / str(run_id), reason))
            continue
        summary, error = result.summary, result.reports_error
        done.append(
            Rewritten(
                summary.run_id,
                summary.org,
                summary.source,
                Path(summary.report_dir or "."),
                error.reason if error is not None else None,
            )
        )
    return done


# --- validate in parts, load part k while part k+1 validates -------------------------------------


class RawHolder:
    """The read export handed to `pipeline_step`, which takes it out so that nothing else keeps
    its rows: they are cut into parts, and each part's raw rows go once it is validated."""

    __slots__ = ("raw",)

    def __init__(self, raw: RawExport) -> None:
        self.raw: RawExport | None = raw

    def take(self) -> RawExport:
        """The export (once)."""
        raw, self.raw = self.raw, None
        if raw is None:
            raise RuntimeError("the export was taken already")
        return raw


def pipelined_parts(ctx: RunContext, raw: RawExport) -> int:
    """How many parts `pipeline_step` cuts the export into; 1 means today's path (validate the
    whole file, then load it): a file under `MIN_ROWS_FOR_PARTS` rows, a source profile or a
    two-file export (their mapping looks across the whole file), a header that refuses the file."""
    if not raw.header or raw.contacts is not None or not ctx.profile.is_default:
        return 1
    parts = part_count(raw.rows.height)
    if parts < 2:
        return 1
    header = resolve_header(raw.header)
    if header.file_errors or KEY not in header.columns:
        return 1
    return parts


class _TodaysPath(Exception):
    """Under the lock, before anything was loaded, the load found the file applied meanwhile,
    stale, or over full mode's deactivation budget: validate it whole and let `load_step`
    record what it records today."""


class _Refused(Exception):
    """The whole file's validation refuses it (error budget): roll back what was loaded."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__("refused")
        self.rejected = rejected


#: A part waiting for its validation: its raw columns, each an lz4-compressed Arrow IPC stream
#: (the text of the export compresses about 4:1; a String column costs 16 bytes a cell more).
_Packed = list[bytes]


def _cut(rows: pl.DataFrame, part: pl.Series, parts: int) -> list[pl.DataFrame | _Packed | None]:
    """The rows of each part, in file order: part 0 as a frame, the others packed (`_Packed`)
    until their turn. `rows` is emptied column by column on the way, so that the file's text is
    never held twice."""
    masks = [part == k for k in range(parts)]

    def split(column: pl.Series) -> tuple[pl.Series, list[bytes]]:
        packed = [
            pl.DataFrame([column.filter(mask)]).write_ipc(None, compression="lz4").getvalue()
            for mask in masks[1:]
        ]
        return column.filter(masks[0]), packed

    # two columns at a time (polars releases the GIL); each is released once split
    with ThreadPoolExecutor(2, thread_name_prefix="erp-sync-cut") as pool:
        done = list(pool.map(split, (rows.drop_in_place(name) for name in rows.columns)))
    first = [column for column, _ in done]
    packed = [[columns[k] for _, columns in done] for k in range(parts - 1)]
    del done
    return [pl.DataFrame(first), *packed]


def _validate_part(
    pieces: list[pl.DataFrame | _Packed | None], k: int, header: HeaderMap
) -> Validated:
    """Validate part k, dropping its raw rows (its rejected ones stay in the result)."""
    piece, pieces[k] = pieces[k], None
    if piece is None:
        raise RuntimeError(f"part {k} was validated already")
    if isinstance(piece, pl.DataFrame):
        rows = piece
    else:
        rows = pl.concat([pl.read_ipc(io.BytesIO(column)) for column in piece], how="horizontal")
    del piece
    with upsert.timed(f"validate part {k + 1} ({rows.height:,} rows)"):
        return validate_rows(rows, header)


def pipeline_step(
    engine: Engine,
    ctx: RunContext,
    export: ExportInfo,
    holder: RawHolder,
    prints: RawPrints | None = None,
) -> tuple[Validated | Rejected, Loaded | None]:
    """Validate and load a big file in parts partitioned by ranges of the customer key, in one
    transaction: the new customers of part k are COPYed (by a loader thread, on the load's
    connection) while part k + 1 validates; the stored customers the file changes are staged
    and merged after the last part, as `load_step` does. The file is judged whole (error budget,
    header drift) after the last part: a refused file is rolled back and reported as today.

    Returns the validation (or refusal) and the load (None when refused before loading).
    Raises SkipInvalidated as `load_step` does.
    """
    raw = holder.take()
    header = resolve_header(raw.header)
    plan = plan_parts(raw.rows, header, part_count(raw.rows.height))
    with upsert.timed(f"cut the rows into {plan.parts} parts"):
        pieces = _cut(raw.rows, plan.part, plan.parts)
    del raw
    drift = read_drift(engine, ctx, export)
    if not (ctx.options.strict_header and drift is not None and drift.lost):
        try:
            return _load_in_parts(engine, ctx, export, pieces, header, plan, prints, drift)
        except _TodaysPath:
            log.info("nothing loaded in parts: the load decides on the whole file")
        except _Refused as refused:
            return refused.rejected, None
    # today's path on the parts: validate every part, then judge and load the whole file
    validated = combine_parts(
        [_validate_part(pieces, k, header) for k in range(plan.parts)], header
    )
    checked = judge_rows(ctx, validated, prints)
    if isinstance(checked, Validated):
        checked = with_drift(ctx, checked, drift)
    if isinstance(checked, Rejected):
        return checked, None
    return checked, load_step(engine, ctx, export, checked, prints)


def _load_in_parts(
    engine: Engine,
    ctx: RunContext,
    export: ExportInfo,
    pieces: list[pl.DataFrame | _Packed | None],
    header: HeaderMap,
    plan: PartPlan,
    prints: RawPrints | None,
    drift: Drift | None,
) -> tuple[Validated | Rejected, Loaded]:
    options, org_id = ctx.options, ctx.org.id
    full = options.mode == ImportMode.FULL
    total_rows = plan.part.len() + (prints.skipped_rows if prints is not None else 0)
    try:
        with (
            engine.connect() as conn,
            conn.begin(),
            ThreadPoolExecutor(1, thread_name_prefix="erp-sync-load") as loader,
        ):
            upsert.lock_organisation(conn, org_id)
            if (
                not options.force
                and export.sha256 is not None
                and runs.find_applied_run(conn, org_id, export.sha256) is not None
            ) or stale_export(conn, ctx) is not None:
                raise _TodaysPath
            history.start_recording(conn, ctx.run_id)
            with upsert.timed("read stored customers"):
                stored = upsert.stored_customers(conn, org_id)
            rebase = False
            if prints is not None:
                rules = upsert.raw_rules(conn, org_id)
                if prints.skipped.height and (
                    rules != prints.stored_rules
                    or not upsert.skipped_still_stored(stored, prints.skipped, active_only=full)
                ):
                    raise SkipInvalidated
                rebase = rules != prints.rules
            if full and options.max_deactivate_rate is not None:
                # judged on the stored customers, before any new one goes in
                keys = prints.keys_seen if prints is not None else plan.keys_seen
                active = stored.filter(pl.col("is_active"))
                missing = active.join(keys.to_frame(KEY), on=KEY, how="anti").height
                if active.height and missing / active.height > options.max_deactivate_rate:
                    raise _TodaysPath
            stored_part = plan.part_of(stored.get_column(KEY))
            results: list[Validated] = []
            changed: list[tuple[pl.DataFrame, pl.DataFrame]] = []
            raw_updates: list[pl.DataFrame] = []
            counts = [LoadCounts()]
            pending: Future[LoadCounts] | None = None
            rejected = 0
            budget = options.max_error_rate
            loading = True
            try:
                for k in range(plan.parts):
                    part = _validate_part(pieces, k, header)
                    rejected += part.rows_rejected
                    if budget is not None and total_rows and rejected / total_rows > budget:
                        # refused whatever the other parts hold: load nothing more
                        budget, loading = None, False
                    if loading:
                        split = upsert.split_export(
                            conn,
                            org_id,
                            part.customers,
                            part.contacts,
                            active_only=full,
                            stored=stored.filter(stored_part == k),
                            raw=raw_to_store(part, prints) if prints is not None else None,
                            rebase=rebase,
                        )
                        changed.append((split.customers, split.contacts))
                        if split.raw_updates is not None:
                            raw_updates.append(split.raw_updates)
                        counts.append(
                            LoadCounts(
                                customers_unchanged=split.unchanged_customers,
                                contacts_unchanged=split.unchanged_contacts,
                            )
                        )
                        _done(pending, counts)
                        pending = None
                        progress(
                            f"{ctx.org.slug}: loading part {k + 1} of {plan.parts} "
                            f"({split.new_customers.height:,} new customers)"
                        )
                        pending = loader.submit(
                            upsert.insert_new_customers,
                            conn,
                            org_id,
                            split.new_customers,
                            split.new_contacts,
                        )
                        del split
                    # what the reports need stays; the part's rows were loaded (or are loading)
                    results.append(
                        replace(
                            part, customers=part.customers.clear(), contacts=part.contacts.clear()
                        )
                    )
                    del part
                _done(pending, counts)
                pending = None
            finally:
                if pending is not None:
                    wait([pending])  # the connection is the loader's until it is done
            validated = combine_parts(results, header)
            del results
            checked = judge_rows(ctx, validated, prints)
            if isinstance(checked, Rejected):
                raise _Refused(checked)
            validated = checked
            if prints is not None:
                counts.append(
                    LoadCounts(
                        customers_unchanged=prints.skipped.height,
                        contacts_unchanged=prints.skipped_contacts,
                    )
                )
            upsert.update_raw_prints(conn, org_id, pl.concat(raw_updates) if raw_updates else None)
            if rebase and prints is not None:
                upsert.set_raw_rules(conn, org_id, prints.rules)
            customers = pl.concat([c for c, _ in changed])
            contacts = pl.concat([c for _, c in changed])
            del changed
            if full or customers.height or contacts.height:
                counts.append(
                    _stage_and_merge(
                        conn,
                        ctx.run_id,
                        org_id,
                        options,
                        validated,
                        customers,
                        contacts,
                        check_budget=False,
                    )
                )
            del customers, contacts
            history.count_changes(conn, ctx.run_id)
            total = _add_counts(*counts)
            progress(
                f"{ctx.org.slug}: loaded (+{total.customers_inserted:,} "
                f"~{total.customers_updated:,} ={total.customers_unchanged:,})"
            )
            with_header = with_drift(ctx, validated, drift)
            assert isinstance(with_header, Validated)  # a strict refusal never loads in parts
            validated = with_header
            status = RunStatus.PARTIAL if validated.rows_rejected else RunStatus.SUCCEEDED
            loaded = Loaded(status, total, _now())
            if options.dry_run:
                raise _DryRunRollback
            _record(conn, ctx, loaded, export, validated)
            return validated, loaded
    except _DryRunRollback:
        pass
    with engine.begin() as conn:
        _record(conn, ctx, loaded, export, validated)
    return validated, loaded


def _done(pending: Future[LoadCounts] | None, counts: list[LoadCounts]) -> None:
    """Wait for the loader's part (its error is raised here) and add what it inserted."""
    if pending is not None:
        counts.append(pending.result())
    return None


# --- the order of the steps --------------------------------------------------------------------


@dataclass(frozen=True)
class Steps:
    """The steps of an import; the Prefect flow passes its tasks, which wrap these one to one."""

    read: Callable[[RunContext, tuple[ExportBytes, ...]], RawExport | Rejected] = read_step
    validate: Callable[[RunContext, RawExport, RawPrints | None], Validated | Rejected] = (
        validate_step
    )
    load: Callable[[Engine, RunContext, ExportInfo, Validated, RawPrints | None], Loaded] = (
        load_step
    )
    report: Callable[[Engine | None, Outcome], ImportResult] = report_step
    pipeline: Callable[
        [Engine, RunContext, ExportInfo, RawHolder, RawPrints | None],
        tuple[Validated | Rejected, Loaded | None],
    ] = pipeline_step
    skip: Callable[[Engine, RunContext, RawExport, bool], tuple[RawExport, RawPrints | None]] = (
        lambda engine, ctx, raw, allow: skip_step(engine, ctx, raw, allow=allow)
    )


def run_import(engine: Engine, ctx: RunContext, steps: Steps | None = None) -> ImportResult:
    """The whole import: skip check, read, skip the unchanged customers, validate, load, then
    the reports (always written). A load that finds a skipped customer changed meanwhile
    (SkipInvalidated) is done again from the read, skipping nothing."""
    steps = steps or Steps()
    export = ExportInfo(sha256=None)
    issues = empty_issues()
    validated: Validated | None = None
    try:
        applied = check_applied(engine, ctx)
        sha256, previous = applied.sha256, applied.previous
        export = ExportInfo(sha256=sha256)
        stale = None
        if previous is None and ctx.as_of is not None and not ctx.options.force:
            with engine.connect() as conn:
                stale = stale_export(conn, ctx)  # checked again under the lock by the load
        if stale is not None:
            summary = summarise(
                ctx,
                status=RunStatus.REJECTED,
                finished_at=_now(),
                export=export,
                issues=issues,
                file_errors=(stale,),
            )
            record_run(engine, ctx, summary, issues, export)
            return steps.report(engine, Outcome(summary, issues, export, None))
        if previous is not None:
            log.info("file already applied by run %s; skipping", previous)
            summary = summarise(
                ctx, status=RunStatus.SKIPPED, finished_at=_now(), export=export, issues=issues
            )
            record_run(engine, ctx, summary, issues, export)
            return steps.report(engine, Outcome(summary, issues, export, None))
        loaded_bytes = applied.loaded
        del applied
        for allow_skip in (True, False):
            raw = steps.read(ctx, loaded_bytes)
            loaded_bytes = ()  # taken by the reader; a second attempt reads the file again
            prints = None
            if isinstance(raw, RawExport):
                export = ExportInfo.of(raw)
                raw, prints = steps.skip(engine, ctx, raw, allow_skip)
                if pipelined_parts(ctx, raw) > 1:
                    # a big file: validated and loaded in parts, in one step
                    holder = RawHolder(raw)
                    del raw
                    try:
                        checked, in_parts = steps.pipeline(engine, ctx, export, holder, prints)
                    except SkipInvalidated:
                        log.info("a customer skipped as unchanged was changed meanwhile: again")
                        validated, issues = None, empty_issues()
                        continue
                    if isinstance(checked, Validated) and in_parts is not None:
                        validated, issues, loaded = checked, checked.issues, in_parts
                    break
                checked = steps.validate(ctx, raw, prints)
                if isinstance(checked, Validated):
                    checked = drift_step(engine, ctx, export, checked)
            else:
                checked = raw
            # The raw rows are not needed any more (the rejected ones are in the validation):
            # let the load have their memory.
            del raw
            if isinstance(checked, Rejected):
                break
            validated, issues = checked, checked.issues
            try:
                loaded = steps.load(engine, ctx, export, validated, prints)
            except SkipInvalidated:
                # another import or a revert changed a skipped customer before the lock
                log.info("a customer skipped as unchanged was changed meanwhile: importing again")
                validated, issues = None, empty_issues()
                continue
            break
        if isinstance(checked, Rejected):
            issues, validated = checked.issues, checked.validated
            summary = summarise(
                ctx,
                status=RunStatus.REJECTED,
                finished_at=_now(),
                export=export,
                issues=issues,
                validated=validated,
                file_errors=checked.file_errors,
            )
            record_run(
                engine,
                ctx,
                summary,
                issues,
                export,
                validated.rejected_rows if validated is not None else None,
            )
        else:
            summary = summarise(
                ctx,
                status=loaded.status,
                finished_at=loaded.finished_at,
                export=export,
                issues=issues,
                validated=validated,
                counts=loaded.counts,
                file_errors=loaded.file_errors,
            )
    except Exception as exc:  # an infrastructure failure: the transaction applied nothing
        log.info("import failed: %s", type(exc).__name__)  # the summary says it, in one line
        summary = record_failure(engine, ctx, export, issues, validated, exc)
    rejected_rows = validated.rejected_rows if validated is not None else None
    return steps.report(engine, Outcome(summary, issues, export, rejected_rows))


def record_failure(
    engine: Engine | None,
    ctx: RunContext,
    export: ExportInfo,
    issues: pl.DataFrame,
    validated: Validated | None,
    exc: BaseException,
) -> Summary:
    """The failed run's summary, recorded if the database (maybe what failed) still answers."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    error = FileError(code=FileErrorCode.FAILED, message=f"{type(exc).__name__}: {reason}")
    summary = summarise(
        ctx,
        status=RunStatus.FAILED,
        finished_at=_now(),
        export=export,
        issues=issues,
        validated=validated,
        file_errors=(error,),
    )
    if engine is not None:
        try:
            rejected_rows = validated.rejected_rows if validated is not None else None
            record_run(engine, ctx, summary, issues, export, rejected_rows)
        except (sa.exc.SQLAlchemyError, LoaderError) as second:
            log.warning("could not record the failed run: %s", type(second).__name__)
    return summary


INDEX_RUNS = 500
"""How many of the newest runs reports/index.html lists."""


def write_reports_index(engine: Engine, report_dir: Path) -> Path | None:
    """Regenerate <report_dir>/index.html from the newest runs of every organisation.

    None when the folder cannot be written: the runs' own results already say so.
    """
    with engine.connect() as conn:
        recent = runs.list_runs(conn, None, limit=INDEX_RUNS)
        fields_changed = history.fields_changed_per_run(conn, [s.run_id for s in recent])
    try:
        return reporting.write_index(Path(report_dir), recent, fields_changed)
    except OSError as exc:
        logging.getLogger(__name__).info("index.html not written: %s", exc)
        return None
