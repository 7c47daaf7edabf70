"""CONTRACT.md section 3 under concurrency: real `erp-sync` processes on one real PostgreSQL.

Timing is not left to chance. The test holds a SHARE lock on a table the load writes (it blocks
INSERT and UPDATE, not reads), so every import stops at a known point of its load transaction;
the test looks at what the imports wait for in pg_locks, then releases the table. Every wait is
bounded, and every process is killed if it outlives its test.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import Engine

from tests.e2e.cli import CliEnv, finish, run_cli, start_cli_subprocess
from tests.e2e.helpers import (
    WAIT,
    backend_pids,
    big_csv_file,
    checksum,
    csv_file,
    import_args,
    kill_group,
    names_of,
    process_env,
    reaped,
    register,
    runs_of,
    summary_of,
    table_held,
    two_blocked,
    wait_until,
    wait_until_gone,
    waiting_on,
)

# The kill's moment is pinned by a table lock, not by the file's size: 20,000 rows make a load of
# many statements (1,000 updates, the rest COPYed in) without minutes of parsing in the test.
BIG_ROWS = 20_000

pytestmark = pytest.mark.slow


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """Subprocesses on the module's database and the session's Prefect API, in tmp_path."""
    return process_env(db_url, prefect_api, tmp_path)


# --- tests ------------------------------------------------------------------------------------


def test_two_imports_for_one_organisation_started_together_land_whole_one_after_the_other(
    env: CliEnv, engine: Engine, admin: psycopg.Connection[Any], database: str, db_url: str
) -> None:
    slug = "conc-same-org"
    register(engine, slug)
    shared = [f"S{i:03d}" for i in range(100)]
    file_a = csv_file(
        env.cwd / "a.csv",
        [(n, "from a") for n in shared] + [(f"A{i:03d}", "only a") for i in range(100)],
    )
    file_b = csv_file(
        env.cwd / "b.csv",
        [(n, "from b") for n in shared] + [(f"B{i:03d}", "only b") for i in range(100)],
    )

    with table_held(db_url, "customer") as release:
        a = start_cli_subprocess(import_args(file_a, slug, env), env)
        b = start_cli_subprocess(import_args(file_b, slug, env), env)
        with reaped(a, b):
            waiting = wait_until(
                "both imports of the organisation are blocked in their load",
                lambda: two_blocked(admin, database),
                [a, b],
            )
            # One import is at its first write; the other waits for it before touching anything.
            on_customer = [pid for pid, target in waiting if target == "customer"]
            assert len(on_customer) == 1, f"both imports reached the customer table: {waiting}"
            release()
            results = [finish(a, WAIT), finish(b, WAIT)]

    assert [r.exit_code for r in results] == [0, 0], results
    summaries = [summary_of(r) for r in results]
    counts = sorted((s["customers"]["inserted"], s["customers"]["updated"]) for s in summaries)
    assert counts == [(100, 100), (200, 0)], summaries  # the second saw all of the first
    second = next(s for s in summaries if s["customers"]["updated"] == 100)
    winner = "from a" if second["source"].endswith("a.csv") else "from b"
    names = names_of(engine, slug)
    assert len(names) == 300
    assert {names[n] for n in shared} == {winner}  # one whole file, then the other
    assert {r["status"] for r in runs_of(engine, slug)} == {"succeeded"}
    assert len(runs_of(engine, slug)) == 2


def test_imports_for_two_organisations_run_at_the_same_time(
    env: CliEnv, engine: Engine, admin: psycopg.Connection[Any], database: str, db_url: str
) -> None:
    register(engine, "conc-org-x", "conc-org-y")
    rows = [(f"{i:04d}", f"Customer {i}") for i in range(200)]  # the same numbers in both
    file_x = csv_file(env.cwd / "x.csv", rows)
    file_y = csv_file(env.cwd / "y.csv", rows[:150])

    with table_held(db_url, "customer") as release:
        x = start_cli_subprocess(import_args(file_x, "conc-org-x", env), env)
        y = start_cli_subprocess(import_args(file_y, "conc-org-y", env), env)
        with reaped(x, y):
            waiting = wait_until(
                "both organisations' imports are blocked in their load",
                lambda: two_blocked(admin, database),
                [x, y],
            )
            # Both reached their first write at once: neither waits for the other.
            assert sorted(target for _, target in waiting) == ["customer", "customer"], waiting
            release()
            results = [finish(x, WAIT), finish(y, WAIT)]

    assert [r.exit_code for r in results] == [0, 0], results
    assert len(names_of(engine, "conc-org-x")) == 200
    assert len(names_of(engine, "conc-org-y")) == 150


def test_an_import_killed_in_the_middle_of_its_load_leaves_the_organisation_as_it_was(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    slug = "conc-killed"
    register(engine, slug)
    # Before: 1000 customers the big file renames, and 10 it does not mention.
    before_rows = [(f"{i:06d}", f"Old {i}") for i in range(1000)] + [
        (f"X{i}", "untouched") for i in range(10)
    ]
    # The import before and the rerun after test no process boundary: they run in-process.
    first = run_cli(import_args(csv_file(tmp_path / "before.csv", before_rows), slug, env), env)
    assert first.exit_code == 0, first
    before = checksum(engine, slug)
    assert before[:2] == (1010, 1010)

    big = big_csv_file(tmp_path / "big.csv", BIG_ROWS, "New")
    known = backend_pids(admin, database)  # this process's pooled ones, from the import before
    # The contacts table held: the import writes its customers, then blocks on its contacts.
    with table_held(db_url, "customer_contact") as release:
        victim = start_cli_subprocess(import_args(big, slug, env), env)
        with reaped(victim):
            [(pid, _)] = wait_until(
                "the import has written its customers and waits to write its contacts",
                lambda: waiting_on(admin, database, "customer_contact"),
                [victim],
                timeout=WAIT * 2,
            )
            written = admin.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND granted "
                "AND relation = 'customer'::regclass AND mode = 'RowExclusiveLock'",
                (pid,),
            ).fetchone()
            assert written == (1,), "the import has not written to customer yet"
            kill_group(victim)
        assert victim.returncode == -signal.SIGKILL
        release()
    # The orphaned backend rolls back once it finds its client gone.
    wait_until_gone("the killed import's backends", lambda: backend_pids(admin, database) - known)

    assert checksum(engine, slug) == before
    assert [r["source"] for r in runs_of(engine, slug)] == [str(tmp_path / "before.csv")]

    rerun = run_cli(import_args(big, slug, env), env)
    assert rerun.exit_code in (0, 1), rerun
    summary = summary_of(rerun)
    assert summary["status"] == "succeeded"
    assert summary["rows"] == {"read": BIG_ROWS, "valid": BIG_ROWS, "rejected": 0}
    assert summary["customers"]["inserted"] == BIG_ROWS - 1000
    assert summary["customers"]["updated"] == 1000
    assert summary["contacts"]["inserted"] == BIG_ROWS  # the old contacts had other emails
    after = checksum(engine, slug)
    assert after[:2] == (BIG_ROWS + 10, BIG_ROWS + 1010)
    assert names_of(engine, slug)["000999"] == "New 000999"
