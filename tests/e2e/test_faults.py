"""CONTRACT.md section 3 under faults: kill -9, lost backends and racing imports on real PostgreSQL.

Every import here is a real `erp-sync` process. Where a fault must strike at a known statement,
the test holds a SHARE lock on a table the load writes (as tests/e2e/test_concurrency.py does),
so the import waits there until the test kills it or its backend. The state an import must
leave is either the organisation as it was (`checksum`, every column of every row) or the
state of a clean import of the same files in a scratch organisation (`content`, the values
without ids and timestamps).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, Result, finish, run_cli, start_cli_subprocess, subprocess_env
from tests.e2e.helpers import (
    WAIT,
    backend_pids,
    big_csv_file,
    checksum,
    csv_file,
    import_args,
    kill_and_wait,
    process_env,
    reaped,
    summary_of,
    table_held,
    wait_until,
    waiting_imports,
    waiting_on,
)

pytestmark = pytest.mark.slow

BIG_ROWS = 100_000  # enough for a COPY that lasts long enough to be caught at


# --- helpers ----------------------------------------------------------------------------------


def content(engine: Engine, slug: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """An organisation's customers and contacts as values: no ids, no timestamps, sorted."""
    with engine.connect() as conn:
        customers = conn.execute(
            sa.text(
                """
                SELECT c.erp_customer_number, c.name, c.email::text, c.default_currency,
                       c.default_language, c.billing_address::text, c.shipping_address::text,
                       c.notes, c.is_active
                FROM customer c JOIN org o ON o.id = c.org_id WHERE o.slug = :slug
                ORDER BY c.erp_customer_number
                """
            ),
            {"slug": slug},
        ).all()
        contacts = conn.execute(
            sa.text(
                """
                SELECT c.erp_customer_number, cc.email::text, cc.name, cc.phone, cc.role,
                       cc.is_primary
                FROM customer_contact cc JOIN customer c ON c.id = cc.customer_id
                JOIN org o ON o.id = cc.org_id WHERE o.slug = :slug
                ORDER BY c.erp_customer_number, cc.email
                """
            ),
            {"slug": slug},
        ).all()
    return [tuple(r) for r in customers], [tuple(r) for r in contacts]


