"""Report writers: a run's summary.json, errors.csv, rejected_rows.csv, report.html; the runs index.

Pure file output: no database, no prefect. Every CSV cell that a spreadsheet would run as a formula
(it starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with ``'``
(CONTRACT.md section 3). Aggregations are polars expressions; Python only loops over their small
results (one entry per code, per column, per shown row).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import polars as pl

ISSUE_COLUMNS = ("line", "erp_customer_number", "column", "value", "code", "severity", "message")

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^[=+\-@\t\r]"

_ISSUE_SCHEMA: dict[str, pl.DataType] = {
    name: (pl.Int64() if name == "line" else pl.String()) for name in ISSUE_COLUMNS
}

# Shown in report.html; one line per code: what the person who fixes the file should do.
ISSUE_HINTS: dict[str, str] = {
    "required": "Fill in the value: erp_customer_number, name, default_currency and "
    "default_language may not be blank.",
    "length": "Shorten the value: a customer number holds at most 100 characters, "
    "a name at most 500.",
    "currency": "Use an active ISO 4217 code such as EUR, USD or CHF (case does not matter).",
    "language": "Use a BCP 47 language tag such as de-DE, en or fr-CH (de_de is read as de-DE).",
    "email": "Write one address such as name@example.com: no display name, no spaces, no list.",
    "boolean": "contact_is_primary takes true/false, 1/0, yes/no, y/n, x or an empty cell.",
    "field_count": "The row has more or fewer fields than the header: check the quoting of "
    "delimiters, quotes and line breaks in that row.",
    "rejected_with_customer": "The row has no error of its own: another row of the same customer "
    "failed. Fix that row and send all of the customer's rows again.",
    "conflicting_values": "Rows of one customer disagree on a customer column; the last row won. "
    "Give the customer the same values on all of its rows.",
    "duplicate_contact": "The same contact email appears twice for one customer; the last row won. "
    "Remove the duplicate row.",
    "multiple_primary": "More than one contact of a customer is marked primary; the last one won. "
    "Mark one contact only.",
    "unknown_column": "The column is not part of the import format and was ignored: check its "
    "spelling, or drop it from the export.",
    "encoding": "Save the file as UTF-8 (with or without BOM), UTF-16 with BOM, or Windows-1252.",
    "missing_column": "Add the required column to the header: erp_customer_number, name, "
    "default_currency and default_language must all be present.",
    "duplicate_column": "Name each column once in the header (names compare case-insensitively, "
    "ignoring surrounding spaces).",
    "error_budget": "More rows failed than --max-error-rate allows, so nothing was applied: fix "
    "the rows listed in errors.csv, or raise the limit if the errors are expected.",
    "deactivate_budget": "Full mode would deactivate more customers than --max-deactivate-rate "
    "allows: check that the export is complete, or import it with --mode upsert.",
}
_WARNING_CODES = frozenset(
    {"conflicting_values", "duplicate_contact", "multiple_primary", "unknown_column"}
)
_DEFAULT_HINT = "Read the messages for this code in errors.csv."

_REJECTED_ROWS_SHOWN = 50
_TOP_VALUES_PER_CODE = 5
_CHART_MAX_BARS = 40
_INDEX_CHART_RUNS = 30

_STATUS_MEANINGS = {
    "succeeded": "applied, no row rejected",
    "partial": "applied; some customers were rejected (see below)",
    "skipped": "these bytes were applied before; nothing was done",
    "rejected": "the file as a whole was refused; nothing was applied",
    "failed": "an infrastructure failure; nothing was applied",
}

_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to every String cell that starts with = + - @ tab or carriage return."""
    exprs = [
        pl.when(pl.col(name).str.contains(_FORMULA_PATTERN))
        .then(pl.concat_str([pl.lit("'"), pl.col(name)]))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    ]
    return frame.with_columns(exprs) if exprs else frame


def _conform_issues(issues: pl.DataFrame) -> pl.DataFrame:
    """Return the issues with exactly ISSUE_COLUMNS, in that order and with the contract's types."""
    if issues.width == 0:
        return pl.DataFrame(schema=_ISSUE_SCHEMA)
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in _ISSUE_SCHEMA.items()
        if name not in issues.columns
    ]
    if missing:
        issues = issues.with_columns(missing)
    return issues.select(pl.col(name).cast(dtype) for name, dtype in _ISSUE_SCHEMA.items())


