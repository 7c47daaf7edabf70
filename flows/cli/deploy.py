"""`erp-sync deploy`: the nightly dispatch and the shard deployments on a Prefect work pool."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.common import UsageError, schedule_options


@click.command("deploy")
@click.option("--work-pool", "work_pool", required=True, metavar="POOL", help="The work pool.")
@schedule_options(
    "the nightly dispatch",
    inbox_help="The inbox the night syncs, as the workers see it (default ERP_SYNC_INBOX, else "
    "./inbox).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where run folders go, as workers see it (default ERP_SYNC_REPORT_DIR, else ./reports).",
)
@click.option(
    "--db-slots",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Size of the global concurrency limit erp-sync-db: load transactions open at once.",
)
def deploy_command(
    work_pool: str,
    cron: str,
    timezone_name: str | None,
    inbox: Path | None,
    report_dir: Path | None,
    db_slots: int,
) -> None:
    """Register the night on a Prefect work pool, on the server of PREFECT_API_URL.

    Creates or updates: the deployment erp-sync-night/POOL (the dispatch, on the schedule), the
    deployment erp-sync-shard/POOL (one run per shard, started by the dispatch), the global
    concurrency limit erp-sync-db (--db-slots) and, when missing, POOL as a process work pool.
    Workers are Prefect's own: `prefect worker start --pool POOL` on each machine that has
    erp-sync installed, DATABASE_URL set and the inbox and report folder at the same paths.
    Run it again to change anything: it updates what exists.

    \b
    Example:
      erp-sync deploy --work-pool erp-night --cron "0 2 * * *" --timezone Europe/Berlin \\
        --inbox /srv/erp/inbox --db-slots 8
    """
    from flows.servers import configured_prefect_url
    from flows.settings import get_settings

    if not configured_prefect_url():
        raise UsageError(
            "PREFECT_API_URL is not set: deploy registers on a Prefect server that workers "
            "reach (e.g. PREFECT_API_URL=http://prefect.internal:4200/api)"
        )
    settings = get_settings()
    from flows import fleet

    try:
        done = fleet.deploy(
            work_pool,
            cron=cron,
            timezone=timezone_name,
            inbox=inbox if inbox is not None else settings.inbox,
            report_dir=report_dir if report_dir is not None else settings.report_dir,
            db_slots=db_slots,
        )
    except fleet.FleetError as exc:
        raise UsageError(str(exc)) from None
    for line in done:
        click.echo(line)
    click.echo(f"start workers with: prefect worker start --pool {work_pool}")
