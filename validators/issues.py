"""Issue codes, their severities, and the shape of the issues frame."""

from __future__ import annotations

from typing import Final

import polars as pl

ISSUE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "line": pl.Int64(),
    "erp_customer_number": pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "code": pl.String(),
    "severity": pl.String(),
    "message": pl.String(),
}

ERROR: Final = "error"
WARNING: Final = "warning"

# stable codes (CONTRACT.md section 5); the order breaks ties when issues are sorted
SEVERITY: Final[dict[str, str]] = {
    "field_count": ERROR,
    "required": ERROR,
    "length": ERROR,
    "currency": ERROR,
    "language": ERROR,
    "email": ERROR,
    "boolean": ERROR,
    "rejected_with_customer": ERROR,
    "conflicting_values": WARNING,
    "duplicate_contact": WARNING,
    "multiple_primary": WARNING,
    "unknown_column": WARNING,
}

ERROR_CODES: Final[frozenset[str]] = frozenset(c for c, s in SEVERITY.items() if s == ERROR)
WARNING_CODES: Final[frozenset[str]] = frozenset(c for c, s in SEVERITY.items() if s == WARNING)


def empty_issues() -> pl.DataFrame:
    """Return an issues frame with no rows."""
    return pl.DataFrame(schema=ISSUE_SCHEMA)


def severity_of(code: pl.Expr) -> pl.Expr:
    """Map an expression of issue codes to their severities."""
    return code.replace_strict(list(SEVERITY), list(SEVERITY.values()), return_dtype=pl.String)
