"""`erp-sync demo`: the quick start over the sample inbox."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli.common import (
    UsageError,
    build_import_options,
    open_database,
    prefect_ready,
    report_dir_option,
    use_prefect,
)
from flows.cli.formatting import format_runs_table, format_sync_result
from flows.settings import get_settings

SAMPLE_INBOX = Path(__file__).resolve().parents[2] / "sample_data" / "inbox"


@click.command("demo")
@click.option(
    "--inbox",
    type=click.Path(file_okay=False, path_type=Path),
    default=SAMPLE_INBOX,
    show_default=True,
    help="The inbox to sync (one folder per organisation).",
)
@report_dir_option
def demo_command(inbox: Path, report_dir: Path | None) -> int:
    """The quick start: database, sample organisations, the nightly sync over the sample inbox.

    Uses the embedded PostgreSQL unless DATABASE_URL is set. Running it again applies nothing
    new (every sample file was applied already) and exits 0.

    \b
    Example:
      erp-sync demo --report-dir /tmp/erp-sync-demo
    """
    from contract import ExitCode
    from loaders.orgs import add_org

    if not inbox.is_dir():
        raise UsageError(f"no such inbox folder: {inbox}")
    use_prefect(wait=False)  # it may start while the database opens
    handle = open_database()
    where = (
        "embedded PostgreSQL under " + str(get_settings().home)
        if handle.embedded
        else "DATABASE_URL"
    )
    click.echo(f"database: {where} (schema at the latest migration)")
    with handle.engine.begin() as conn:
        for folder in sorted(
            p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            organisation = add_org(conn, folder.name, folder.name.replace("-", " ").title())
            click.echo(f"organisation {organisation.slug}: {organisation.id}")
    from flows.progress import enable_terminal_progress
    from flows.sync_flow import sync_inbox
    from loaders.runs import list_runs

    enable_terminal_progress()
    options = build_import_options({"report_dir": report_dir})
    prefect_ready()
    result = sync_inbox(str(inbox), options)

    click.echo("")
    click.echo(format_sync_result(result))
    with handle.engine.connect() as conn:
        summaries = list_runs(conn, None, 20)
    click.echo("\nlatest runs:")
    click.echo(format_runs_table(summaries) if summaries else "no runs yet")
    click.echo(f"\nopen the reports: {Path(result['index']).resolve()}")
    # The sample inbox holds a file with mistakes on purpose: the demo itself succeeded.
    return ExitCode.OK
