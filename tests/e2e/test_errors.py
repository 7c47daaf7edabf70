"""What a user sees when something goes wrong: one line naming the cause, the contract's exit
code, and never a traceback unless ERP_SYNC_LOG_LEVEL=DEBUG.

The failures that need a process of their own (a database lost under a running import, Prefect's
temporary server not starting in time) run erp-sync as a subprocess; the others run in-process.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders import schema
from loaders.engine import create_db_engine
from loaders.orgs import add_org
from tests.conftest import create_fresh_database, drop_database
from tests.e2e.cli import (
    CliEnv,
    Result,
    cli_command,
    finish,
    run_cli,
    run_cli_subprocess,
    start_cli_subprocess,
    subprocess_env,
)
from tests.e2e.helpers import (
    csv_file,
    libpq,
    reaped,
    table_held,
    wait_until,
    waiting_imports,
)

PASSWORD = "s3cret-Pw"


def error_lines(result: Result) -> list[str]:
    """The non-empty lines of stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line(result: Result, code: int, *needles: str) -> str:
    """The call exited `code` with exactly one line on stderr holding every needle, no traceback."""
    assert result.exit_code == code, result
    assert "Traceback" not in result.output, result
    lines = error_lines(result)
    assert len(lines) == 1, result
    for needle in needles:
        assert needle in lines[0], result
    assert PASSWORD not in result.output
    return lines[0]


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    return CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=tmp_path)


# --- migrations -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_migrating_to_an_unknown_revision_is_a_usage_error_naming_it(
    env: CliEnv, command: str
) -> None:
    result = run_cli(["db", command, "nonsense"], env)
    assert_one_line(result, 2, "'nonsense'", "erp-sync db current")


def test_a_migration_that_refuses_is_one_line_naming_the_colliding_customer_numbers(
    empty_db_url: str, prefect_api: str, tmp_path: Path
) -> None:
    engine = create_db_engine(empty_db_url, poolclass=sa.pool.NullPool)
    schema.upgrade(engine, "0003")
    with engine.begin() as conn:
        organisation = add_org(conn, "collide")
        for number in ("K-1", "K\u200b-1"):  # equal without the zero-width space: 0004 refuses
            conn.execute(
                sa.text(
                    "INSERT INTO customer (org_id, erp_customer_number, name, default_currency, "
                    "default_language) VALUES (:org, :number, 'Acme', 'EUR', 'en')"
                ),
                {"org": organisation.id, "number": number},
            )
    env = CliEnv(db_url=empty_db_url, prefect_api=prefect_api, cwd=tmp_path)

    result = run_cli(["db", "upgrade"], env)

    line = assert_one_line(result, 4, "migration 0004", "K-1", "collide")
    assert "run the upgrade again" in line
    assert schema.current_revision(engine) == "0003"
    engine.dispose()


# --- DATABASE_URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{PASSWORD}@h:notaport/db",
        f"mysql://u:{PASSWORD}@localhost/db",
        "not a url at all",
    ],
)
def test_a_malformed_or_foreign_database_url_is_a_usage_error(
    url: str, prefect_api: str, tmp_path: Path
) -> None:
    result = run_cli(["org", "list"], CliEnv(db_url=url, prefect_api=prefect_api, cwd=tmp_path))
    assert_one_line(result, 2, "DATABASE_URL")


def test_an_unreachable_database_server_is_one_line_and_exit_4(
    prefect_api: str, tmp_path: Path
) -> None:
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"  # nothing listens on port 1
    result = run_cli(["org", "list"], CliEnv(db_url=url, prefect_api=prefect_api, cwd=tmp_path))
    assert_one_line(result, 4, "cannot connect", "127.0.0.1")


# --- report RUN_ID ----------------------------------------------------------------------------


def _copy_run(engine: Engine, run_id: str, new_id: str) -> None:
    """Another import_run row like run_id's, under new_id (its summary's run_id too)."""
    from loaders.tables import import_run

    # identifiers from the table metadata
    listed = ", ".join(c.name for c in import_run.columns if c.name not in ("id", "summary"))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO import_run (id, summary, {listed}) "
                "SELECT CAST(:new AS uuid), jsonb_set(summary::jsonb, '{run_id}', "
                f"to_jsonb(CAST(:new AS text))), {listed} FROM import_run WHERE id = CAST(:old AS uuid)"
            ),
            {"new": new_id, "old": run_id},
        )


