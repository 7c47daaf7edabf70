"""The engine: postgresql:// URLs, how they are shown, and the first connection."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders.exceptions import DatabaseUnavailableError, DatabaseUrlError


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


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for url (postgresql://...), with a short connect timeout."""
    connect_args = {
        "connect_timeout": 10,
        "application_name": "erp-sync",
        # Staging tables are temporary: give them room in memory instead of the 8MB default
        # (a per-session ceiling, used only as far as a large import's staging needs it).
        "options": "-c temp_buffers=1GB",
    }
    connect_args.update(kwargs.pop("connect_args", {}))
    return sa.create_engine(
        sqlalchemy_url(url), connect_args=connect_args, pool_pre_ping=True, **kwargs
    )


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