def runs_for(engine: Engine, slug: str, source: Path) -> list[str]:
    """The statuses of the organisation's recorded runs of `source`, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.status FROM import_run r JOIN org o ON o.id = r.org_id "
                "WHERE o.slug = :slug AND r.source = :source ORDER BY r.started_at"
            ),
            {"slug": slug, "source": str(source)},
        ).scalars()
        return list(rows)


def applied_runs(engine: Engine, slug: str, source: Path) -> list[str]:
    return [s for s in runs_for(engine, slug, source) if s in ("succeeded", "partial")]


def new_org(engine: Engine, prefix: str) -> str:
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        add_org(conn, slug)
    return slug


def import_in_process(env: CliEnv, path: Path, slug: str) -> Result:
    result = run_cli(import_args(path, slug, env), env)
    assert result.exit_code in (0, 1), result
    return result


def statement_running(
    admin: psycopg.Connection[Any], database: str, *prefixes: str
) -> list[tuple[int, str]]:
    """(pid, statement) of erp-sync backends running a statement that starts with a prefix."""
    rows = admin.execute(
        "SELECT pid, left(query, 80) FROM pg_stat_activity WHERE datname = %s "
        "AND application_name = 'erp-sync' AND state = 'active' AND query LIKE ANY(%s)",
        (database, [prefix + "%" for prefix in prefixes]),
    ).fetchall()
    return [(int(pid), str(query)) for pid, query in rows]


def export(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """(number, name, contact email, contact_is_primary) per row."""
    lines = ["erp_customer_number,name,default_currency,default_language,contact_email,"]
    lines[0] += "contact_name,contact_is_primary"
    lines += [f"{n},{name},EUR,en,{email},Contact of {name},{p}" for n, name, email, p in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """The module's database and the session's Prefect API, in tmp_path."""
    return process_env(db_url, prefect_api, tmp_path)


@dataclass(frozen=True)
class Files:
    """A `before` export, a `new` one that changes it, and the state of before-then-new."""

    before: Path
    new: Path
    applied: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory, db_url: str, prefect_api: str, engine: Engine
) -> Files:
    """The two small exports of the kill tests, and their clean import in a scratch org."""
    folder = tmp_path_factory.mktemp("faults")
    before = csv_file(
        folder / "before.csv",
        [(f"K{i:03d}", f"Old {i}") for i in range(30)] + [(f"X{i}", "untouched") for i in range(5)],
    )
    new = csv_file(
        folder / "new.csv",
        [(f"K{i:03d}", f"New {i}") for i in range(30)]
        + [(f"N{i:03d}", "added") for i in range(30)],
    )
    env = CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=folder)
    scratch = new_org(engine, "scratch")
    import_in_process(env, before, scratch)
    import_in_process(env, new, scratch)
    applied = content(engine, scratch)
    assert len(applied[0]) == 65 and {r[1] for r in applied[0] if r[0] == "K007"} == {"New 7"}
    return Files(before, new, applied)


def org_with_before(env: CliEnv, engine: Engine, files: Files) -> tuple[str, tuple[int, int, str]]:
    """A fresh organisation holding the `before` export; returns its slug and checksum."""
    slug = new_org(engine, "fault")
    import_in_process(env, files.before, slug)
    return slug, checksum(engine, slug)


def assert_as_before_or_applied(
    engine: Engine, slug: str, before: tuple[int, int, str], files: Files
) -> str:
    """The organisation is exactly as before or exactly as after a clean import; which one."""
    if checksum(engine, slug) == before:
        assert applied_runs(engine, slug, files.new) == []
        return "before"
    assert content(engine, slug) == files.applied, "neither the old state nor the applied one"
    assert len(applied_runs(engine, slug, files.new)) == 1
    return "applied"


def assert_rerun_converges(env: CliEnv, engine: Engine, slug: str, files: Files) -> str:
    """Importing the file again ends in the applied state, applied once; returns its status."""
    rerun = run_cli(import_args(files.new, slug, env), env)
    assert rerun.exit_code == 0, rerun
    assert content(engine, slug) == files.applied
    assert len(applied_runs(engine, slug, files.new)) == 1
    return str(summary_of(rerun)["status"])


# --- kill -9 ----------------------------------------------------------------------------------


def test_an_import_killed_right_after_launch_changes_nothing_and_a_rerun_applies_it(
    env: CliEnv, engine: Engine, admin: psycopg.Connection[Any], database: str, files: Files
) -> None:
    slug, before = org_with_before(env, engine, files)
    known = backend_pids(admin, database)
    victim = start_cli_subprocess(import_args(files.new, slug, env), env)
    with reaped(victim):
        time.sleep(0.2)
        kill_and_wait(victim, admin, database, known)
    assert victim.returncode == -signal.SIGKILL

    assert assert_as_before_or_applied(engine, slug, before, files) == "before"
    assert assert_rerun_converges(env, engine, slug, files) == "succeeded"


def test_an_import_killed_during_its_copy_changes_nothing(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    files: Files,
    tmp_path: Path,
) -> None:
    slug, before = org_with_before(env, engine, files)
    big = big_csv_file(tmp_path / "big.csv", BIG_ROWS, "Big")
    known = backend_pids(admin, database)
    victim = start_cli_subprocess(import_args(big, slug, env), env)
    with reaped(victim):
        deadline = time.monotonic() + WAIT
        caught: list[tuple[int, str]] = []
        while not caught and victim.poll() is None and time.monotonic() < deadline:
            # New customers are COPYed straight into their tables, changed ones into staging.
            caught = statement_running(
                admin, database, "COPY stage_", "COPY customer ", "COPY customer_contact "
            )
            if not caught:
                time.sleep(0.01)
        assert caught, f"the import was never seen in its COPY (exit {victim.poll()})"
        kill_and_wait(victim, admin, database, known)
    assert victim.returncode == -signal.SIGKILL, caught

    assert checksum(engine, slug) == before
    assert runs_for(engine, slug, big) == []
    rerun = run_cli(import_args(big, slug, env), env)
    assert rerun.exit_code == 0, rerun
    assert summary_of(rerun)["customers"]["inserted"] == BIG_ROWS
    customers, contacts = content(engine, slug)
    assert (len(customers), len(contacts)) == (BIG_ROWS + 35, BIG_ROWS + 35)


@pytest.mark.parametrize(
    "held",
    ["customer", "customer_contact"],
    ids=["before-any-customer-write", "after-the-customer-writes"],
)
def test_an_import_killed_during_its_merge_changes_nothing_and_a_rerun_applies_it(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    files: Files,
    held: str,
) -> None:
    """The merge writes customers, then contacts; the held table stops it before that write."""
    slug, before = org_with_before(env, engine, files)
    known = backend_pids(admin, database)
    with table_held(db_url, held) as release:
        victim = start_cli_subprocess(import_args(files.new, slug, env), env)
        with reaped(victim):
            wait_until(
                f"the import waits to write {held}",
                lambda: waiting_on(admin, database, held),
                [victim],
            )
            kill_and_wait(victim, admin, database, known, release)
    assert victim.returncode == -signal.SIGKILL

    assert assert_as_before_or_applied(engine, slug, before, files) == "before"
    assert assert_rerun_converges(env, engine, slug, files) == "succeeded"


def test_an_import_killed_just_after_its_commit_has_applied_the_file(
    env: CliEnv, engine: Engine, admin: psycopg.Connection[Any], database: str, files: Files
) -> None:
    slug, before = org_with_before(env, engine, files)
    known = backend_pids(admin, database)
    victim = start_cli_subprocess(import_args(files.new, slug, env), env)
    with reaped(victim):
        wait_until(
            "the run is recorded (committed)",
            lambda: runs_for(engine, slug, files.new),
            [victim],
            timeout=WAIT,
        )
        still_running = victim.poll() is None
        kill_and_wait(victim, admin, database, known)
    assert still_running, "the import ended before it could be killed after its commit"

    assert assert_as_before_or_applied(engine, slug, before, files) == "applied"
    assert assert_rerun_converges(env, engine, slug, files) == "skipped"


# --- lost backends ----------------------------------------------------------------------------


def terminate_blocked(
    admin: psycopg.Connection[Any], database: str, victim: subprocess.Popen[str], done: set[int]
) -> int:
    """Wait until the import blocks on `customer` with a backend not yet terminated; end it."""
    [(pid, _)] = wait_until(
        "the import waits to write its customers",
        lambda: [
            w for w in waiting_imports(admin, database) if w[1] == "customer" and w[0] not in done
        ],
        [victim],
    )
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    done.add(pid)
    return pid


def test_a_backend_terminated_once_during_the_load_is_retried_and_the_file_applied(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    files: Files,
) -> None:
    slug, _ = org_with_before(env, engine, files)
    with table_held(db_url, "customer") as release:
        victim = start_cli_subprocess(import_args(files.new, slug, env), env)
        with reaped(victim):
            terminate_blocked(admin, database, victim, set())
            release()
            result = finish(victim, WAIT)

    assert result.exit_code in (0, 1), result
    assert "Traceback" not in result.output, result.output
    assert summary_of(result)["status"] in ("succeeded", "partial")
    assert content(engine, slug) == files.applied
    assert applied_runs(engine, slug, files.new) == [summary_of(result)["status"]]


def test_a_backend_terminated_at_every_attempt_fails_the_import_with_one_line_and_no_change(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    files: Files,
) -> None:
    slug, before = org_with_before(env, engine, files)
    terminated: set[int] = set()
    with table_held(db_url, "customer"):
        victim = start_cli_subprocess(import_args(files.new, slug, env), env)
        with reaped(victim):
            for _ in range(3):  # the load task's first try and its two retries
                terminate_blocked(admin, database, victim, terminated)
            result = finish(victim, WAIT)

    assert result.exit_code == 4, result
    assert "Traceback" not in result.output, result.output
    assert summary_of(result)["status"] == "failed"
    assert len(result.stderr.strip().splitlines()) <= 1, result.stderr
    assert checksum(engine, slug) == before
    assert applied_runs(engine, slug, files.new) == []


# --- racing imports ---------------------------------------------------------------------------

ROUNDS = 10


def racing_files(folder: Path) -> tuple[Path, Path]:
    """Two exports touching the same customers and contacts with different values."""
    shared = [f"S{i:02d}" for i in range(20)]
    a = export(
        folder / "race-a.csv",
        [(n, f"{n} from a", f"{n.lower()}-a@example.com", "true") for n in shared]
        + [(n, f"{n} from a", f"{n.lower()}-both@example.com", "false") for n in shared[:10]]
        + [(f"A{i:02d}", "only a", f"a{i}@example.com", "") for i in range(10)],
    )
    b = export(
        folder / "race-b.csv",
        [(n, f"{n} from b", f"{n.lower()}-b@example.com", "true") for n in shared]
        + [(n, f"{n} from b", f"{n.lower()}-both@example.com", "false") for n in shared[:10]]
        + [(f"B{i:02d}", "only b", f"b{i}@example.com", "") for i in range(10)],
    )
    return a, b


# A worker imports its file for each organisation slug it reads on stdin, and prints the run's
# status: the module imports are paid once, and the two workers of a round start their imports
# within microseconds of each other (the CLI's start-up would spread them over seconds). The
# import is `run_import` with the plain steps, the CLI's own steps without Prefect around them.
WORKER = """
import json, sys
from pathlib import Path
from flows.importing import ImportOptions, new_run, run_import
from loaders.engine import create_db_engine
from loaders.orgs import get_org

