"""`erp-sync db`: the schema's Alembic migrations."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from flows.cli.common import CommandFailedError, UsageError, one_line, open_database

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@click.group("db")
def db() -> None:
    """Schema migrations (Alembic).

    \b
    Example:
      erp-sync db upgrade
    """


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: the latest).

    \b
    Example:
      erp-sync db upgrade head
    """
    from loaders import schema

    handle = open_database(check_schema=False)
    before = schema.current_revision(handle.engine)
    _migrate(schema.upgrade, handle.engine, revision, before)
    after = schema.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION ('base' removes every table of erp-sync).

    \b
    Example:
      erp-sync db downgrade base
    """
    from loaders import schema

    handle = open_database(check_schema=False)
    before = schema.current_revision(handle.engine)
    _migrate(schema.downgrade, handle.engine, revision, before)
    after = schema.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


def _migrate(
    migrate: Callable[[Engine, str], None], engine: Engine, revision: str, before: str | None
) -> None:
    """Run one Alembic migration command; say in one line why it could not go to revision."""
    import sqlalchemy as sa
    from alembic.util import CommandError

    try:
        migrate(engine, revision)
    except CommandError as exc:  # Alembic's word for a revision it cannot go to
        raise UsageError(
            f"cannot migrate to revision {revision!r}: {one_line(exc)} "
            "(`erp-sync db current` shows the current and the latest revision)"
        ) from exc
    except sa.exc.SQLAlchemyError:
        raise  # the database itself failed: not the migration's decision
    except Exception as exc:
        # A migration that refuses (0004 on colliding customer numbers) raises its reason; the
        # upgrade is one transaction, so the schema is where it was.
        raise CommandFailedError(
            f"the migration to {revision!r} was refused, the schema is still at "
            f"{before or 'empty'}: {one_line(exc, joined=True)}"
        ) from exc


@db.command("current")
def db_current() -> None:
    """Print the schema's revision and the latest one.

    \b
    Example:
      erp-sync db current
    """
    from loaders import schema

    handle = open_database(check_schema=False)
    current = schema.current_revision(handle.engine)
    head = schema.head_revision(handle.engine)
    state = "up to date" if current == head else "behind: run `erp-sync db upgrade`"
    click.echo(f"{current or 'empty'} (latest {head}, {state})")
