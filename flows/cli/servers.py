"""`erp-sync ui` and `erp-sync stop`: the local Prefect UI, and stopping the shared servers."""

from __future__ import annotations

import os

import click

from flows.cli.common import use_prefect
from flows.settings import get_settings


@click.command("ui")
def ui_command() -> None:
    """Print the address of the Prefect UI (the local one is started on demand and shared).

    With PREFECT_API_URL set, the UI of that server; otherwise the shared local Prefect server
    of ERP_SYNC_HOME, started if it is not running. Opens a browser when a desktop is present.

    \b
    Example:
      erp-sync ui
    """
    from flows.servers import ui_address

    address = ui_address(use_prefect())
    click.echo(address)
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        import webbrowser

        webbrowser.open(address)


@click.command("stop")
def stop_command() -> None:
    """Stop the servers erp-sync started: the shared Prefect server and the embedded PostgreSQL.

    Only those of ERP_SYNC_HOME; a server named by PREFECT_API_URL or DATABASE_URL is not
    erp-sync's and is left alone. Both start again on demand with the next command.

    \b
    Example:
      erp-sync stop
    """
    from flows.servers import stop_servers

    home = get_settings().home
    stopped = stop_servers(home)
    if not stopped:
        click.echo(f"nothing was running under {home}")
        return
    for server in stopped:
        click.echo(f"stopped {server}")