engine = create_db_engine(sys.argv[1])
path, report_dir = Path(sys.argv[2]), Path(sys.argv[3])
print("ready", flush=True)
for line in sys.stdin:
    with engine.connect() as conn:
        org = get_org(conn, line.strip())
    summary = run_import(engine, new_run(org, path, ImportOptions(report_dir=report_dir))).summary
    print(json.dumps({"status": str(summary.status), "run_id": summary.run_id}), flush=True)
"""


def start_worker(env: CliEnv, path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, env.db_url, str(path), str(env.cwd / "reports")],
        cwd=env.cwd,
        env=subprocess_env(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return process


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        _, err = process.communicate(timeout=30)
        pytest.fail(f"the import worker exited ({process.returncode}):\n{err}")
    return line.strip()


def test_two_imports_racing_for_one_organisation_end_in_one_of_the_two_serial_states(
    env: CliEnv, engine: Engine
) -> None:
    file_a, file_b = racing_files(env.cwd)
    serial = {}
    for order in ((file_a, file_b), (file_b, file_a)):
        scratch = new_org(engine, "scratch")
        for path in order:
            import_in_process(env, path, scratch)
        serial[" then ".join(p.stem for p in order)] = content(engine, scratch)
    assert serial["race-a then race-b"] != serial["race-b then race-a"]

    workers = [start_worker(env, file_a), start_worker(env, file_b)]
    outcomes = []
    with reaped(*workers):
        assert [read_line(w) for w in workers] == ["ready", "ready"]
        for _ in range(ROUNDS):
            slug = new_org(engine, "race")
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(slug + "\n")
                worker.stdin.flush()
            results = [json.loads(read_line(w)) for w in workers]
            assert [r["status"] for r in results] == ["succeeded", "succeeded"], results
            state = content(engine, slug)
            matches = [order for order, expected in serial.items() if state == expected]
            assert matches, "the two imports interleaved: the state is neither serial order's"
            outcomes.append(matches[0])
        for worker in workers:
            _, err = worker.communicate(timeout=WAIT)  # closes stdin: the worker ends
            assert worker.returncode == 0, err
    # Which import goes first is up to the race; both orders are fine, a mixture is not.
    assert len(outcomes) == ROUNDS
    print("serial orders of the rounds:", outcomes)
