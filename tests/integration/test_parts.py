"""A big file validated and loaded in parts (key ranges, part k loading while k + 1 validates)
gives exactly what a single-part import gives, and a kill in the middle applies nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import validators.validate as validate_module
from benchmarks.generate import generate
from flows import importing
from flows.reading import read_export
from loaders.orgs import Organisation
from tests.e2e.helpers import checksum
from tests.integration.helpers import make_org
from tests.integration.test_load_paths import _stored
from validators import resolve_header

# Rows of one customer far apart, key spellings that normalise alike, two primaries, a customer
# rejected by one of its rows, a row without a key, a short row.
EXTRA = [
    {"erp_customer_number": "K-1", "name": "First", "contact_email": "a@k.de",
     "contact_is_primary": "yes"},
    {"erp_customer_number": "\u200bK-1 ", "name": "First", "contact_email": "b@k.de",
     "contact_is_primary": "yes"},
    {"erp_customer_number": "K-2", "name": "Second"},
    {"erp_customer_number": "", "name": "No key"},
    {"erp_customer_number": "K-3", "name": "Third", "default_currency": "EURO",
     "contact_email": "c@k.de"},
    {"erp_customer_number": " K-3", "name": "Third", "contact_email": "d@k.de"},
    {"erp_customer_number": "K-1", "name": "First again", "contact_email": "A@K.DE"},
]  # fmt: skip
SHORT_ROW = "K-2,Second,,EUR,de"


def _export(tmp_path: Path, customers: int = 400, seed: int = 5) -> Path:
    frame = generate(customers, seed=seed).sample(fraction=1.0, shuffle=True, seed=9)
    extra = pl.DataFrame(
        [{"default_currency": "EUR", "default_language": "de", **row} for row in EXTRA]
    )
    extra = extra.select(
        pl.col(c) if c in extra.columns else pl.lit(None, pl.String).alias(c) for c in frame.columns
    )
    middle = frame.height // 2  # the extra rows go to the start, the middle and the end
    rows = pl.concat([extra[0:2], frame[:middle], extra[2:5], frame[middle:], extra[5:]])
    rows = rows.select(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in rows.columns)
    path = tmp_path / f"export-{seed}.csv"
    rows.write_csv(path)
    with path.open("a", encoding="utf-8") as out:
        out.write(SHORT_ROW + "\n")
    return path


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 250 rows from 300 rows on."""
    monkeypatch.setattr(validate_module, "ROWS_PER_PART", 250)
    monkeypatch.setattr(validate_module, "MIN_ROWS_FOR_PARTS", 300)


def test_parts_are_key_ranges_holding_every_row_of_a_customer(
    tmp_path: Path, small_parts: None
) -> None:
    raw = read_export(_export(tmp_path))
    header = resolve_header(raw.header)
    plan = validate_module.plan_parts(raw.rows, header, 4)
    assert plan.parts == 4
    column = raw.rows.get_column(f"c{header.columns['erp_customer_number']}")
    k1 = column.str.contains("K-1")
    assert k1.sum() == 3 and plan.part.filter(k1).n_unique() == 1
    keys = validate_module.normalise_columns(
        column.cast(pl.String).alias("erp_customer_number").to_frame()
    ).to_series()
    ranges = (
        pl.DataFrame({"key": keys, "part": plan.part})
        .drop_nulls()
        .group_by("part")
        .agg(pl.col("key").min().alias("low"), pl.col("key").max().alias("high"))
        .sort("part")
    )
    assert ranges.height == 4
    # every key of part k + 1 sorts after every key of part k (byte order)
    highs, lows = ranges["high"].to_list(), ranges["low"].to_list()
    assert all(h.encode() < low.encode() for h, low in zip(highs, lows[1:], strict=False))
    assert plan.part.filter(keys.is_null()).to_list() == [0]  # the row without a key


def _run(
    engine: Engine,
    org: Organisation,
    path: Path,
    reports: Path,
    steps: importing.Steps | None = None,
    **options: Any,
) -> dict[str, Any]:
    options = importing.ImportOptions(report_dir=reports, **options)
    summary = importing.run_import(engine, importing.new_run(org, path, options), steps).summary
    return summary.to_json_dict()


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    drop = {"run_id", "org", "started_at", "finished_at", "report_dir", "source"}
    return {k: v for k, v in summary.items() if k not in drop}


def _reports(summary: dict[str, Any]) -> dict[str, Any]:
    folder = Path(summary["report_dir"])
    files = {n: (folder / n).read_bytes() for n in ("errors.csv", "rejected_rows.csv")}
    written = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return {"summary.json": _comparable(written), **files}


def _recorded_issues(engine: Engine, org_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT line, erp_customer_number, column_name, value, code, severity, message "
                "FROM import_issue WHERE org_id = :org ORDER BY id"
            ),
            {"org": org_id},
        ).all()


