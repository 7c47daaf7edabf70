"""CONTRACT.md section 3 under concurrency: real `erp-sync` processes on one real PostgreSQL.

Timing is not left to chance. The test holds a SHARE lock on a table the load writes (it blocks
INSERT and UPDATE, not reads), so every import stops at a known point of its load transaction;
the test looks at what the imports wait for in pg_locks, then releases the table. Every wait is
bounded, and every process is killed if it outlives its test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, Result, finish, run_cli_subprocess, start_cli_subprocess

T = TypeVar("T")

HEADER = "erp_customer_number,name,default_currency,default_language,contact_email,contact_name"
BIG_ROWS = 200_000
WAIT = 120.0  # seconds: the bound of every wait in this module

pytestmark = pytest.mark.slow


# --- helpers ----------------------------------------------------------------------------------


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def csv_file(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A small export: (number, name) per customer, one contact each."""
    lines = [HEADER] + [
        f"{n},{name},EUR,en,{n.lower()}@example.com,Contact {n}" for n, name in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def big_csv_file(path: Path, rows: int, name: str) -> Path:
    """An export of `rows` customers (numbers 000000..), one contact each, written by polars."""
    number = pl.col("erp_customer_number")
    (
        pl.DataFrame({"i": pl.int_range(0, rows, eager=True)})
        .select(
            erp_customer_number=pl.col("i").cast(pl.String).str.zfill(6),
            i=pl.col("i") % 3,
        )
        .select(
            number,
            name=pl.concat_str(pl.lit(f"{name} "), number),
            default_currency=pl.col("i").replace_strict([0, 1, 2], ["EUR", "chf", "USD"]),
            default_language=pl.col("i").replace_strict([0, 1, 2], ["de_DE", "en", "fr-CH"]),
            contact_email=pl.concat_str(pl.lit("c"), number, pl.lit("@example.com")),
            contact_name=pl.concat_str(pl.lit("Contact "), number),
        )
        .write_csv(path)
    )
    return path


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    processes: list[subprocess.Popen[str]],
    timeout: float = WAIT,
) -> T:
    """Poll `probe` until it returns a value; fail if a process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        for process in processes:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"erp-sync exited ({process.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g}s waiting until {what}")


def waiting_imports(admin: psycopg.Connection[Any], database: str) -> list[tuple[int, str]]:
    """(pid, what it waits for) of the erp-sync backends of `database` blocked on a lock.

    What it waits for is the table's name for a table lock, else the lock type (advisory, ...).
    """
    rows = admin.execute(
        """
        SELECT a.pid, COALESCE(l.relation::regclass::text, l.locktype)
        FROM pg_stat_activity a
        JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
        WHERE a.datname = %s AND a.application_name = 'erp-sync'
        ORDER BY a.pid
        """,
        (database,),
    ).fetchall()
    return [(int(pid), str(target)) for pid, target in rows]


def two_blocked(admin: psycopg.Connection[Any], database: str) -> list[tuple[int, str]] | None:
    """What two (or more) blocked erp-sync backends wait for, or None while fewer are blocked."""
    waiting = waiting_imports(admin, database)
    return waiting if len({pid for pid, _ in waiting}) >= 2 else None


def import_backends(admin: psycopg.Connection[Any], database: str) -> list[tuple[Any, ...]]:
    """(pid, state, wait event, query) of the erp-sync backends connected to `database`."""
    return admin.execute(
        "SELECT pid, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = 'erp-sync'",
        (database,),
    ).fetchall()


@contextmanager
def table_held(db_url: str, table: str) -> Iterator[Callable[[], None]]:
    """Hold a SHARE lock on `table` (writers wait, readers pass); yields a release function."""
    assert table in ("customer", "customer_contact")  # identifiers from a fixed list
    conn = psycopg.connect(libpq(db_url))
    conn.execute(f"LOCK TABLE {table} IN SHARE MODE")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            conn.rollback()
            released = True

    try:
        yield release
    finally:
        release()
        conn.close()


@contextmanager
def reaped(*processes: subprocess.Popen[str]) -> Iterator[None]:
    """Kill (whole process group) any erp-sync process still running when the block ends."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate(timeout=30)


