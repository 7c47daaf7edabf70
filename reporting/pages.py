"""The HTML pages: a run's report.html and the runs' index.html, rendered from Jinja2 templates.

Python works out what a page shows (figures, counts per code and column, the first rejected
rows) and hands it to the templates in reports/templates/ as plain data. Autoescaping is on for
every template, so each value, whatever a CSV cell held, reaches the page as text: nothing is
escaped by hand and nothing is marked safe. Each page is one self-contained file: the CSS is
inlined and the charts are inline SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import polars as pl
from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined

from contract import WARNING_CODES, FileErrorCode, IssueCode, RunStatus, Severity, Summary
from contract.changes import ChangeOverview
from reporting.files import conform_issues, in_source_order

# Shown in report.html; one line per code: what the person who fixes the file should do.
ISSUE_HINTS: Final[dict[str, str]] = {
    IssueCode.REQUIRED: "Fill in the value: erp_customer_number, name, default_currency and "
    "default_language may not be blank.",
    IssueCode.LENGTH: "Shorten the value: a customer number holds at most 100 characters, "
    "a name at most 500.",
    IssueCode.CURRENCY: "Use an active ISO 4217 code such as EUR, USD or CHF "
    "(case does not matter).",
    IssueCode.LANGUAGE: "Use a BCP 47 language tag such as de-DE, en or fr-CH "
    "(de_de is read as de-DE).",
    IssueCode.EMAIL: "Write one address such as name@example.com: no display name, no spaces, "
    "no list.",
    IssueCode.BOOLEAN: "contact_is_primary takes true/false, 1/0, yes/no, y/n, x or an empty cell.",
    IssueCode.FIELD_COUNT: "The row has more or fewer fields than the header: check the quoting "
    "of delimiters, quotes and line breaks in that row.",
    IssueCode.REJECTED_WITH_CUSTOMER: "The row has no error of its own: another row of the same "
    "customer failed. Fix that row and send all of the customer's rows again.",
    IssueCode.CONFLICTING_VALUES: "Rows of one customer disagree on a customer column; the last "
    "row won. Give the customer the same values on all of its rows.",
    IssueCode.DUPLICATE_CONTACT: "The same contact email appears twice for one customer; the last "
    "row won. Remove the duplicate row.",
    IssueCode.MULTIPLE_PRIMARY: "More than one contact of a customer is marked primary; the last "
    "one won. Mark one contact only.",
    IssueCode.UNKNOWN_COLUMN: "The column is not part of the import format and was ignored: check "
    "its spelling, or drop it from the export.",
    FileErrorCode.ENCODING: "Save the file as UTF-8 (with or without BOM), UTF-16 with BOM, "
    "or Windows-1252.",
    FileErrorCode.MISSING_COLUMN: "Add the required column to the header: erp_customer_number, "
    "name, default_currency and default_language must all be present.",
    FileErrorCode.DUPLICATE_COLUMN: "Name each column once in the header (names compare "
    "case-insensitively, ignoring surrounding spaces).",
    FileErrorCode.ERROR_BUDGET: "More rows failed than --max-error-rate allows, so nothing was "
    "applied: fix the rows listed in errors.csv, or raise the limit if the errors are expected.",
    FileErrorCode.DEACTIVATE_BUDGET: "Full mode would deactivate more customers than "
    "--max-deactivate-rate allows: check that the export is complete, or import it with "
    "--mode upsert.",
}
DEFAULT_HINT: Final = "Read the messages for this code in errors.csv."

#: What each status means to the person reading the report (one per RunStatus).
STATUS_MEANINGS: Final[dict[RunStatus, str]] = {
    RunStatus.RUNNING: "under way; the run has not finished",
    RunStatus.SUCCEEDED: "applied, no row rejected",
    RunStatus.PARTIAL: "applied; some customers were rejected (see below)",
    RunStatus.SKIPPED: "these bytes were applied before; nothing was done",
    RunStatus.REJECTED: "the file as a whole was refused; nothing was applied",
    RunStatus.FAILED: "an infrastructure failure; nothing was applied",
}

REJECTED_ROWS_SHOWN: Final = 50
TOP_VALUES_PER_CODE: Final = 5
CHART_MAX_BARS: Final = 40
INDEX_CHART_RUNS: Final = 30

_DELIMITER_NAMES: Final = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


# --------------------------------------------------------------------------------------------
# What the templates are given
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart; css is a Severity ("error", "warning") or "column"."""

    label: str
    count: int
    css: str


