"""`erp-sync runs` and `erp-sync report`: past runs and one run's summary."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flows.cli.common import (
    UsageError,
    echo_notice,
    open_database,
    print_summary,
    report_dir_option,
)
from flows.cli.formatting import format_runs_table
from flows.settings import get_settings


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
@click.option(
    "--write",
    is_flag=True,
    help="Write the run's report files again from the database (as its import wrote them).",
)
@report_dir_option
def report_command(run_id: str, as_json: bool, write: bool, report_dir: Path | None) -> int:
    """Print one run's summary (RUN_ID, or a unique prefix of it); --write writes its files.

    With --write, the run's summary.json, errors.csv, rejected_rows.csv and report.html are
    written again from what the run recorded: into <DIR>/<run_id>/ for --report-dir DIR (else
    ERP_SYNC_REPORT_DIR when it is set), else into the run's recorded folder. Exit code 0 when
    written, 5 when they could not be (the message says where and why).

    \b
    Example:
      erp-sync report 3f2a9c1e --write --report-dir /srv/erp/reports
    """
    from contract import ExitCode
    from loaders.runs import find_run_id, get_run

    handle = open_database()
    with handle.engine.connect() as conn:
        found = find_run_id(conn, run_id)
        summary = get_run(conn, str(found)) if found is not None else None
    if found is None or summary is None:
        raise UsageError(f"no run with id {run_id!r} (see `erp-sync runs`)")
    if not write:
        print_summary(summary, as_json=as_json)
        return ExitCode.OK
    from flows.importing import ReportsNotStoredError, write_reports_again

    settings = get_settings()
    if report_dir is None and "report_dir" in settings.model_fields_set:
        report_dir = settings.report_dir
    try:
        result = write_reports_again(handle.engine, found, report_dir)
    except ReportsNotStoredError as exc:
        raise UsageError(str(exc)) from exc
    if as_json:
        print_summary(result.summary, as_json=True)
    message = result.reports_error_message()
    if message is not None:
        echo_notice(message, error=True)
        return ExitCode.REPORTS_NOT_WRITTEN
    if not as_json:
        click.echo(f"wrote the reports of run {found} to {result.summary.report_dir}")
    return ExitCode.OK
