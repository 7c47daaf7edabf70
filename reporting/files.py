"""The data files of a run: summary.json, errors.csv and rejected_rows.csv, each written atomically.

Every CSV cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
``@``, tab or carriage return) is prefixed with ``'`` (CONTRACT.md section 3).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Final

import polars as pl

from contract import Summary
from contract.frames import ISSUE_SCHEMA

FORMULA_PREFIXES: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^[=+\-@\t\r]"


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


def conform_issues(issues: pl.DataFrame) -> pl.DataFrame:
    """The issues with exactly the contract's columns, in its order and with its types."""
    if issues.width == 0:
        return pl.DataFrame(schema=ISSUE_SCHEMA)
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in ISSUE_SCHEMA.items()
        if name not in issues.columns
    ]
    if missing:
        issues = issues.with_columns(missing)
    return issues.select(pl.col(name).cast(dtype) for name, dtype in ISSUE_SCHEMA.items())


def in_source_order(rejected_rows: pl.DataFrame) -> pl.DataFrame:
    """Rejected rows sorted by their line in the source (as given when they carry no line)."""
    if "_line" in rejected_rows.columns:
        return rejected_rows.sort("_line", maintain_order=True)
    return rejected_rows


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
    rows = in_source_order(rejected_rows)
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


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a report.

    The temporary name is the writer's own (process and thread): two writers of the same run's
    files (an import and a command catching up its missing reports) never share one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write text as UTF-8, atomically."""
    data = text.encode("utf-8")
    write_atomically(path, lambda handle: handle.write(data))


def write_summary_json(path: Path, summary: Summary) -> None:
    """Write the run summary as indented UTF-8 JSON, keys in the contract's order."""
    write_text(path, json.dumps(summary.to_json_dict(), indent=2, ensure_ascii=False) + "\n")


def write_errors_csv(path: Path, issues: pl.DataFrame) -> None:
    """Write errors.csv: the contract's header, then one neutralised row per issue in order."""
    frame = neutralise_formulas(conform_issues(issues))
    write_atomically(path, lambda handle: frame.write_csv(handle, include_header=True))


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

    write_atomically(path, write)