@dataclass(frozen=True)
class Figures:
    """A small table of named counts, such as the rows block of the summary."""

    caption: str
    block: str
    values: Mapping[str, int]


@dataclass(frozen=True)
class TopValues:
    """The most frequent offending values of one issue code, with their counts."""

    code: str
    values: Sequence[tuple[str, int]]


@dataclass(frozen=True)
class RejectedRow:
    """A rejected row as shown: its line, its errors, its cells (None: missing) and surplus."""

    line: int | None
    errors: str | None
    cells: Sequence[str | None]
    extra: str | None


@dataclass(frozen=True)
class OrgRuns:
    """One organisation's runs in the index, newest first."""

    org: str
    runs: Sequence[Summary]


# --------------------------------------------------------------------------------------------
# Formatting filters
# --------------------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    """The moment with a time zone; naive ones are read as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """A timestamp for people: 2024-05-01 02:00:13+00:00."""
    return _aware(moment).isoformat(sep=" ", timespec="seconds")


def format_duration(started: datetime, finished: datetime) -> str:
    """Elapsed time between two timestamps, as 1 h 2 min 3 s (or 4.5 s under a minute)."""
    seconds = (_aware(finished) - _aware(started)).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def shorten(text: str, limit: int) -> str:
    """Cut text to limit characters with an ellipsis, for labels."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(count: int, noun: str) -> str:
    """'1 run', '2 runs'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def file_name(source: str) -> str:
    """The file name of a source path (the whole value when it has no name part)."""
    return Path(source).name or source


def url_segment(text: str) -> str:
    """Text percent-encoded as one path segment or fragment of a URL."""
    return quote(text, safe="")


def delimiter_name(delimiter: str | None) -> str:
    """comma, semicolon, tab, pipe, or the delimiter itself."""
    return _DELIMITER_NAMES.get(delimiter or "", delimiter or "")


_ENV = Environment(
    loader=PackageLoader("reporting", "templates"),
    autoescape=True,  # every template, whatever its name: values are always text on the page
    undefined=StrictUndefined,
    finalize=lambda value: "" if value is None else value,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # Compiling the two templates is 0.1 s of every import: Jinja keeps the compiled code in a
    # private folder of this user under the temporary directory, checked against the source.
    bytecode_cache=FileSystemBytecodeCache(),
)
_ENV.filters.update(
    timestamp=format_time,
    short=shorten,
    plural=plural,
    file_name=file_name,
    url_segment=url_segment,
    delimiter_name=delimiter_name,
)


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------


def _issues_by_code(issues: pl.DataFrame, summary: Summary) -> list[Bar]:
    """One bar per code, most frequent first; from the summary when there are no issue rows."""
    if issues.height == 0:
        counted = sorted(summary.issues_by_code.items(), key=lambda kv: (-kv[1], kv[0]))
        return [
            Bar(code, count, Severity.WARNING if code in WARNING_CODES else Severity.ERROR)
            for code, count in counted
            if count
        ]
    table = (
        issues.group_by(pl.col("code").fill_null("(none)"))
        .agg(
            pl.len().alias("count"), (pl.col("severity") == Severity.ERROR).any().alias("is_error")
        )
        .sort(["count", "code"], descending=[True, False])
    )
    return [
        Bar(code, count, Severity.ERROR if is_error else Severity.WARNING)
        for code, count, is_error in table.select("code", "count", "is_error").iter_rows()
    ]


def _issues_by_column(issues: pl.DataFrame) -> list[Bar]:
    """One bar per column, most frequent first; row-wide issues are "(whole row)"."""
    if issues.height == 0:
        return []
    table = (
        issues.group_by(pl.col("column").fill_null("(whole row)"))
        .agg(pl.len().alias("count"))
        .sort(["count", "column"], descending=[True, False])
    )
    return [
        Bar(column, count, "column")
        for column, count in table.select("column", "count").iter_rows()
    ]


def _top_values(issues: pl.DataFrame, codes: Sequence[str]) -> list[TopValues]:
    """The most frequent offending values per code, top five each, in the order of codes."""
    if issues.height == 0:
        return []
    table = (
        issues.filter(pl.col("value").is_not_null() & pl.col("code").is_not_null())
        .group_by(["code", "value"])
        .agg(pl.len().alias("count"))
        .sort(["code", "count", "value"], descending=[False, True, False])
        .group_by("code", maintain_order=True)
        .head(TOP_VALUES_PER_CODE)
    )
    top: dict[str, list[tuple[str, int]]] = {}
    for code, value, count in table.select("code", "value", "count").iter_rows():
        top.setdefault(code, []).append((value, count))
    return [TopValues(code, top[code]) for code in codes if code in top]


