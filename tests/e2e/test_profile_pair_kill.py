"""A two-file import is one transaction: killed between its customers and contacts, it leaves
nothing behind, and a rerun applies the pair whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import Engine

from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, run_cli, start_cli_subprocess
from tests.e2e.helpers import (
    WAIT,
    checksum,
    import_backends,
    kill_group,
    process_env,
    reaped,
    runs_of,
    table_held,
    wait_until,
    wait_until_gone,
    waiting_on,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """Subprocesses on the module's database and the session's Prefect API, in tmp_path."""
    return process_env(db_url, prefect_api, tmp_path)


def test_a_killed_two_file_import_applies_neither_file(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    slug = "pair-killed"
    with engine.begin() as conn:
        add_org(conn, slug)
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
                lambda: waiting_on(admin, database, "customer_contact"),
                [victim],
                timeout=WAIT * 2,
            )
            kill_group(victim)
        release()
    engine.dispose()  # the test's own pooled connections are also named erp-sync
    wait_until_gone("the killed import's backends", lambda: import_backends(admin, database))
    assert checksum(engine, slug) == before
    assert runs_of(engine, slug) == []

    rerun = run_cli(args, env)  # in-process: the rerun tests no process boundary
    assert rerun.exit_code == 0, rerun
    after = checksum(engine, slug)
    assert after[:2] == (2000, 2000)
