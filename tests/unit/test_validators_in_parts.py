"""Validation in parts partitioned by customer gives exactly what validating the whole file gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from benchmarks.generate import generate
from flows.reading import read_export
from validators import resolve_header, validate_rows
from validators.validate import Validated, customer_parts, validate_in_parts

# Rows of one customer far apart, key spellings that normalise alike, two primaries, a customer
# rejected by one of its rows, a short row.
EXTRA = [
    {
        "erp_customer_number": "K-1",
        "name": "First",
        "contact_email": "a@k.de",
        "contact_is_primary": "yes",
    },
    {
        "erp_customer_number": "\u200bK-1 ",
        "name": "First",
        "contact_email": "b@k.de",
        "contact_is_primary": "yes",
    },
    {"erp_customer_number": "K-2", "name": "Second"},
    {
        "erp_customer_number": "K-3",
        "name": "Third",
        "default_currency": "EURO",
        "contact_email": "c@k.de",
    },
    {"erp_customer_number": " K-3", "name": "Third", "contact_email": "d@k.de"},
    {"erp_customer_number": "K-1", "name": "First again", "contact_email": "A@K.DE"},
]
SHORT_ROW = "K-2,Second,,EUR,de"


def _export(tmp_path: Path) -> Path:
    frame = generate(500, seed=5).sample(fraction=1.0, shuffle=True, seed=9)
    extra = pl.DataFrame(
        [{"default_currency": "EUR", "default_language": "de", **row} for row in EXTRA]
    )
    extra = extra.select(
        pl.col(c) if c in extra.columns else pl.lit(None, pl.String).alias(c) for c in frame.columns
    )
    # the extra rows go to the start, the middle and the end of the file
    middle = frame.height // 2
    parts = [extra[0:2], frame[:middle], extra[2:4], frame[middle:], extra[4:]]
    path = tmp_path / "export.csv"
    rows = pl.concat(parts).with_columns(legacy_id=pl.lit("x"))  # an unknown column
    rows.select(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in rows.columns).write_csv(
        path
    )
    with path.open("a", encoding="utf-8") as out:
        out.write(SHORT_ROW + "\n")
    return path


def _same(whole: Validated, parts: Validated) -> None:
    for name in ("customers", "contacts", "issues", "rejected_rows"):
        assert_frame_equal(getattr(whole, name), getattr(parts, name), check_dtypes=True)
    assert sorted(whole.keys_seen.to_list()) == sorted(parts.keys_seen.to_list())
    for name in ("present", "rows_read", "rows_valid", "rows_rejected", "customers_rejected"):
        assert getattr(whole, name) == getattr(parts, name), name


@pytest.mark.parametrize("parts", [2, 5])
def test_a_validation_in_parts_gives_exactly_the_whole_files_result(
    tmp_path: Path, parts: int
) -> None:
    raw = read_export(_export(tmp_path))
    header = resolve_header(raw.header)
    whole = validate_rows(raw.rows, header)
    assert whole.rows_rejected and whole.issues.filter(pl.col("line") == 1).height  # a real test
    _same(whole, validate_in_parts(raw.rows, header, parts))


def test_every_row_of_a_customer_is_in_the_same_part_whatever_its_key_spelling(
    tmp_path: Path,
) -> None:
    raw = read_export(_export(tmp_path))
    header = resolve_header(raw.header)
    part = customer_parts(raw.rows, header, 7)
    key = raw.rows.get_column(f"c{header.columns['erp_customer_number']}")
    k1 = key.str.contains("K-1")
    assert k1.sum() == 3
    assert part.filter(k1).n_unique() == 1
