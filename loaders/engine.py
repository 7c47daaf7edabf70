"""The engine: postgresql:// URLs, how they are shown, and the first connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders.exceptions import DatabaseUnavailableError, DatabaseUrlError

if TYPE_CHECKING:
    import psycopg


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) for a postgresql:// URL."""
    try:
        parsed = make_url(url)
    except (ValueError, sa.exc.ArgumentError) as exc:
        # Not the parser's words: they may quote a part of the URL, and so its password.
        raise DatabaseUrlError(
            f"DATABASE_URL is not a valid URL ({redacted(url)}): write it as "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (the port a number)"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise DatabaseUrlError(
            f"DATABASE_URL must be a postgresql:// URL, not {parsed.drivername}://"
        )
    return parsed.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown without anything after the scheme
        return url.split("://", 1)[0] + "://…" if "://" in url else "…"


def create_db_engine(url: str, *, pgbouncer: bool = False, **kwargs: Any) -> Engine:
    """An engine for url (postgresql://...), with a short connect timeout.

    Nothing is set through start-up options: a pooler in transaction mode (PgBouncer) refuses
    them, and its server sessions are shared. What a transaction needs it sets itself (`SET
    LOCAL`). Prepared statements live in a server session, so they are off when `pgbouncer`
    is set or when a connection turns out to go through a pooler (`behind_pooler`).
    """
    connect_args: dict[str, Any] = {"connect_timeout": 10, "application_name": "erp-sync"}
    if pgbouncer:
        connect_args["prepare_threshold"] = None
    connect_args.update(kwargs.pop("connect_args", {}))
    engine = sa.create_engine(
        sqlalchemy_url(url), connect_args=connect_args, pool_pre_ping=True, **kwargs
    )
    sa.event.listen(engine, "connect", _prepare_nothing_behind_a_pooler)
    sa.event.listen(engine, "checkout", _discard_plans)
    return engine


def behind_pooler(dbapi_connection: psycopg.Connection[Any]) -> bool:
    """Whether the connection goes through a pooler such as PgBouncer.

    PostgreSQL tells a client its backend's pid at login (BackendKeyData); PgBouncer makes up
    that key for its clients (its cancel key), so the pid the client was told is not the pid
    of the server session that answers `pg_backend_pid()`. Straight on PostgreSQL they are
    always equal.
    """
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()", prepare=False)
        row = cursor.fetchone()
    dbapi_connection.rollback()
    return row is None or row[0] != dbapi_connection.info.backend_pid


def _prepare_nothing_behind_a_pooler(dbapi_connection: Any, _record: Any) -> None:
    if dbapi_connection.prepare_threshold is not None and behind_pooler(dbapi_connection):
        dbapi_connection.prepare_threshold = None


def _discard_plans(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Start every use of a pooled connection with no cached plans (`DISCARD PLANS`).

    The foreign-key checks of a load (each contact's customer) run a plan the server session
    caches. Cached while the customer table was small (a fresh database, the first small
    files of a sync), it is a sequential scan; a later load of many new customers and their
    contacts on the same session then scans the whole table once per contact: 20,000 contacts
    took 24 s instead of 0.4 s, 100,000 contacts minutes. Planned afresh they use the index.
    """
    from psycopg.pq import TransactionStatus

    if dbapi_connection.info.transaction_status != TransactionStatus.IDLE:
        return
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # not in a transaction: no BEGIN, no COMMIT round trip
    try:
        dbapi_connection.execute("DISCARD PLANS", prepare=False)
    finally:
        dbapi_connection.autocommit = autocommit


def check_connection(engine: Engine, url: str) -> None:
    """Raise DatabaseUnavailableError (naming no password) unless the server answers."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to {redacted(url)}: {_first_line(exc, url)}"
        ) from exc


def _first_line(exc: BaseException, url: str) -> str:
    origin = getattr(exc, "orig", None) or exc
    message = str(origin).strip().splitlines()[0] if str(origin).strip() else type(origin).__name__
    password = make_url(url).password
    if password:
        message = message.replace(str(password), "***")
    return message
