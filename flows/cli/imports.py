"""`erp-sync import`: one ad hoc import of one export, as a Prefect flow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flows.cli.common import (
    UsageError,
    build_import_options,
    import_options,
    open_database,
    prefect_ready,
    print_summary,
    use_prefect,
)


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@import_options
def import_command(file: Path, org_slug: str, as_json: bool, **options: Any) -> int:
    """Import one ERP export FILE for an organisation, as a Prefect flow run.

    Exit codes: 0 succeeded or skipped, 1 partial, 2 usage error, 3 rejected, 4 failed.

    \b
    Example:
      erp-sync import kunden.csv --org acme --mode full --max-deactivate-rate 0.05
    """
    from loaders.orgs import get_org

    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    use_prefect(wait=False)  # it may start while the database opens
    handle = open_database()
    with handle.engine.connect() as conn:
        get_org(conn, org_slug)  # unknown organisation: exit 2 before any run starts
    run_options = build_import_options(options)
    from flows.import_flow import import_file

    if not as_json:
        from flows.progress import enable_terminal_progress

        enable_terminal_progress()
    prefect_ready()
    summary = import_file(str(file), org_slug, run_options)
    from flows.sync_flow import write_reports_index

    write_reports_index(handle.engine, run_options.report_dir)
    print_summary(summary, as_json=as_json)
    return summary.exit_code