def _csv_field(expr: pl.Expr, delimiter: str) -> pl.Expr:
    """Quote text as RFC 4180 writes a field holding the delimiter, quotes or newlines."""
    needs_quotes = (
        expr.str.contains(delimiter, literal=True)
        | expr.str.contains('"', literal=True)
        | expr.str.contains("\n", literal=True)
        | expr.str.contains("\r", literal=True)
    )
    return (
        pl.when(needs_quotes)
        .then(
            pl.concat_str([pl.lit('"'), expr.str.replace_all('"', '""', literal=True), pl.lit('"')])
        )
        .otherwise(expr)
    )


def _errors_with_extra_fields(rejected_rows: pl.DataFrame, delimiter: str) -> pl.Expr:
    """The row's errors text, followed by its surplus fields written as CSV so nothing is lost."""
    errors = (
        pl.col("errors").cast(pl.String)
        if "errors" in rejected_rows.columns
        else pl.lit(None, dtype=pl.String)
    )
    if "_extra" not in rejected_rows.columns or rejected_rows.schema["_extra"] == pl.Null:
        return errors.alias("errors")
    extra = pl.col("_extra").cast(pl.List(pl.String))
    extra_text = (
        pl.when(extra.list.len() > 0)
        .then(
            pl.concat_str(
                [
                    pl.lit("extra fields: "),
                    extra.list.eval(_csv_field(pl.element(), delimiter)).list.join(delimiter),
                ]
            )
        )
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    joined = pl.concat_str([errors, extra_text], separator="; ", ignore_nulls=True)
    return (
        pl.when(joined == "").then(pl.lit(None, dtype=pl.String)).otherwise(joined).alias("errors")
    )


def _rejected_cells(rejected_rows: pl.DataFrame, width: int, delimiter: str) -> pl.DataFrame:
    """Columns c0..c{width-1} and errors, one row per rejected row in source order."""
    if rejected_rows.width == 0:
        schema = {f"c{i}": pl.String() for i in range(width)} | {"errors": pl.String()}
        return pl.DataFrame(schema=schema)
    rows = (
        rejected_rows.sort("_line", maintain_order=True)
        if "_line" in rejected_rows.columns
        else rejected_rows
    )
    cells = [
        pl.col(f"c{i}").cast(pl.String)
        if f"c{i}" in rows.columns
        else pl.lit(None, dtype=pl.String).alias(f"c{i}")
        for i in range(width)
    ]
    return rows.select([*cells, _errors_with_extra_fields(rows, delimiter)])


def _errors_column_name(header: Sequence[str]) -> str:
    """'errors', or 'errors_2', 'errors_3', ... when the source header already has that column."""
    taken = {name.strip().casefold() for name in header}
    name, n = "errors", 1
    while name in taken:
        n += 1
        name = f"errors_{n}"
    return name


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: object) -> str:
    """Serialise the few non-JSON values a summary may carry (datetimes, paths, UUIDs)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def write_summary_json(path: Path, summary: Mapping[str, Any]) -> None:
    """Write the run summary as indented UTF-8 JSON, keeping every key it carries."""
    text = json.dumps(summary, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    _write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def write_errors_csv(path: Path, issues: pl.DataFrame) -> None:
    """Write errors.csv: the contract's header, then one neutralised row per issue in order."""
    frame = neutralise_formulas(_conform_issues(issues))
    _write_atomically(path, lambda handle: frame.write_csv(handle, include_header=True))


def write_rejected_rows_csv(
    path: Path, header: Sequence[str], rejected_rows: pl.DataFrame, delimiter: str
) -> None:
    """Write rejected_rows.csv: source header plus errors, rows in source order and delimiter."""
    if len(delimiter) != 1 or not delimiter.isascii():
        raise ValueError(f"delimiter must be one ASCII character, got {delimiter!r}")
    width = len(header)
    # The header goes through the same writer as the cells, so it is quoted by the same rules;
    # positional column names keep duplicate or colliding source names apart.
    header_row = neutralise_formulas(
        pl.DataFrame(
            {f"c{i}": [name] for i, name in enumerate(header)}
            | {"errors": [_errors_column_name(header)]},
            schema={f"c{i}": pl.String() for i in range(width)} | {"errors": pl.String()},
        )
    )
    body = neutralise_formulas(_rejected_cells(rejected_rows, width, delimiter))

    def write(handle: IO[bytes]) -> None:
        header_row.write_csv(handle, include_header=False, separator=delimiter)
        body.write_csv(handle, include_header=False, separator=delimiter)

    _write_atomically(path, write)


