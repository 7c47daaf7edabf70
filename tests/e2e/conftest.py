"""Fixtures of the end-to-end tests: one temporary Prefect API for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A throwaway Prefect server (SQLite in a temporary folder) for every flow run of the session.

    Started once: each start costs seconds (a minute and more on a busy machine, hence the
    generous bound). Yields the API URL that flows, deployments and `prefect.get_client()` use
    while the session lasts.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        url = PREFECT_API_URL.value()
        assert url, "prefect_test_harness did not set PREFECT_API_URL"
        yield url


@pytest.fixture(autouse=True)
def no_shared_servers_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI calls use the session's Prefect API and DATABASE_URL: they must never start
    erp-sync's shared local servers (subprocess calls get both variables from `subprocess_env`)."""
    import flows.servers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an end-to-end test started a shared local server")

    monkeypatch.setattr(flows.servers, "_spawn_watchdog", refuse)


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the module's database, for watching pg_stat_activity and
    pg_locks and terminating backends."""
    from tests.e2e.helpers import libpq

    with psycopg.connect(libpq(db_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def database(db_url: str) -> str:
    """The name of the module's database."""
    name = make_url(db_url).database
    assert name
    return name
