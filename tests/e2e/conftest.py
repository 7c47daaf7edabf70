"""Fixtures of the end-to-end tests: one temporary Prefect API for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A throwaway Prefect server (SQLite in a temporary folder) for every flow run of the session.

    Started once: each start costs seconds. Yields the API URL that flows, deployments and
    `prefect.get_client()` use while the session lasts.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        assert url, "prefect_test_harness did not set PREFECT_API_URL"
        yield url