@pytest.mark.parametrize("mode", ["upsert", "full"])
def test_a_partitioned_import_gives_exactly_what_a_single_part_import_gives(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    first = _export(tmp_path)
    # a re-sync: some customers gone, some changed, some new
    lines = first.read_text(encoding="utf-8").splitlines(keepends=True)
    second = tmp_path / "second.csv"
    added = _export(tmp_path, 60, seed=7).read_text(encoding="utf-8").splitlines(keepends=True)
    second.write_text(
        "".join(lines[:1] + lines[1:700] + added[1:60]).replace("GmbH", "AG"), encoding="utf-8"
    )
    calls: list[int] = []
    pipeline = importing.pipeline_step

    def counted(*args: Any) -> Any:
        calls.append(1)
        return pipeline(*args)

    steps = importing.Steps(pipeline=counted)
    results = {}
    for label, rows_per_part in (("whole", 10**9), ("parts", 250)):
        monkeypatch.setattr(validate_module, "ROWS_PER_PART", rows_per_part)
        monkeypatch.setattr(validate_module, "MIN_ROWS_FOR_PARTS", 300)
        org = make_org(engine, f"in-{label}-{mode}")
        summaries = [
            _run(engine, org, p, tmp_path / label, steps, mode=mode, max_deactivate_rate=0.5)
            for p in (first, second)
        ]
        results[label] = (
            [_comparable(s) for s in summaries],
            [_reports(s) for s in summaries],
            _recorded_issues(engine, org.id),
            _stored(engine, org.id),
        )
    assert len(calls) == 2  # both imports of "parts" went through the parts
    first_summary = results["whole"][0][0]
    assert first_summary["rows"]["rejected"] and first_summary["customers"]["inserted"] > 350
    assert results["whole"][0][1]["customers"]["updated"]  # the re-sync changed some
    if mode == "full":
        assert results["whole"][0][1]["customers"]["deactivated"]
    assert results["parts"] == results["whole"]


def test_an_import_over_its_error_budget_in_parts_is_refused_as_a_whole(
    engine: Engine, tmp_path: Path, small_parts: None
) -> None:
    org = make_org(engine, "budget-parts")
    options = importing.ImportOptions(report_dir=tmp_path, max_error_rate=0.0)
    before = checksum(engine, org.slug)
    summary = importing.run_import(engine, importing.new_run(org, _export(tmp_path), options))
    assert summary.summary.status == "rejected"
    assert [e.code for e in summary.summary.file_errors] == ["error_budget"]
    assert checksum(engine, org.slug) == before == (0, 0, checksum(engine, org.slug)[2])


KILLED = """
import sys, time
import validators.validate as v
from flows import importing
from loaders import upsert
from loaders.orgs import get_org
from loaders.engine import create_db_engine
from pathlib import Path

v.ROWS_PER_PART, v.MIN_ROWS_FOR_PARTS = 250, 300
insert = upsert.insert_new_customers
calls = []

def slow_insert(conn, org_id, customers, contacts):
    calls.append(1)
    counts = insert(conn, org_id, customers, contacts)
    if len(calls) == 2:
        print("loading part 2", flush=True)
        time.sleep(60)
    return counts

upsert.insert_new_customers = slow_insert
engine = create_db_engine(sys.argv[1])
with engine.connect() as conn:
    org = get_org(conn, sys.argv[2])
options = importing.ImportOptions(report_dir=sys.argv[4])
importing.run_import(engine, importing.new_run(org, Path(sys.argv[3]), options))
"""


def test_an_import_killed_while_its_second_part_loads_leaves_the_organisation_as_before(
    engine: Engine, db_url: str, tmp_path: Path, small_parts: None
) -> None:
    org = make_org(engine, "killed-parts")
    _run(engine, org, _export(tmp_path, 100, seed=3), tmp_path)  # a small first import
    before = checksum(engine, org.slug)
    runs_before = _recorded_runs(engine, org.id)
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED, db_url, org.slug, str(_export(tmp_path)), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "loading part 2"
        assert _inserted_uncommitted(engine) > 0  # part 1 is in, uncommitted
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    for _ in range(50):  # the server notices the closed connection and rolls back
        if not _inserted_uncommitted(engine):
            break
        time.sleep(0.1)
    assert checksum(engine, org.slug) == before
    assert _recorded_runs(engine, org.id) == runs_before


def _recorded_runs(engine: Engine, org_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM import_run WHERE org_id = :org"), {"org": org_id}
            ).scalar_one()
        )


def _inserted_uncommitted(engine: Engine) -> int:
    """How many other backends hold an open transaction that wrote into `customer`."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'customer' AND l.mode = 'RowExclusiveLock' "
                    "AND l.pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )
