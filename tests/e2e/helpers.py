"""Helpers of the end-to-end tests that run real erp-sync processes against real PostgreSQL.

Exports and checksums of an organisation, bounded polls, table locks that stop an import at a
known statement, and kill -9 of a process group with the wait for its orphaned backends.
"""

from __future__ import annotations

import json
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
from tests.e2e.cli import CliEnv, Result

T = TypeVar("T")

HEADER = "erp_customer_number,name,default_currency,default_language,contact_email,contact_name"
WAIT = 120.0  # seconds: the bound of every wait of these tests
POLL = 0.05  # seconds between two probes of a wait


# --- environments and databases ---------------------------------------------------------------


def libpq(url: str) -> str:
    """A URL psycopg accepts (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def process_env(db_url: str, prefect_api: str, cwd: Path) -> CliEnv:
    """Subprocesses on `db_url` and the session's Prefect API, in `cwd`, with their own
    PREFECT_HOME (a killed process must not leave a lock in a shared one)."""
    return CliEnv(
        db_url=db_url,
        prefect_api=prefect_api,
        cwd=cwd,
        extra={"PREFECT_HOME": str(cwd / "prefect-home")},
    )


def register(engine: Engine, *slugs: str) -> None:
    """Register organisations."""
    with engine.begin() as conn:
        for slug in slugs:
            add_org(conn, slug)


def import_args(path: Path, slug: str, env: CliEnv, *options: str) -> list[str]:
    """`import PATH --org SLUG --json` with the reports in the call's folder."""
    report_dir = str(env.cwd / "reports")
    return ["import", str(path), "--org", slug, "--json", "--report-dir", report_dir, *options]


def summary_of(result: Result) -> dict[str, Any]:
    """The JSON summary an `import --json` printed."""
    assert result.stdout.strip(), result
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


# --- exports ----------------------------------------------------------------------------------


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


# --- what the database holds ------------------------------------------------------------------


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
    """erp_customer_number -> name for an organisation."""
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
    """run_id, status and source of an organisation's import runs, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.id::text AS run_id, r.status, r.source FROM import_run r "
                "JOIN org o ON o.id = r.org_id WHERE o.slug = :slug ORDER BY r.started_at"
            ),
            {"slug": slug},
        ).mappings()
        return [dict(r) for r in rows]


# --- backends and locks -----------------------------------------------------------------------


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


def waiting_on(admin: psycopg.Connection[Any], database: str, table: str) -> list[tuple[int, str]]:
    """The erp-sync backends of `database` blocked on `table`."""
    return [w for w in waiting_imports(admin, database) if w[1] == table]


def two_blocked(admin: psycopg.Connection[Any], database: str) -> list[tuple[int, str]] | None:
    """What two (or more) blocked erp-sync backends wait for, or None while fewer are blocked."""
    waiting = waiting_imports(admin, database)
    return waiting if len({pid for pid, _ in waiting}) >= 2 else None


def import_backends(admin: psycopg.Connection[Any], database: str) -> list[tuple[Any, ...]]:
    """(pid, state, wait event type, wait event, query) of the erp-sync backends of `database`."""
    return admin.execute(
        "SELECT pid, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = 'erp-sync'",
        (database,),
    ).fetchall()


def backend_pids(admin: psycopg.Connection[Any], database: str) -> set[int]:
    """The pids of the erp-sync backends of `database`."""
    return {int(row[0]) for row in import_backends(admin, database)}


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


# --- waits and processes ----------------------------------------------------------------------


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
        time.sleep(POLL)
    pytest.fail(f"timed out after {timeout:g}s waiting until {what}")


def wait_until_gone(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> None:
    """Poll `probe` until it returns nothing; fail with what it still returns after `timeout`."""
    deadline = time.monotonic() + timeout
    while (left := probe()) and time.monotonic() < deadline:
        time.sleep(POLL)
    assert not left, f"{what} still there after {timeout:g}s: {left}"


def kill_group(process: subprocess.Popen[str]) -> None:
    """kill -9 the process group of a started erp-sync (if it still runs) and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


@contextmanager
def reaped(*processes: subprocess.Popen[str]) -> Iterator[None]:
    """Kill (whole process group) any erp-sync process still running when the block ends."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                kill_group(process)


def kill_and_wait(
    process: subprocess.Popen[str],
    admin: psycopg.Connection[Any],
    database: str,
    known: set[int],
    release: Callable[[], None] | None = None,
) -> None:
    """kill -9 the process group, then wait until its backends (those not in `known`) are gone.

    A backend waiting on a lock does not notice that its client died: `release` (the held
    table's) lets it run on, find the client gone and roll back.
    """
    kill_group(process)
    if release is not None:
        release()
    wait_until_gone("the killed process's backends", lambda: backend_pids(admin, database) - known)