def checksum(engine: Engine, slug: str) -> tuple[int, int, str]:
    """(customers, contacts, md5 of every column of both) for one organisation."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                """
                SELECT (SELECT count(*) FROM customer c WHERE c.org_id = o.id),
                       (SELECT count(*) FROM customer_contact cc WHERE cc.org_id = o.id),
                       md5(COALESCE((SELECT string_agg(c::text, '|' ORDER BY c.id)
                                     FROM customer c WHERE c.org_id = o.id), '')
                           || '#' ||
                           COALESCE((SELECT string_agg(cc::text, '|' ORDER BY cc.id)
                                     FROM customer_contact cc WHERE cc.org_id = o.id), ''))
                FROM org o WHERE o.slug = :slug
                """
            ),
            {"slug": slug},
        ).one()
    return int(row[0]), int(row[1]), str(row[2])


def names_of(engine: Engine, slug: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.erp_customer_number, c.name FROM customer c JOIN org o "
                "ON o.id = c.org_id WHERE o.slug = :slug"
            ),
            {"slug": slug},
        )
        return {r[0]: r[1] for r in rows}


def runs_of(engine: Engine, slug: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.id::text AS run_id, r.status, r.source FROM import_run r "
                "JOIN org o ON o.id = r.org_id WHERE o.slug = :slug ORDER BY r.started_at"
            ),
            {"slug": slug},
        ).mappings()
        return [dict(r) for r in rows]


def summary_of(result: Result) -> dict[str, Any]:
    import json

    assert result.stdout.strip(), result
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """Subprocesses on the module's database and the session's Prefect API, in tmp_path."""
    return CliEnv(
        db_url=db_url,
        prefect_api=prefect_api,
        cwd=tmp_path,
        extra={"PREFECT_HOME": str(tmp_path / "prefect-home")},
    )


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for watching pg_stat_activity and pg_locks."""
    with psycopg.connect(libpq(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def database(db_url: str) -> str:
    name = make_url(db_url).database
    assert name
    return name


def register(engine: Engine, *slugs: str) -> None:
    with engine.begin() as conn:
        for slug in slugs:
            add_org(conn, slug)


def import_args(path: Path, slug: str, env: CliEnv) -> list[str]:
    return ["import", str(path), "--org", slug, "--json", "--report-dir", str(env.cwd / "reports")]


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
    first = run_cli_subprocess(
        import_args(csv_file(tmp_path / "before.csv", before_rows), slug, env), env, WAIT
    )
    assert first.exit_code == 0, first
    before = checksum(engine, slug)
    assert before[:2] == (1010, 1010)

    big = big_csv_file(tmp_path / "big.csv", BIG_ROWS, "New")
    # The contacts table held: the import writes its customers, then blocks on its contacts.
    with table_held(db_url, "customer_contact") as release:
        victim = start_cli_subprocess(import_args(big, slug, env), env)
        with reaped(victim):
            [(pid, _)] = wait_until(
                "the import has written its customers and waits to write its contacts",
                lambda: [w for w in waiting_imports(admin, database) if w[1] == "customer_contact"],
                [victim],
                timeout=WAIT * 2,
            )
            written = admin.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND granted "
                "AND relation = 'customer'::regclass AND mode = 'RowExclusiveLock'",
                (pid,),
            ).fetchone()
            assert written == (1,), "the import has not written to customer yet"
            os.killpg(victim.pid, signal.SIGKILL)
            victim.communicate(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        release()
    # The orphaned backend rolls back once it finds its client gone.
    engine.dispose()  # the test's own pooled connections are also named erp-sync
    deadline = time.monotonic() + WAIT
    while (left := import_backends(admin, database)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"the killed import's backends are still there: {left}"

    assert checksum(engine, slug) == before
    assert [r["source"] for r in runs_of(engine, slug)] == [str(tmp_path / "before.csv")]

    rerun = run_cli_subprocess(import_args(big, slug, env), env, WAIT * 2)
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
