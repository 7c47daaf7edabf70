"""What the commands share: the import options, usage errors, the database, the run summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flows.cli.formatting import format_summary
from flows.settings import get_settings

if TYPE_CHECKING:  # both import sqlalchemy or polars: the commands import them when they run
    from contract import Summary
    from flows.importing import ImportOptions
    from flows.runtime import Database


class UsageError(Exception):
    """A mistake in how erp-sync was called: exit 2 with a one-line message."""


class CommandFailedError(Exception):
    """A known failure that the message explains (exit 4 with a one-line message)."""


def one_line(exc: BaseException, *, joined: bool = False) -> str:
    """The message of exc on one line: its first line, or (joined) all its lines joined by '; '."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if not joined:
        return lines[0]
    text = lines[0]
    for line in lines[1:]:
        text += (" " if text.endswith(":") else "; ") + line
    return text


def open_database(*, check_schema: bool = True) -> Database:
    """The database of this process's settings (embedded or DATABASE_URL), opened once."""
    from flows.runtime import open_database as open_settings_database

    return open_settings_database(get_settings(), check_schema=check_schema)


def use_prefect(*, wait: bool = True) -> str:
    """Point Prefect at its server before Prefect is imported: PREFECT_API_URL, else the shared
    local server of ERP_SYNC_HOME (started if needed, never Prefect's temporary server).

    wait=False: a server that is starting is waited for by `prefect_ready()`, so the command can
    do its database work while it starts.
    """
    from flows.servers import configure_prefect

    settings = get_settings()
    return configure_prefect(
        settings.home,
        settings.server_idle_minutes,
        wait=wait,
        startup_seconds=settings.prefect_startup_seconds,
    )


def prefect_ready() -> None:
    """Wait for the Prefect server `use_prefect(wait=False)` started, if it is still starting;
    on the shared local server, drop the flow runs' heartbeat thread (`drop_flow_heartbeats`).
    Called when Prefect is imported, just before the command runs its flow."""
    from flows.servers import drop_flow_heartbeats, wait_for_prefect

    wait_for_prefect()
    drop_flow_heartbeats()


def check_rate(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: a rate option must lie between 0 and 1."""
    if value is not None and not 0 <= value <= 1:
        raise click.BadParameter(f"{value:g} is not a rate between 0 and 1", ctx, param)
    return value


def parse_as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback: an ISO 8601 date or time (UTC when it names no zone)."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or time such as 2026-11-20 or 2026-11-20T02:00", ctx, param
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


report_dir_option = click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where run folders go (default ERP_SYNC_REPORT_DIR, else ./reports).",
)


def import_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by `import` and `sync`."""
    decorators = [
        click.option(
            "--mode",
            type=click.Choice(["upsert", "full"]),
            default="upsert",
            show_default=True,
            help="full: the file is the complete customer list (deactivate the others).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Do everything and write the reports, but change no customer or contact.",
        ),
        report_dir_option,
        click.option(
            "--max-error-rate",
            type=float,
            callback=check_rate,
            metavar="R",
            help="Reject the whole file when rejected rows / data rows > R (0..1).",
        ),
        click.option(
            "--max-deactivate-rate",
            type=float,
            callback=check_rate,
            metavar="R",
            help="Full mode: reject the file when deactivations / active customers > R.",
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Apply the file even if the same bytes were applied before.",
        ),
        click.option(
            "--profile",
            default="erp-sync",
            show_default=True,
            metavar="NAME|PATH",
            help="The source profile that maps the export onto erp-sync's columns: a shipped "
            "one (erp-sync profile list) or a .toml file.",
        ),
        click.option(
            "--strict-header",
            is_flag=True,
            help="Reject a file that lacks a column the organisation's last applied file of "
            "this profile had.",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print the summary as JSON instead of the human summary.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def schedule_options(what: str, inbox_help: str) -> Callable[..., Any]:
    """The options `serve` and `deploy` share: --cron (when `what` runs), --timezone, --inbox."""
    decorators = [
        click.option(
            "--cron",
            default="0 2 * * *",
            show_default=True,
            help=f"When {what} runs (cron expression).",
        ),
        click.option(
            "--timezone",
            "timezone_name",
            metavar="TZ",
            help="IANA time zone of the cron expression (default: this machine's zone).",
        ),
        click.option(
            "--inbox",
            type=click.Path(file_okay=False, path_type=Path),
            help=inbox_help,
        ),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def build_import_options(options: dict[str, Any]) -> ImportOptions:
    """The ImportOptions of the command line's import options (report dir from the settings).

    The profile is loaded once here, so that a bad one is a usage error before any run starts.
    """
    from flows.importing import ImportOptions

    report_dir = options.pop("report_dir", None) or get_settings().report_dir
    check_profile(options.get("profile") or "erp-sync")
    return ImportOptions(report_dir=Path(report_dir), **options)


def echo_notice(message: str, *, error: bool = False) -> None:
    """One line on stderr: `erp-sync: error: ...` for what needs doing, `erp-sync: ...` else."""
    click.echo(f"erp-sync: {'error: ' if error else ''}{message}", err=True)


def check_profile(name_or_path: str) -> None:
    """Load a profile; a missing or invalid one is a usage error naming the file and line."""
    from validators.profiles import ProfileError, load_profile

    try:
        load_profile(name_or_path)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def print_summary(summary: Summary, *, as_json: bool) -> None:
    """Print a run's summary: the summary.json document, or the short human summary."""
    if as_json:
        click.echo(json.dumps(summary.to_json_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(format_summary(summary))