def _hints(summary: Summary, codes: Iterable[str]) -> list[tuple[str, str]]:
    """(code, what to do) for each file-error code and issue code present, file errors first."""
    file_error_codes = [error.code for error in summary.file_errors if error.code]
    present = dict.fromkeys([*file_error_codes, *codes])
    return [(code, ISSUE_HINTS.get(code, DEFAULT_HINT)) for code in present]


def _shown_rejected_rows(header: Sequence[str], rejected_rows: pl.DataFrame) -> list[RejectedRow]:
    """The first rejected rows in source order, one cell per header column."""
    if rejected_rows.height == 0:
        return []
    shown = in_source_order(rejected_rows).head(REJECTED_ROWS_SHOWN)
    has_extra = "_extra" in shown.columns and shown.schema["_extra"] != pl.Null
    rows = []
    for row in shown.iter_rows(named=True):
        extra = row.get("_extra") if has_extra else None
        rows.append(
            RejectedRow(
                line=row.get("_line"),
                errors=row.get("errors"),
                cells=[row.get(f"c{i}") for i in range(len(header))],
                extra=" | ".join(str(field) for field in extra) if extra else None,
            )
        )
    return rows


def _change_bars(changes: ChangeOverview | None) -> list[Bar]:
    """One bar per entity and field, most changed first (customers before contacts on ties)."""
    if changes is None:
        return []
    return [
        Bar(f"{count.entity} {count.field}", count.changes, count.entity)
        for count in sorted(changes.counts, key=lambda c: (-c.changes, c.entity != "customer"))
    ]


def render_run_report(
    summary: Summary,
    issues: pl.DataFrame,
    header: Sequence[str],
    rejected_rows: pl.DataFrame,
    changes: ChangeOverview | None = None,
) -> str:
    """The run's report.html: figures, file errors, charts, bad values, hints, rejected rows."""
    issues = conform_issues(issues)
    by_code = _issues_by_code(issues, summary)
    by_column = _issues_by_column(issues)
    codes = [bar.label for bar in by_code]
    shown_rows = _shown_rejected_rows(header, rejected_rows)
    return _ENV.get_template("run_report.html.j2").render(
        summary=summary,
        status_meaning=STATUS_MEANINGS[summary.status],
        duration=format_duration(summary.started_at, summary.finished_at),
        figures=[
            Figures("Rows", "rows", summary.rows.model_dump()),
            Figures("Customers", "customers", summary.customers.model_dump()),
            Figures("Contacts", "contacts", summary.contacts.model_dump()),
        ],
        issues_total=issues.height,
        by_code=by_code,
        by_column=by_column[:CHART_MAX_BARS],
        more_columns=max(0, len(by_column) - CHART_MAX_BARS),
        top_values=_top_values(issues, codes),
        hints=_hints(summary, codes),
        header=header,
        rejected_rows=shown_rows,
        rejected_total=rejected_rows.height,
        show_extra=any(row.extra for row in shown_rows),
        changes=changes,
        change_bars=_change_bars(changes),
    )


# --------------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------------


def _by_org_newest_first(summaries: Iterable[Summary]) -> list[OrgRuns]:
    """Runs grouped per organisation (by slug), each newest first; ties broken by run id."""
    ordered = sorted(summaries, key=lambda run: run.run_id)
    ordered.sort(key=lambda run: _aware(run.started_at), reverse=True)
    by_org: dict[str, list[Summary]] = {}
    for run in ordered:
        by_org.setdefault(run.org, []).append(run)
    return [OrgRuns(org, by_org[org]) for org in sorted(by_org)]


def render_index(
    summaries: Sequence[Summary], fields_changed: Mapping[str, int] | None = None
) -> str:
    """index.html as text: every run, newest first, grouped per organisation with a chart each."""
    context: dict[str, Any] = {
        "fields_changed": dict(fields_changed or {}),
        "runs_total": len(summaries),
        "orgs": _by_org_newest_first(summaries),
        "chart_runs": INDEX_CHART_RUNS,
    }
    return _ENV.get_template("index.html.j2").render(context)