def write_run_reports(
    run_dir: Path,
    summary: dict[str, Any],
    issues: pl.DataFrame,
    header: Sequence[str],
    rejected_rows: pl.DataFrame,
    delimiter: str,
) -> None:
    """Create run_dir; write summary.json, errors.csv, rejected_rows.csv and report.html in it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_summary_json(run_dir / "summary.json", summary)
    write_errors_csv(run_dir / "errors.csv", issues)
    write_rejected_rows_csv(run_dir / "rejected_rows.csv", header, rejected_rows, delimiter)
    page = render_run_report(summary, issues, header, rejected_rows)
    _write_atomically(run_dir / "report.html", lambda handle: handle.write(page.encode("utf-8")))


# --------------------------------------------------------------------------------------------
# HTML building blocks
# --------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _int(value: object) -> int:
    """A figure as an int; absent or malformed figures count as 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _section(summary: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested summary block such as "rows", or an empty one."""
    block = summary.get(key)
    return block if isinstance(block, Mapping) else {}


def _plural(count: int, noun: str) -> str:
    """'1 run', '2 runs'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _short(text: str, limit: int) -> str:
    """Cut text to limit characters with an ellipsis, for labels."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones read as UTC), or None."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _format_time(value: object) -> str:
    """A timestamp for people (2024-05-01 02:00:13+00:00); unparseable values as given."""
    moment = _parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.isoformat(sep=" ", timespec="seconds")


def _duration(start: object, end: object) -> str:
    """Elapsed time between two timestamps, as 1 h 2 min 3.4 s; empty when unknown."""
    started, finished = _parse_time(start), _parse_time(end)
    if started is None or finished is None:
        return ""
    seconds = (finished - started).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def _source_name(source: object) -> str:
    """The file name of a source path (the whole value when it has no name part)."""
    text = "" if source is None else str(source)
    return Path(text).name or text


def _status_badge(status: object, element_id: str | None = None) -> str:
    """A coloured badge for a run status."""
    text = str(status or "unknown")
    css = text if text in {"succeeded", "partial", "skipped", "rejected", "failed"} else "unknown"
    id_attr = f' id="{_e(element_id)}"' if element_id else ""
    return f'<span{id_attr} class="badge status-{css}" data-status="{_e(text)}">{_e(text)}</span>'


def _bar_chart(
    chart_id: str, title: str, bars: Sequence[tuple[str, int, str]], key_attr: str
) -> str:
    """A horizontal bar chart in inline SVG: one labelled bar per (label, count, css class)."""
    if not bars:
        return f'<p class="empty" id="{_e(chart_id)}-empty">None.</p>'
    label_w, bar_w, count_w, row_h, pad = 210, 460, 70, 26, 6
    width = label_w + bar_w + count_w
    height = row_h * len(bars) + pad
    top = max(count for _, count, _ in bars) or 1
    parts = [
        f'<svg id="{_e(chart_id)}" class="chart" role="img" aria-label="{_e(title)}" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, count, css) in enumerate(bars):
        y = pad + i * row_h
        length = max(2.0, bar_w * count / top) if count else 0.0
        parts.append(
            f'<g class="bar-row"><title>{_e(label)}: {count}</title>'
            f'<text class="bar-label" x="{label_w - 8}" y="{y + row_h / 2 + 1:.1f}" '
            f'text-anchor="end" dominant-baseline="middle">{_e(_short(label, 30))}</text>'
            f'<rect class="bar {css}" {key_attr}="{_e(label)}" data-count="{count}" '
            f'x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 8}" rx="3"/>'
            f'<text class="bar-count" x="{label_w + length + 6:.1f}" y="{y + row_h / 2 + 1:.1f}" '
            f'dominant-baseline="middle">{count}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _figure_table(caption: str, block: str, names: Iterable[str], values: Mapping[str, Any]) -> str:
    """A small table of named figures, each cell carrying a stable id and data-figure."""
    rows = "".join(
        f'<tr><th scope="row">{_e(name)}</th>'
        f'<td id="{_e(block)}-{_e(name)}" class="figure" data-figure="{_e(block)}.{_e(name)}">'
        f"{_int(values.get(name))}</td></tr>"
        for name in names
    )
    return (
        f'<table class="figures" id="figures-{_e(block)}">'
        f"<caption>{_e(caption)}</caption>{rows}</table>"
    )


_CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
  --ok:#2f855a; --warn:#b7791f; --bad:#c53030; --grey:#718096; --accent:#2b6cb0; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  color:var(--fg); background:var(--bg); }
main { max-width:1120px; margin:0 auto; padding:24px 20px 48px; }
h1 { font-size:1.6rem; margin:0 0 4px; }
h2 { font-size:1.2rem; margin:0 0 12px; }
h3 { font-size:1rem; margin:16px 0 6px; }
section, header.run { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:16px 20px; margin:0 0 16px; }
.muted, caption { color:var(--muted); }
caption { text-align:left; font-weight:600; padding-bottom:4px; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:.9em; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:2px 16px; margin:12px 0 0; }
dl.meta dt { color:var(--muted); } dl.meta dd { margin:0; overflow-wrap:anywhere; }
.badge { display:inline-block; padding:2px 10px; border-radius:999px; font-size:.85rem;
  font-weight:600; color:#fff; background:var(--grey); vertical-align:middle; }
.status-succeeded { background:var(--ok); } .status-partial { background:var(--warn); }
.status-rejected, .status-failed { background:var(--bad); } .status-failed { background:#822727; }
.badge.dry-run { background:var(--accent); }
.banner { border-left:4px solid var(--accent); background:#ebf8ff; padding:8px 12px;
  margin:12px 0 0; }
.grid { display:flex; flex-wrap:wrap; gap:16px; }
table { border-collapse:collapse; }
table.figures { min-width:230px; }
table.figures th { text-align:left; font-weight:normal; padding:3px 16px 3px 0; }
table.figures td { text-align:right; font-variant-numeric:tabular-nums; font-weight:600;
  padding:3px 0; }
table.data { width:100%; font-size:.9rem; }
table.data th, table.data td { border-bottom:1px solid var(--line); padding:4px 8px;
  text-align:left; vertical-align:top; }
table.data th { background:var(--bg); position:sticky; top:0; }
table.data td.num, table.data th.num { text-align:right; font-variant-numeric:tabular-nums; }
table.data tbody tr:nth-child(even) { background:#fafbfc; }
td.missing { color:var(--muted); font-style:italic; }
td.cell { max-width:22em; overflow-wrap:anywhere; white-space:pre-wrap; }
#rejected-rows-table td { min-width:8em; }
#rejected-rows-table td.line { min-width:0; }
#rejected-rows-table td.errors { min-width:18em; }
.scroll { overflow:auto; max-height:70vh; border:1px solid var(--line); border-radius:6px; }
svg.chart { display:block; margin:4px 0 8px; font-size:12px; }
svg .bar-label, svg .bar-count, svg .axis { fill:var(--fg); }
svg .bar.error, svg .bar.rejected { fill:var(--bad); }
svg .bar.warning { fill:var(--warn); }
svg .bar.column, svg .bar.valid { fill:var(--accent); }
svg .bar.valid { fill:var(--ok); }
ul.hints li, ul.file-errors li { margin-bottom:6px; }
.top-values { display:grid; grid-template-columns:repeat(auto-fill,minmax(300px,1fr));
  gap:12px 24px; }
a { color:var(--accent); }
footer { color:var(--muted); font-size:.85rem; margin-top:24px; }
"""


def _page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------


def _issues_by_code(issues: pl.DataFrame, summary: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """(code, count, severity) per code, most frequent first; the summary's if no issue rows."""
    if issues.height == 0:
        by_code = _section(summary, "issues_by_code")
        counted = sorted(
            ((str(k), _int(v)) for k, v in by_code.items()), key=lambda kv: (-kv[1], kv[0])
        )
        return [
            (code, count, "warning" if code in _WARNING_CODES else "error")
            for code, count in counted
            if count
        ]
    table = (
        issues.group_by(pl.col("code").fill_null("(none)"))
        .agg(
            pl.len().alias("count"),
            (pl.col("severity") == "error").any().alias("is_error"),
        )
        .sort(["count", "code"], descending=[True, False])
    )
    return [
        (row["code"], row["count"], "error" if row["is_error"] else "warning")
        for row in table.iter_rows(named=True)
    ]


def _issues_by_column(issues: pl.DataFrame) -> list[tuple[str, int, str]]:
    """(column, count, css) per column, most frequent first; row-wide issues are "(whole row)"."""
    if issues.height == 0:
        return []
    table = (
        issues.group_by(pl.col("column").fill_null("(whole row)"))
        .agg(pl.len().alias("count"))
        .sort(["count", "column"], descending=[True, False])
    )
    return [(row["column"], row["count"], "column") for row in table.iter_rows(named=True)]


def _top_values(issues: pl.DataFrame) -> dict[str, list[tuple[str, int]]]:
    """The most frequent offending values per code, top five each."""
    if issues.height == 0:
        return {}
    table = (
        issues.filter(pl.col("value").is_not_null() & pl.col("code").is_not_null())
        .group_by(["code", "value"])
        .agg(pl.len().alias("count"))
        .sort(["code", "count", "value"], descending=[False, True, False])
        .group_by("code", maintain_order=True)
        .head(_TOP_VALUES_PER_CODE)
    )
    top: dict[str, list[tuple[str, int]]] = {}
    for code, value, count in table.select("code", "value", "count").iter_rows():
        top.setdefault(code, []).append((value, count))
    return top


def _render_top_values(order: Sequence[str], top: Mapping[str, list[tuple[str, int]]]) -> str:
    """One small table of bad values per code, in chart order."""
    blocks = []
    for code in order:
        values = top.get(code)
        if not values:
            continue
        rows = "".join(
            f'<tr><td class="cell"><code>{_e(_short(value, 200))}</code></td>'
            f'<td class="num" data-count="{count}">{count}</td></tr>'
            for value, count in values
        )
        blocks.append(
            f'<div class="top-values-code" data-code="{_e(code)}"><h3><code>{_e(code)}</code></h3>'
            f'<table class="data"><thead><tr><th>value</th><th class="num">count</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    if not blocks:
        return ""
    return (
        '<section id="top-values"><h2>Most frequent bad values</h2>'
        f'<div class="top-values">{"".join(blocks)}</div></section>'
    )


def _render_hints(codes: Sequence[str]) -> str:
    """A "what to do" line for each issue or file-error code present."""
    if not codes:
        return ""
    items = "".join(
        f'<li data-code="{_e(code)}"><code>{_e(code)}</code>: '
        f"{_e(ISSUE_HINTS.get(code, _DEFAULT_HINT))}</li>"
        for code in codes
    )
    return f'<section id="what-to-do"><h2>What to do</h2><ul class="hints">{items}</ul></section>'


def _render_rejected_rows(header: Sequence[str], rejected_rows: pl.DataFrame) -> str:
    """The first rejected rows with their line numbers, errors and source cells."""
    total = rejected_rows.height
    if total == 0:
        return (
            '<section id="rejected-rows"><h2>Rejected rows</h2><p class="empty">None.</p></section>'
        )
    width = len(header)
    shown = (
        rejected_rows.sort("_line", maintain_order=True)
        if "_line" in rejected_rows.columns
        else rejected_rows
    ).head(_REJECTED_ROWS_SHOWN)
    has_extra = (
        "_extra" in shown.columns
        and shown.schema["_extra"] != pl.Null
        and (shown["_extra"].cast(pl.List(pl.String)).list.len().fill_null(0) > 0).any()
    )
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    extra_head = "<th>extra fields</th>" if has_extra else ""
    body = []
    for row in shown.iter_rows(named=True):
        cells = []
        for i in range(width):
            value = row.get(f"c{i}")
            cells.append(
                '<td class="cell missing">missing</td>'
                if value is None
                else f'<td class="cell">{_e(value)}</td>'
            )
        extra = ""
        if has_extra:
            fields = row.get("_extra") or []
            extra = f'<td class="cell extra">{_e(" | ".join(str(f) for f in fields))}</td>'
        line = row.get("_line")
        body.append(
            f'<tr class="rejected-row" data-line="{_e(line)}"><td class="num line">{_e(line)}</td>'
            f'<td class="cell errors">{_e(row.get("errors"))}</td>{"".join(cells)}{extra}</tr>'
        )
    note = (
        f"The first {shown.height} of {total} rejected rows;"
        if total > shown.height
        else f"All {total} rejected rows;"
    )
    return (
        '<section id="rejected-rows"><h2>Rejected rows</h2>'
        f'<p class="muted">{_e(note)} every one is in '
        '<a href="rejected_rows.csv">rejected_rows.csv</a>, '
        "ready to fix and import again.</p>"
        '<div class="scroll"><table class="data" id="rejected-rows-table"><thead><tr>'
        f'<th class="num">line</th><th>errors</th>{head}{extra_head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _render_file_errors(summary: Mapping[str, Any]) -> str:
    """File errors and warnings of the run, if there are any."""
    parts = []
    file_errors = summary.get("file_errors") or []
    if file_errors:
        items = "".join(
            f'<li class="file-error" data-code="{_e(err.get("code"))}">'
            f"<code>{_e(err.get('code'))}</code>: "
            f"{_e(err.get('message'))}</li>"
            if isinstance(err, Mapping)
            else f'<li class="file-error">{_e(err)}</li>'
            for err in file_errors
        )
        parts.append(f'<h2>File errors</h2><ul class="file-errors">{items}</ul>')
    warnings = summary.get("warnings") or []
    if warnings:
        items = "".join(
            f'<li class="warning">{_e(w.get("message", w) if isinstance(w, Mapping) else w)}</li>'
            for w in warnings
        )
        parts.append(f'<h2>Warnings</h2><ul class="file-errors">{items}</ul>')
    return f'<section id="file-errors">{"".join(parts)}</section>' if parts else ""


def render_run_report(
    summary: Mapping[str, Any],
    issues: pl.DataFrame,
    header: Sequence[str],
    rejected_rows: pl.DataFrame,
) -> str:
    """The run's report.html: figures, file errors, charts, bad values, hints, rejected rows."""
    issues = _conform_issues(issues)
    org = summary.get("org") or ""
    source = summary.get("source") or ""
    file_name = _source_name(source)
    rows, customers, contacts = (_section(summary, k) for k in ("rows", "customers", "contacts"))

    delimiter = str(summary.get("delimiter") or "")
    sha256 = str(summary.get("sha256") or "")
    meta = [
        ("run id", f'<code id="run-id">{_e(summary.get("run_id"))}</code>'),
        ("source", f'<span id="source" title="{_e(source)}">{_e(source)}</span>'),
        ("started", f'<span id="started-at">{_e(_format_time(summary.get("started_at")))}</span>'),
        (
            "finished",
            f'<span id="finished-at">{_e(_format_time(summary.get("finished_at")))}</span>',
        ),
        ("duration", _e(_duration(summary.get("started_at"), summary.get("finished_at")))),
        ("mode", f'<span id="mode">{_e(summary.get("mode"))}</span>'),
        ("encoding", _e(summary.get("encoding"))),
        ("delimiter", _e(_DELIMITER_NAMES.get(delimiter, delimiter))),
        (
            "sha256",
            f'<code title="{_e(sha256)}">{_e(_short(sha256, 17))}</code>',
        ),
    ]
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in meta)
    dry_run = bool(summary.get("dry_run"))
    status_meaning = _STATUS_MEANINGS.get(str(summary.get("status")), "")
    header_html = (
        '<header class="run">'
        f'<h1 id="title">Import report: <span id="org">{_e(org)}</span></h1>'
        f'<p><strong id="file-name">{_e(file_name)}</strong> '
        f"{_status_badge(summary.get('status'), 'status')}"
        f' <span class="muted" id="status-meaning">{_e(status_meaning)}</span>'
        + (' <span class="badge dry-run" id="dry-run">dry run</span>' if dry_run else "")
        + "</p>"
        + (
            '<p class="banner">Dry run: the reports are complete, '
            "but no customer or contact was changed.</p>"
            if dry_run
            else ""
        )
        + f'<dl class="meta">{meta_html}</dl></header>'
    )

    figures = (
        '<section id="figures"><h2>Figures</h2><div class="grid">'
        + _figure_table("Rows", "rows", ("read", "valid", "rejected"), rows)
        + _figure_table(
            "Customers",
            "customers",
            ("inserted", "updated", "unchanged", "deactivated", "reactivated", "rejected"),
            customers,
        )
        + _figure_table("Contacts", "contacts", ("inserted", "updated", "unchanged"), contacts)
        + "</div></section>"
    )

    by_code = _issues_by_code(issues, summary)
    by_column = _issues_by_column(issues)
    shown_columns = by_column[:_CHART_MAX_BARS]
    more_columns = (
        f'<p class="muted">and {len(by_column) - len(shown_columns)} more columns '
        "(see errors.csv).</p>"
        if len(by_column) > len(shown_columns)
        else ""
    )
    charts = (
        '<section id="issues"><h2>Issues</h2>'
        f'<p class="muted"><span id="issues-total">{issues.height}</span> issues; every one is in '
        '<a href="errors.csv">errors.csv</a>. '
        "Red: errors (the row is rejected); amber: warnings.</p>"
        "<h3>By code</h3>"
        + _bar_chart("chart-issues-by-code", "Issues by code", by_code, "data-code")
        + "<h3>By column</h3>"
        + _bar_chart("chart-issues-by-column", "Issues by column", shown_columns, "data-column")
        + more_columns
        + "</section>"
    )

    codes = [code for code, _, _ in by_code]
    file_error_codes = [
        str(err.get("code"))
        for err in summary.get("file_errors") or []
        if isinstance(err, Mapping) and err.get("code")
    ]
    hint_codes = list(dict.fromkeys([*file_error_codes, *codes]))

    footer = (
        '<footer>Files of this run: <a href="summary.json">summary.json</a> · '
        '<a href="errors.csv">errors.csv</a> · <a href="rejected_rows.csv">rejected_rows.csv</a>'
        ' · <a href="../index.html">all runs</a></footer>'
    )
    parts = [
        header_html,
        figures,
        _render_file_errors(summary),
        charts,
        _render_top_values(codes, _top_values(issues)),
        _render_hints(hint_codes),
        _render_rejected_rows(header, rejected_rows),
        footer,
    ]
    body = "\n".join(part for part in parts if part)
    return _page(f"erp-sync: {org}: {file_name} ({summary.get('status') or 'unknown'})", body)


# --------------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------------


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _newest_first(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Runs sorted by started_at, newest first; ties broken by run id so the order is stable."""
    ordered = sorted(runs, key=lambda run: str(run.get("run_id") or ""))
    return sorted(
        ordered, key=lambda run: _parse_time(run.get("started_at")) or _EPOCH, reverse=True
    )


def _run_chart(org: str, runs_newest_first: Sequence[Mapping[str, Any]]) -> str:
    """Stacked bars of valid and rejected rows for an organisation's last runs, oldest left."""
    runs = list(reversed(runs_newest_first[:_INDEX_CHART_RUNS]))
    slot, bar, left, top_pad, plot_h, label_h = 28, 18, 48, 10, 140, 34
    width = left + slot * _INDEX_CHART_RUNS + 8  # fixed, so bars keep their size and place
    height = top_pad + plot_h + label_h
    totals = [
        _int(_section(run, "rows").get("valid")) + _int(_section(run, "rows").get("rejected"))
        for run in runs
    ]
    peak = max([*totals, 1])
    base = top_pad + plot_h
    parts = [
        f'<svg class="chart run-chart" id="chart-{_e(quote(org, safe=""))}" '
        f'data-org="{_e(org)}" role="img" '
        f'aria-label="Rows valid and rejected per run for {_e(org)}" '
        f'viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Rows valid and rejected per run: {_e(org)}</title>",
        f'<line x1="{left}" y1="{base}" x2="{width - 4}" y2="{base}" stroke="#cbd2d9"/>',
        f'<text class="axis" x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{peak}</text>',
        f'<text class="axis" x="{left - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for i, run in enumerate(runs):
        rows = _section(run, "rows")
        valid, rejected = _int(rows.get("valid")), _int(rows.get("rejected"))
        x = left + i * slot + (slot - bar) / 2
        valid_h = plot_h * valid / peak
        rejected_h = plot_h * rejected / peak
        started = _parse_time(run.get("started_at"))
        label = started.strftime("%m-%d") if started else ""
        dry = ", dry run: nothing applied" if run.get("dry_run") else ""
        run_id = _e(run.get("run_id"))
        parts.append(
            f'<g class="run-bar" data-run-id="{run_id}">'
            f"<title>{_e(_format_time(run.get('started_at')))} "
            f"{_e(_source_name(run.get('source')))}: "
            f"{valid} valid, {rejected} rejected ({_e(run.get('status'))}{dry})</title>"
            f'<rect class="bar valid" data-run-id="{run_id}" data-count="{valid}" x="{x:.1f}" '
            f'y="{base - valid_h:.1f}" width="{bar}" height="{valid_h:.1f}"/>'
            f'<rect class="bar rejected" data-run-id="{run_id}" data-count="{rejected}" '
            f'x="{x:.1f}" '
            f'y="{base - valid_h - rejected_h:.1f}" width="{bar}" height="{rejected_h:.1f}"/>'
            f'<text class="axis" x="{x + bar / 2:.1f}" y="{base + 6}" font-size="9" '
            f'text-anchor="end" transform="rotate(-60 {x + bar / 2:.1f} {base + 6})">'
            f"{_e(label)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _run_row(run: Mapping[str, Any]) -> str:
    """One table row of the index for a run."""
    rows, customers = _section(run, "rows"), _section(run, "customers")
    run_id = str(run.get("run_id") or "")
    href = f"{quote(run_id, safe='')}/report.html"
    dry = ' <span class="badge dry-run">dry run</span>' if run.get("dry_run") else ""

    def num(block: str, name: str, values: Mapping[str, Any]) -> str:
        return f'<td class="num" data-figure="{block}.{name}">{_int(values.get(name))}</td>'

    return (
        f'<tr class="run" data-run-id="{_e(run_id)}" data-started-at="{_e(run.get("started_at"))}">'
        f'<td class="started">{_e(_format_time(run.get("started_at")))}</td>'
        f"<td>{_status_badge(run.get('status'))}{dry}</td>"
        f'<td class="file cell" title="{_e(run.get("source"))}">'
        f"{_e(_source_name(run.get('source')))}</td>"
        f'<td class="mode">{_e(run.get("mode"))}</td>'
        + num("rows", "read", rows)
        + num("rows", "valid", rows)
        + num("rows", "rejected", rows)
        + num("customers", "inserted", customers)
        + num("customers", "updated", customers)
        + f'<td><a class="report-link" href="{_e(href)}">report</a></td></tr>'
    )


def render_index(runs: Sequence[Mapping[str, Any]]) -> str:
    """index.html as text: every run, newest first, grouped per organisation with a chart each."""
    by_org: dict[str, list[Mapping[str, Any]]] = {}
    for run in _newest_first(runs):
        by_org.setdefault(str(run.get("org") or ""), []).append(run)
    orgs = sorted(by_org)
    nav = "".join(
        f'<li><a href="#org-{_e(quote(org, safe=""))}">{_e(org or "(no organisation)")}</a> '
        f'<span class="muted">({_plural(len(by_org[org]), "run")})</span></li>'
        for org in orgs
    )
    sections = []
    for org in orgs:
        org_runs = by_org[org]
        latest = org_runs[0]
        charted = min(len(org_runs), _INDEX_CHART_RUNS)
        table = (
            '<div class="scroll"><table class="data runs"><thead><tr>'
            "<th>started</th><th>status</th>"
            '<th>file</th><th>mode</th><th class="num">rows read</th><th class="num">valid</th>'
            '<th class="num">rejected</th><th class="num">customers inserted</th>'
            '<th class="num">updated</th><th>report</th></tr></thead><tbody>'
            + "".join(_run_row(run) for run in org_runs)
            + "</tbody></table></div>"
        )
        sections.append(
            f'<section class="org" id="org-{_e(quote(org, safe=""))}" data-org="{_e(org)}">'
            f"<h2>{_e(org or '(no organisation)')}</h2>"
            f'<p class="muted">{_plural(len(org_runs), "run")}; latest '
            f"{_e(_format_time(latest.get('started_at')))} "
            f"{_status_badge(latest.get('status'))}</p>"
            f"<h3>Rows valid (green) and rejected (red), last {_plural(charted, 'run')}</h3>"
            + _run_chart(org, org_runs)
            + table
            + "</section>"
        )
    body = (
        '<header class="run"><h1>erp-sync: import runs</h1>'
        f'<p class="muted"><span id="runs-total">{len(runs)}</span> runs for '
        f'<span id="orgs-total">{len(orgs)}</span> organisations, newest first.</p>'
        + (f'<ul class="orgs">{nav}</ul>' if nav else '<p class="empty">No runs yet.</p>')
        + "</header>\n"
        + "\n".join(sections)
    )
    return _page("erp-sync: import runs", body)


def write_index(report_dir: Path, runs: Sequence[dict[str, Any]]) -> Path:
    """Write report_dir/index.html listing the given run summaries and return its path."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "index.html"
    page = render_index(runs)
    _write_atomically(path, lambda handle: handle.write(page.encode("utf-8")))
    return path
