"""The load task retries only what a retry can fix: a lost or refused database connection."""

from __future__ import annotations

import sqlalchemy as sa

from flows.import_flow import _transient, load_task
from loaders.exceptions import DatabaseUnavailableError, SchemaBehindError


class _Finished:
    """A finished task run's state whose result raises what the task raised."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def result(self) -> None:
        if self.error is not None:
            raise self.error


def test_a_lost_connection_is_retried() -> None:
    lost = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert _transient(None, None, _Finished(lost)) is True
    assert _transient(None, None, _Finished(DatabaseUnavailableError("down"))) is True


def test_data_and_usage_errors_are_not_retried() -> None:
    assert _transient(None, None, _Finished(SchemaBehindError("behind"))) is False
    assert _transient(None, None, _Finished(ValueError("bad value"))) is False
    integrity = sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert _transient(None, None, _Finished(integrity)) is False


def test_the_load_task_retries_twice() -> None:
    assert load_task.retries == 2
    assert load_task.retry_condition_fn is _transient
