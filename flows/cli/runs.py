"""`erp-sync runs` and `erp-sync report`: past runs and one run's summary."""

from __future__ import annotations

import json

import click

from flows.cli.common import UsageError, open_database, print_summary
from flows.cli.formatting import format_runs_table


@click.command("runs")
@click.option("--org", "org_slug", help="Only this organisation's runs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runs_command(org_slug: str | None, limit: int, as_json: bool) -> None:
    """List past runs, newest first.

    \b
    Example:
      erp-sync runs --org acme --limit 5
    """
    from loaders.orgs import get_org
    from loaders.runs import list_runs

    handle = open_database()
    with handle.engine.connect() as conn:
        if org_slug is not None:
            get_org(conn, org_slug)
        summaries = list_runs(conn, org_slug, limit)
    if as_json:
        documents = [summary.to_json_dict() for summary in summaries]
        click.echo(json.dumps(documents, indent=2, ensure_ascii=False))
        return
    if not summaries:
        click.echo("no runs yet")
        return
    click.echo(format_runs_table(summaries))


@click.command("report")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the summary.json document.")
def report_command(run_id: str, as_json: bool) -> None:
    """Print one run's summary (RUN_ID, or a unique prefix of it).

    \b
    Example:
      erp-sync report 3f2a9c1e --json
    """
    from loaders.runs import get_run

    handle = open_database()
    with handle.engine.connect() as conn:
        summary = get_run(conn, run_id)
    if summary is None:
        raise UsageError(f"no run with id {run_id!r} (see `erp-sync runs`)")
    print_summary(summary, as_json=as_json)
