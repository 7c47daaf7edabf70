"""Alembic environment: the metadata comes from loaders.tables; a run holds an advisory lock."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from loaders.engine import create_db_engine
from loaders.schema import MIGRATION_LOCK_KEY
from loaders.tables import metadata

config = context.config
target_metadata = metadata


def _engine() -> sa.engine.Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL, or run migrations with `erp-sync db upgrade`")
    return create_db_engine(url)


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (alembic --sql)."""
    context.configure(
        url=os.environ.get("DATABASE_URL", "postgresql+psycopg://"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate in one transaction that holds an advisory lock, so that two processes never
    migrate at once. The lock is the transaction's, not the session's: behind a pooler in
    transaction mode a session lock would stay with a pooled server session."""
    with _engine().connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
