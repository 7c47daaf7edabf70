"""Issue severities as a polars expression (the codes themselves are in `contract.issues`)."""

from __future__ import annotations

import polars as pl

from contract import SEVERITY


def severity_of(code: pl.Expr) -> pl.Expr:
    """Map an expression of issue codes to their severities."""
    return code.replace_strict(
        [str(c) for c in SEVERITY], [str(s) for s in SEVERITY.values()], return_dtype=pl.String
    )
