"""`erp-sync serve`: the nightly sync on a schedule, as a Prefect deployment."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.common import UsageError
from flows.settings import get_settings


@click.command("serve")
@click.option(
    "--cron",
    default="0 2 * * *",
    show_default=True,
    help="When the nightly sync runs (cron expression).",
)
@click.option(
    "--timezone",
    "timezone_name",
    metavar="TZ",
    help="IANA time zone of the cron expression (default: this machine's zone).",
)
@click.option(
    "--inbox",
    type=click.Path(file_okay=False, path_type=Path),
    help="The inbox folder (default ERP_SYNC_INBOX, else ./inbox).",
)
def serve_command(cron: str, timezone_name: str | None, inbox: Path | None) -> None:
    """Serve the nightly sync as the Prefect deployment nightly-sync/nightly, until stopped.

    Uses the Prefect server of PREFECT_API_URL; without one it starts a local Prefect server
    (with its scheduler, data under ERP_SYNC_HOME/prefect) for as long as it serves. Runs never
    overlap: a run due while the previous one is still going is cancelled.

    \b
    Example:
      erp-sync serve --cron "30 1 * * *" --timezone Europe/Berlin --inbox /srv/erp/inbox
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import serve

    try:
        serve.build_deployment(cron=cron, timezone=timezone_name, inbox=inbox)  # validate first
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if PREFECT_API_URL.value():
        serve.serve_deployment(serve.build_deployment(cron, timezone_name, inbox))
        return
    with serve.local_prefect_server(get_settings().home) as url:
        click.echo(f"started a local Prefect server: {url.removesuffix('/api')}", err=True)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            serve.serve_deployment(serve.build_deployment(cron, timezone_name, inbox))
