"""Resolve a CSV header to canonical column names (case- and space-insensitive)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from contract import (
    ALL_COLUMNS,
    REQUIRED_COLUMNS,
    FileError,
    FileErrorCode,
    IssueCode,
    Severity,
)
from contract.frames import ISSUE_SCHEMA


@dataclass(frozen=True)
class HeaderMap:
    """Where each canonical column sits in the source header."""

    columns: dict[str, int]
    """canonical column name -> index into the header (the rows' `c{index}` column)"""
    unknown: list[tuple[int, str]]
    """(index, name as written) of columns that are ignored"""
    file_errors: list[FileError]
    """missing required columns and duplicated columns; any of them rejects the file"""
    issues: pl.DataFrame
    """one `unknown_column` warning per ignored column (line 1), in ISSUE_SCHEMA"""
    source_width: int | None = None
    """the source header's field count when a profile maps it (columns then point past it)"""
    labels: dict[str, str] = field(default_factory=dict)
    """canonical column -> the source header(s) that feed it, named in issues instead"""

    @property
    def width(self) -> int:
        """Return the number of fields in the header (exact when there is no file error)."""
        if self.source_width is not None:
            return self.source_width
        return len(self.columns) + len(self.unknown)


_CANONICAL = frozenset(ALL_COLUMNS)


def canonical_name(written: str) -> str:
    """Return a header field as it is matched: trimmed, BOM dropped, lower case."""
    return written.strip().lstrip("\ufeff").strip().lower()


def resolve_header(header: Sequence[str]) -> HeaderMap:
    """Map header fields to canonical columns; report unknown, missing and duplicated ones."""
    columns: dict[str, int] = {}
    positions: dict[str, list[int]] = {}
    unknown: list[tuple[int, str]] = []
    for index, written in enumerate(header):
        name = canonical_name(written)
        if name in _CANONICAL:
            positions.setdefault(name, []).append(index)
            columns.setdefault(name, index)
        else:
            unknown.append((index, written))

    errors = [
        FileError(
            code=FileErrorCode.MISSING_COLUMN,
            message=f"required column '{name}' is missing from the header",
        )
        for name in REQUIRED_COLUMNS
        if name not in columns
    ]
    errors += [
        FileError(
            code=FileErrorCode.DUPLICATE_COLUMN,
            message=f"column '{name}' appears {len(where)} times in the header "
            f"(fields {', '.join(str(i + 1) for i in where)})",
        )
        for name, where in positions.items()
        if len(where) > 1
    ]

    issues = pl.DataFrame(
        {
            "line": [1] * len(unknown),
            "erp_customer_number": [None] * len(unknown),
            "column": [written for _, written in unknown],
            "value": [written for _, written in unknown],
            "code": [str(IssueCode.UNKNOWN_COLUMN)] * len(unknown),
            "severity": [str(Severity.WARNING)] * len(unknown),
            "message": [
                f"column '{written}' (field {index + 1}) is not a known column and is ignored"
                for index, written in unknown
            ],
        },
        schema=ISSUE_SCHEMA,
    )
    return HeaderMap(columns=columns, unknown=unknown, file_errors=errors, issues=issues)
