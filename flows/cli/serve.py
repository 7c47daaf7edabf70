"""`erp-sync serve`: the nightly sync on a schedule, as a Prefect deployment."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.common import UsageError, schedule_options, use_prefect


@click.command("serve")
@schedule_options(
    "the nightly sync", inbox_help="The inbox folder (default ERP_SYNC_INBOX, else ./inbox)."
)
def serve_command(cron: str, timezone_name: str | None, inbox: Path | None) -> None:
    """Serve the nightly sync as the Prefect deployment nightly-sync/nightly, until stopped.

    Uses the Prefect server of PREFECT_API_URL; without one, the shared local Prefect server of
    ERP_SYNC_HOME (started if needed, with its scheduler, data under ERP_SYNC_HOME/prefect; see
    `erp-sync ui`), which keeps running while it serves. Runs never overlap: a run due while the
    previous one is still going is cancelled.

    \b
    Example:
      erp-sync serve --cron "30 1 * * *" --timezone Europe/Berlin --inbox /srv/erp/inbox
    """
    from flows.servers import configured_prefect_url, ui_address

    shared = configured_prefect_url() is None
    url = use_prefect()
    from flows import serve

    try:
        deployment = serve.build_deployment(cron=cron, timezone=timezone_name, inbox=inbox)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if shared:
        click.echo(f"using the local Prefect server: {ui_address(url)}", err=True)
    serve.serve_deployment(deployment)
