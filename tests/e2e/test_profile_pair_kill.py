"""A two-file import is one transaction: killed between its customers and contacts, it leaves
nothing behind, and a rerun applies the pair whole."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, run_cli_subprocess, start_cli_subprocess
from tests.e2e.test_concurrency import (
    WAIT,
    checksum,
    import_backends,
    libpq,
    reaped,
    runs_of,
    table_held,
    wait_until,
    waiting_imports,
)

pytestmark = pytest.mark.slow


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
    with psycopg.connect(libpq(db_url), autocommit=True) as conn:
        yield conn


def test_a_killed_two_file_import_applies_neither_file(
    env: CliEnv, engine: Engine, admin: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slug = "pair-killed"
    with engine.begin() as conn:
        add_org(conn, slug)
    database = make_url(db_url).database
    accounts = tmp_path / "accounts_2026-12-01.csv"
    contacts = tmp_path / "contacts_2026-12-01.csv"
    accounts.write_text(
        "Account Number,Account Name,Currency,Language\n"
        + "".join(f"A{i:05d},Account {i},Euro,German\n" for i in range(2000))
    )
    contacts.write_text(
        "Account Number,First Name,Last Name,Email,Primary Contact\n"
        + "".join(f"A{i:05d},Ann,Lee{i},ann{i}@example.com,Yes\n" for i in range(2000))
    )
    before = checksum(engine, slug)
    args = [
        "import", str(accounts), "--contacts", str(contacts), "--org", slug,
        "--profile", "dynamics365", "--json", "--report-dir", str(tmp_path / "reports"),
    ]  # fmt: skip
    with table_held(db_url, "customer_contact") as release:
        victim = start_cli_subprocess(args, env)
        with reaped(victim):
            wait_until(
                "the pair's customers are written and its contacts wait",
                lambda: [w for w in waiting_imports(admin, database) if w[1] == "customer_contact"],
                [victim],
                timeout=WAIT * 2,
            )
            os.killpg(victim.pid, signal.SIGKILL)
            victim.communicate(timeout=30)
        release()
    engine.dispose()
    deadline = time.monotonic() + WAIT
    while import_backends(admin, database) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checksum(engine, slug) == before
    assert runs_of(engine, slug) == []

    rerun = run_cli_subprocess(args, env, WAIT * 2)
    assert rerun.exit_code == 0, rerun
    after = checksum(engine, slug)
    assert after[:2] == (2000, 2000)