def test_report_with_a_prefix_of_several_run_ids_lists_them_and_exits_2(
    env: CliEnv, engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        add_org(conn, "ambiguous")
    source = csv_file(tmp_path / "kunden.csv", [("A1", "Acme")])
    first = run_cli(["import", str(source), "--org", "ambiguous", "--json"], env)
    assert first.exit_code == 0, first
    run_id = first.json()["run_id"]
    ids = [f"fe{i}{uuid.uuid4().hex[3:8]}-0000-4000-8000-{uuid.uuid4().hex[:12]}" for i in range(3)]
    for new_id in ids:
        _copy_run(engine, run_id, new_id)

    result = run_cli(["report", "fe"], env)

    line_count = len(error_lines(result))
    assert result.exit_code == 2, result
    assert "Traceback" not in result.output
    assert "ambiguous" in result.stderr and "'fe'" in result.stderr
    assert all(i in result.stderr for i in ids), result
    assert "kunden.csv" in result.stderr
    assert line_count <= 1 + 10
    # A prefix that names one run is still enough, and one that names none says so.
    assert run_cli(["report", ids[0][:4]], env).exit_code == 0
    assert_one_line(run_cli(["report", "fff0"], env), 2, "no run", "'fff0'")


# --- crashes ----------------------------------------------------------------------------------


def test_an_unexpected_failure_is_one_line_unless_the_log_level_is_debug(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loaders.orgs

    def broken(conn: Any) -> None:
        raise ZeroDivisionError("nobody expected this\nsecond line of detail")

    monkeypatch.setattr(loaders.orgs, "list_orgs", broken)

    quiet = run_cli(["org", "list"], env)
    line = assert_one_line(
        quiet, 4, "unexpected failure: ZeroDivisionError: nobody expected this", "DEBUG"
    )
    assert "second line" not in line

    loud = run_cli(["org", "list"], env.with_vars(ERP_SYNC_LOG_LEVEL="DEBUG"))
    assert loud.exit_code == 4
    assert "Traceback" in loud.stderr


# --- failures that need a process of their own ------------------------------------------------


@pytest.fixture
def lost_db_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A database of its own: the test terminates its backends."""
    url = create_fresh_database(pg_admin_url, pg_template)
    yield url
    drop_database(pg_admin_url, url)


@pytest.mark.slow
def test_a_database_lost_after_the_loads_retries_is_one_line_exit_4_and_a_failed_run(
    lost_db_url: str, prefect_api: str, tmp_path: Path
) -> None:
    engine = create_db_engine(lost_db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        add_org(conn, "lost")
    env = CliEnv(
        db_url=lost_db_url,
        prefect_api=prefect_api,
        cwd=tmp_path,
        extra={"PREFECT_HOME": str(tmp_path / "prefect-home")},
    )
    source = csv_file(tmp_path / "lost.csv", [(f"L{i}", "Lost Ltd") for i in range(20)])
    name = make_url(lost_db_url).database
    assert name

    terminated: set[int] = set()
    with (
        psycopg.connect(libpq(lost_db_url), autocommit=True) as admin,
        table_held(lost_db_url, "customer"),
    ):
        process = start_cli_subprocess(["import", str(source), "--org", "lost"], env)
        with reaped(process):
            for attempt in range(3):  # the first try and both retries of the load
                pid = wait_until(
                    f"attempt {attempt + 1} of the load blocks on the customer table",
                    lambda: next(
                        (
                            p
                            for p, target in waiting_imports(admin, name)
                            if target == "customer" and p not in terminated
                        ),
                        None,
                    ),
                    [process],
                )
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                terminated.add(pid)
            result = finish(process, 120)

    assert result.exit_code == 4, result
    assert "Traceback" not in result.output, result
    lines = error_lines(result) + [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) <= 4, result
    assert "failed" in result.output.lower()
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("SELECT status FROM import_run")).scalars().all()
    assert statuses == ["failed"]
    engine.dispose()


@pytest.mark.slow
def test_the_local_prefect_server_not_starting_in_time_is_one_line_and_exit_4(
    env: CliEnv, engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        add_org(conn, "no-prefect")
    source = csv_file(tmp_path / "kunden.csv", [("N1", "Acme")])
    home = tmp_path / "home"
    variables = subprocess_env(env.with_vars(ERP_SYNC_HOME=str(home)))
    variables.pop("PREFECT_API_URL")  # erp-sync starts its shared local Prefect server
    variables["ERP_SYNC_PREFECT_STARTUP_SECONDS"] = "0"
    try:
        completed = subprocess.run(
            cli_command(["import", str(source), "--org", "no-prefect"]),
            cwd=env.cwd,
            env=variables,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:  # the shared server it started may still be coming up: stop it
        subprocess.run(
            cli_command(["stop"]), cwd=env.cwd, env=variables, capture_output=True, timeout=120
        )
    result = Result(completed.returncode, completed.stdout, completed.stderr)

    line = assert_one_line(result, 4, "Prefect", "PREFECT_API_URL")
    assert "did not start" in line


def test_a_subprocess_run_of_the_cli_reports_an_unreachable_server_in_one_line(
    prefect_api: str, tmp_path: Path
) -> None:
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"
    result = run_cli_subprocess(
        ["org", "list"], CliEnv(db_url=url, prefect_api=prefect_api, cwd=tmp_path), 60
    )
    assert_one_line(result, 4, "cannot connect")
