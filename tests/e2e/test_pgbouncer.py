"""erp-sync behind a real PgBouncer in transaction mode (Debian's package), as a fleet shares one.

The PgBouncer of this module pools two server connections and hands them out round robin, so
consecutive transactions of one client land on different server sessions: anything erp-sync
kept in a session (startup options, a session advisory lock, a prepared statement, a temporary
table outliving its transaction) would break here. It is installed with apt-get when missing
(as root), and the module is skipped, saying why, where that cannot be done.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders.engine import create_db_engine
from loaders.schema import head_revision
from tests.conftest import create_fresh_database, drop_database
from tests.e2e.cli import CliEnv, run_cli

pytestmark = pytest.mark.slow

POOL_SIZE = 2

HEADER = "erp_customer_number,name,email,default_currency,default_language,contact_email,contact_is_primary"
V1 = (
    "C-1,Alpha GmbH,a@alpha.de,EUR,de,anna@alpha.de,x\n"
    "C-2,Beta AG,b@beta.ch,CHF,de,carl@beta.ch,x\n"
    "C-3,Gamma SA,,EUR,de,dora@gamma.fr,x\n"
)
# C-1 changes its currency, C-3 its name, C-4 is new.
V2 = (
    "C-1,Alpha GmbH,a@alpha.de,USD,de,anna@alpha.de,x\n"
    "C-2,Beta AG,b@beta.ch,CHF,de,carl@beta.ch,x\n"
    "C-3,Gamma Neu SA,,EUR,de,dora@gamma.fr,x\n"
    "C-4,Delta BV,d@delta.nl,EUR,de,fred@delta.nl,x\n"
)
# No erp_customer_number column: the whole file is refused.
MISSING_KEY = "name,email,default_currency\nOmega,o@omega.de,EUR\n"


def _pgbouncer_binary() -> str:
    """The pgbouncer executable, installed from Debian's package when missing; else a skip."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("pgbouncer is not installed and installing it needs root (apt-get)")
    if shutil.which("apt-get") is None:
        pytest.skip("pgbouncer is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "pgbouncer"]
    installed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if installed.returncode != 0 or not found:
        last = (installed.stderr.strip() or installed.stdout.strip()).splitlines()[-1:]
        pytest.skip(f"pgbouncer could not be installed with apt-get: {' '.join(last)}")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_address(url: str) -> tuple[str, int]:
    """Where PgBouncer reaches the test server: a host, or the unix socket directory."""
    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or "127.0.0.1"
    return str(host if isinstance(host, str) else host[0]), parsed.port or 5432


@pytest.fixture(scope="module")
def bouncer(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """(direct URL, URL through PgBouncer) of a fresh empty database."""
    binary = _pgbouncer_binary()
    direct = create_fresh_database(pg_admin_url, None)
    host, port = _server_address(pg_admin_url)
    # PgBouncer refuses to run as root: it runs as the owner of the server's socket folder
    # (who can reach the socket), or nobody for a TCP server. Its files must be readable.
    folder = Path(tempfile.mkdtemp(prefix="erp-sync-pgbouncer-"))
    folder.chmod(0o755)
    listen = _free_port()
    user = make_url(direct).username or "postgres"
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 200\n"
        # Hand the idle server connections out in turn, not the last used first: consecutive
        # transactions of one client then really run in different server sessions.
        "server_round_robin = 1\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        owner = folder.stat().st_uid
        if host.startswith("/"):
            owner = Path(host).stat().st_uid
        name = pwd.getpwuid(owner).pw_name if owner != 0 else "nobody"
        command[1:1] = ["-u", name]
    log = (folder / "pgbouncer.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(listen, process, folder / "pgbouncer.log")
        through = make_url(direct).set(host="127.0.0.1", port=listen, query={})
        yield direct, through.render_as_string(hide_password=False)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        drop_database(pg_admin_url, direct)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"pgbouncer did not listen on port {port} within 15 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def direct_engine(bouncer: tuple[str, str]) -> Iterator[Engine]:
    """An engine straight on the server, to check what the commands through PgBouncer did."""
    engine = create_db_engine(bouncer[0], poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def upgraded(bouncer: tuple[str, str], prefect_api: str) -> list[Any]:
    """`erp-sync db upgrade` through PgBouncer, twice (the second finds nothing to do)."""
    env = CliEnv(db_url=bouncer[1], prefect_api=prefect_api, cwd=Path.cwd())
    return [run_cli(["db", "upgrade"], env) for _ in range(2)]


@pytest.fixture
def env(bouncer: tuple[str, str], prefect_api: str, tmp_path: Path, upgraded: Any) -> CliEnv:
    return CliEnv(db_url=bouncer[1], prefect_api=prefect_api, cwd=tmp_path)


def write(path: Path, body: str, header: str = HEADER) -> Path:
    path.write_text(header + "\n" + body, encoding="utf-8")
    return path


def customers(engine: Engine, org: str) -> dict[str, tuple[str, str]]:
    """The organisation's customers: number -> (name, currency)."""
    query = sa.text(
        "SELECT c.erp_customer_number, c.name, c.default_currency FROM customer c "
        "JOIN org o ON o.id = c.org_id WHERE o.slug = :slug"
    )
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(query, {"slug": org})}


def test_db_upgrade_through_pgbouncer_migrates_and_leaves_no_lock_behind(
    upgraded: list[Any], direct_engine: Engine
) -> None:
    first, second = upgraded
    assert first.exit_code == 0, first
    assert f"empty -> {head_revision()}" in first.stdout
    assert second.exit_code == 0, second  # not blocked by a lock left in a pooled session
    assert f"{head_revision()} -> {head_revision()}" in second.stdout
    with direct_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == (
            head_revision()
        )
        locks = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert conn.execute(sa.text(locks)).scalar_one() == 0


def _use_temp_tables_in_every_server_session(url: str) -> None:
    """Create a temporary table in each pooled server session, at the default temp_buffers:
    from then on those sessions cannot change temp_buffers any more."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    held = [psycopg.connect(libpq, prepare_threshold=None) for _ in range(POOL_SIZE)]
    try:
        for conn in held:  # each holds its transaction open: each has a server session
            conn.execute("CREATE TEMP TABLE earlier_client (x int) ON COMMIT DROP")
            conn.execute("INSERT INTO earlier_client VALUES (1)")  # its buffers are set up now
        for conn in held:
            conn.commit()
    finally:
        for conn in held:
            conn.close()


def test_a_statement_run_ten_times_through_pgbouncer_is_never_prepared(
    bouncer: tuple[str, str],
) -> None:
    """psycopg prepares a statement on its sixth run; the next transaction lands in the other
    server session, where that statement does not exist (or another client's of the same name
    does): erp-sync's engines find PgBouncer and prepare nothing."""
    _use_temp_tables_in_every_server_session(bouncer[1])  # both server sessions are open
    engine = create_db_engine(bouncer[1], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.prepare_threshold is None
            sessions = set()
            for _ in range(10):
                sessions.add(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
                conn.commit()
            assert len(sessions) == POOL_SIZE  # one client, really shared server sessions
    finally:
        engine.dispose()
    direct = create_db_engine(bouncer[0], poolclass=sa.pool.NullPool)
    try:
        with direct.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.prepare_threshold == 5  # psycopg's default
    finally:
        direct.dispose()


def test_import_resync_rejected_file_runs_report_and_revert_through_pgbouncer(
    env: CliEnv, bouncer: tuple[str, str], direct_engine: Engine, tmp_path: Path
) -> None:
    _use_temp_tables_in_every_server_session(bouncer[1])
    org = f"pgb-{uuid.uuid4().hex[:8]}"
    assert run_cli(["org", "add", org], env).exit_code == 0
    report_dir = ["--report-dir", str(tmp_path / "r")]

    first = run_cli(
        ["import", str(write(tmp_path / "v1.csv", V1)), "--org", org, "--json", *report_dir], env
    )
    assert first.exit_code == 0, first
    assert first.json()["customers"]["inserted"] == 3
    after_v1 = customers(direct_engine, org)
    assert after_v1 == {
        "C-1": ("Alpha GmbH", "EUR"),
        "C-2": ("Beta AG", "CHF"),
        "C-3": ("Gamma SA", "EUR"),
    }

    second = run_cli(
        ["import", str(write(tmp_path / "v2.csv", V2)), "--org", org, "--json", *report_dir], env
    )
    assert second.exit_code == 0, second
    run_id = second.json()["run_id"]
    counts = second.json()["customers"]
    assert (counts["inserted"], counts["updated"], counts["unchanged"]) == (1, 2, 1)
    assert customers(direct_engine, org) == {
        "C-1": ("Alpha GmbH", "USD"),
        "C-2": ("Beta AG", "CHF"),
        "C-3": ("Gamma Neu SA", "EUR"),
        "C-4": ("Delta BV", "EUR"),
    }

    bad = write(
        tmp_path / "bad.csv", MISSING_KEY.split("\n", 1)[1], header=MISSING_KEY.split("\n")[0]
    )
    rejected = run_cli(["import", str(bad), "--org", org, "--json", *report_dir], env)
    assert rejected.exit_code == 3, rejected
    assert rejected.json()["file_errors"][0]["code"] == "missing_column"
    assert len(customers(direct_engine, org)) == 4

    runs = run_cli(["runs", "--org", org, "--json"], env)
    assert runs.exit_code == 0, runs
    assert [r["status"] for r in runs.json()] == ["rejected", "succeeded", "succeeded"]
    report = run_cli(["report", run_id, "--json"], env)
    assert report.exit_code == 0, report
    assert report.json()["customers"]["updated"] == 2
    rewritten = run_cli(["report", run_id, "--write", "--report-dir", str(tmp_path / "again")], env)
    assert rewritten.exit_code == 0, rewritten
    assert (tmp_path / "again" / run_id / "summary.json").is_file()

    reverted = run_cli(["revert", run_id, "--json"], env)
    assert reverted.exit_code == 0, reverted
    assert reverted.json()[0]["reverts"] == run_id
    assert customers(direct_engine, org) == after_v1


def test_a_sync_of_four_organisations_at_once_through_pgbouncer_applies_each_file_once(
    env: CliEnv, direct_engine: Engine, tmp_path: Path
) -> None:
    """Four imports at a time (ERP_SYNC_SYNC_CONCURRENCY) share two server connections."""
    orgs = [f"pgb-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    inbox = tmp_path / "inbox"
    for n, org in enumerate(orgs):
        assert run_cli(["org", "add", org], env).exit_code == 0
        (inbox / org).mkdir(parents=True)
        rows = "".join(f"K-{i},Kunde {i},,EUR,de,k{i}@example.com,x\n" for i in range(100 * n + 1))
        write(inbox / org / "kunden_2026-12-01.csv", rows)
    sync = ["sync", str(inbox), "--json", "--report-dir", str(tmp_path / "r")]
    first = run_cli(sync, env)
    assert first.exit_code == 0, first
    assert sorted(f["status"] for f in first.json()["files"]) == ["succeeded"] * 4
    for n, org in enumerate(orgs):
        assert len(customers(direct_engine, org)) == 100 * n + 1
    again = run_cli(sync, env)
    assert again.exit_code == 0, again
    assert again.json()["files"] == []  # every file applied already
    applied = sa.text(
        "SELECT o.slug, count(r.id) FROM org o LEFT JOIN import_run r ON r.org_id = o.id "
        "WHERE o.slug = ANY(:slugs) GROUP BY o.slug"
    )
    with direct_engine.connect() as conn:
        assert dict(conn.execute(applied, {"slugs": orgs}).all()) == dict.fromkeys(orgs, 1)


def test_erp_sync_pgbouncer_turns_prepared_statements_off_without_detection(
    bouncer: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.settings import Settings

    monkeypatch.setenv("ERP_SYNC_PGBOUNCER", "1")
    engine = create_db_engine(bouncer[0], pgbouncer=Settings().pgbouncer)  # straight on the server
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None and raw.prepare_threshold is None
    finally:
        engine.dispose()
