"""The polars shape of the issues frame (apart from `contract` so that importing it stays cheap)."""

from __future__ import annotations

from typing import Final

import polars as pl

from contract.issues import ISSUE_COLUMNS

#: One row per issue: errors and warnings, file-level ones (line 1) included.
ISSUE_SCHEMA: Final[dict[str, pl.DataType]] = {
    name: (pl.Int64() if name == "line" else pl.String()) for name in ISSUE_COLUMNS
}


def empty_issues() -> pl.DataFrame:
    """An issues frame with no rows."""
    return pl.DataFrame(schema=ISSUE_SCHEMA)
