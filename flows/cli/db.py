"""`erp-sync db`: the schema's Alembic migrations."""

from __future__ import annotations

import click

from flows.cli.common import open_database


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
    schema.upgrade(handle.engine, revision)
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
    schema.downgrade(handle.engine, revision)
    after = schema.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


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
