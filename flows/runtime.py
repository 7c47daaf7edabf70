"""The database a command works on: the embedded server or DATABASE_URL, with its schema checked."""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from flows.dbslot import under_worker
from flows.servers import ensure_embedded_postgres
from flows.settings import Settings
from loaders.engine import check_connection, create_db_engine
from loaders.exceptions import DatabaseUrlError
from loaders.schema import ensure_schema_current


class DatabaseUrlRequiredError(DatabaseUrlError):
    """Under a Prefect worker, DATABASE_URL is required: there is no embedded database there
    (a usage error for the CLI: exit 2 with the message)."""


@dataclass(frozen=True)
class Database:
    """An engine plus where it came from."""

    engine: Engine
    url: str
    embedded: bool


_opened: dict[tuple[str | None, str], Database] = {}
_opening = threading.Lock()


def open_database(settings: Settings, *, check_schema: bool = True) -> Database:
    """The database of these settings, opened once per process (flows and tasks share it)."""
    key = (settings.database_url, str(settings.home))
    with _opening:
        database = _opened.get(key)
        if database is None:
            database = _open(settings, check_schema=check_schema)
            if check_schema:
                if not _opened:
                    atexit.register(close_databases)
                _opened[key] = database
        return database


def close_databases() -> None:
    """Close the connections of every database this process opened (at exit: the server sees
    each session end cleanly, even when the process skips the interpreter's teardown)."""
    with _opening:
        for database in _opened.values():
            database.engine.dispose()


def _open(settings: Settings, *, check_schema: bool) -> Database:
    """Connect to DATABASE_URL, or start the embedded server and migrate it to the latest schema.

    On a server named by DATABASE_URL migrations run only through `erp-sync db upgrade`, so a
    schema behind the code raises SchemaBehindError instead of being changed behind the back
    of whoever runs that server.
    """
    embedded = settings.database_url is None
    if embedded and under_worker():
        raise DatabaseUrlRequiredError(
            "DATABASE_URL is not set: a flow run on a Prefect worker needs the shared PostgreSQL "
            "server (an embedded database would be private to this worker); set DATABASE_URL in "
            "the worker's environment or the work pool's job variables"
        )
    url = (
        ensure_embedded_postgres(settings.home, settings.server_idle_minutes)
        if settings.database_url is None
        else settings.database_url
    )
    engine = create_db_engine(url, pgbouncer=settings.pgbouncer)
    check_connection(engine, url)
    if check_schema:
        ensure_schema_current(engine, migrate=embedded)
    return Database(engine=engine, url=url, embedded=embedded)
