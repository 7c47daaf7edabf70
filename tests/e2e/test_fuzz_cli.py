"""Seeded fuzzing through `erp-sync import`: mutated exports in, the contract's promises out.

The mutated files (tests/fuzzing.py) are imported one by one, with `--force`, into one
organisation that first received the unmutated seed exports. Whatever the bytes: no traceback,
an exit code that matches the status of the summary, rows that add up, a refused file that
changes no row, and report cells that a spreadsheet would run are prefixed with `'`.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from contract import ExitCode
from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, Result, run_cli
from tests.e2e.helpers import checksum
from tests.fuzzing import MUTATIONS, Case, mutated_case, seed_exports

pytestmark = pytest.mark.slow

# The first 16 cases of FIRST_SEED apply every kind of mutation to every seed export (the test
# checks that it stays so); tests/unit/test_fuzz_reading.py runs hundreds more without the CLI.
CASES = 16
FIRST_SEED = 7_000
TIME_BUDGET = 120.0  # seconds for the seeds and all the cases
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """The module's database, the session's Prefect API, and the test's folder as cwd."""
    return CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=tmp_path)


def import_bytes(env: CliEnv, name: str, data: bytes, slug: str) -> Result:
    path = env.cwd / "inbox" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    args = ["import", str(path), "--org", slug, "--json", "--force"]
    return run_cli([*args, "--report-dir", str(env.cwd / "reports")], env)


def cells_of(path: Path, delimiter: str) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def unneutralised_cells(run_dir: Path, delimiter: str) -> list[str]:
    """Cells of errors.csv and rejected_rows.csv that start with = + - @ tab or CR."""
    found = []
    for name, sep in (("errors.csv", ","), ("rejected_rows.csv", delimiter)):
        path = run_dir / name
        assert path.is_file(), f"{name} is missing from {run_dir}"
        for number, row in enumerate(cells_of(path, sep), 1):
            found += [f"{name}:{number}: {c!r}" for c in row if c.startswith(FORMULA_STARTS)]
    return found


def check_import(case: Case, result: Result, before: Any, after: Any, env: CliEnv) -> str:
    """The contract's promises for one import of a mutated file; returns its status."""
    assert "Traceback" not in result.output, result.output[-2000:]
    assert result.stdout.strip(), f"no summary on stdout (exit {result.exit_code}): {result.stderr}"
    summary: dict[str, Any] = json.loads(result.stdout)
    status = summary["status"]
    assert result.exit_code == ExitCode.for_status(status), (result.exit_code, status)
    assert status != "skipped", "--force was given"
    rows = summary["rows"]
    assert rows["read"] == rows["valid"] + rows["rejected"], rows
    if status in ("rejected", "failed"):
        assert after == before, f"a {status} file changed the organisation's rows"
        assert summary["file_errors"], f"a {status} run names no file error"
    run_dir = env.cwd / "reports" / summary["run_id"]
    bad = unneutralised_cells(run_dir, summary["delimiter"] or ",")
    assert not bad, "cells a spreadsheet would run: " + "; ".join(bad[:5])
    return str(status)


def test_mutated_exports_through_the_cli_keep_the_contract(env: CliEnv, engine: Engine) -> None:
    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        add_org(conn, slug)
    started = time.monotonic()
    seeds = seed_exports()
    for name, data in seeds:
        result = import_bytes(env, f"seed-{name}", data, slug)
        assert result.exit_code in (0, 1), (name, result)

    failures: list[str] = []
    statuses: dict[str, int] = {}
    kinds: set[str] = set()
    origins: set[str] = set()
    for seed in range(FIRST_SEED, FIRST_SEED + CASES):
        case = mutated_case(seed, seeds)
        kinds.update(case.kinds)
        origins.add(case.origin)
        before = checksum(engine, slug)
        result = import_bytes(env, f"case-{seed}.csv", case.data, slug)
        after = checksum(engine, slug)
        try:
            status = check_import(case, result, before, after, env)
        except (AssertionError, ValueError, KeyError) as exc:
            failures.append(f"{case}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        else:
            statuses[status] = statuses.get(status, 0) + 1
    elapsed = time.monotonic() - started

    assert not failures, f"{len(failures)} of {CASES} imports broke the contract:\n" + "\n".join(
        failures
    )
    assert statuses.get("rejected", 0) and statuses.get("partial", 0), statuses
    assert kinds == set(MUTATIONS), f"mutations no case applied: {set(MUTATIONS) - kinds}"
    assert origins == {name for name, _ in seeds}, f"seed exports no case mutated: {origins}"
    assert elapsed < TIME_BUDGET, f"{len(seeds) + CASES} imports took {elapsed:.0f}s"
