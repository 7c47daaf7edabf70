"""`erp-sync import`: one ad hoc import of one export, as a Prefect flow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flows.cli.common import (
    UsageError,
    build_import_options,
    echo_notice,
    import_options,
    open_database,
    parse_as_of,
    prefect_ready,
    print_summary,
    use_prefect,
)


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@click.option(
    "--contacts",
    type=click.Path(path_type=Path),
    help="The contacts file of a two-file export (a profile with a two-file layout).",
)
@click.option(
    "--as-of",
    "as_of",
    callback=parse_as_of,
    metavar="TIMESTAMP",
    help="The export's as-of time (2026-11-20 or 2026-11-20T02:00) when its name holds none.",
)
@import_options
def import_command(
    file: Path, org_slug: str, contacts: Path | None, as_json: bool, **options: Any
) -> int:
    """Import one ERP export FILE for an organisation, as a Prefect flow run.

    Exit codes: 0 succeeded or skipped, 1 partial, 2 usage error, 3 rejected, 4 failed,
    5 applied but the report files could not be written (`erp-sync report RUN_ID --write`).

    The missing report files of the organisation's earlier runs (a kill after the commit, a
    full disk) are written first, one line on stderr per run.

    \b
    Example:
      erp-sync import kunden.csv --org acme --mode full --max-deactivate-rate 0.05
      erp-sync import KNA1.csv --org acme --profile sap
      erp-sync import accounts.csv --contacts contacts.csv --org acme --profile dynamics365
    """
    from loaders.orgs import get_org

    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    if contacts is not None and not contacts.is_file():
        raise UsageError(f"no such file: {contacts}")
    run_options = build_import_options({**options, "contacts": contacts})
    if contacts is not None:
        from validators.profiles import load_profile

        if not load_profile(run_options.profile).two_files:
            raise UsageError(
                f"--contacts needs a profile with a two-file layout; '{run_options.profile}' "
                "has none (see `erp-sync profile show`)"
            )
    use_prefect(wait=False)  # it may start while the database opens
    handle = open_database()
    with handle.engine.connect() as conn:
        organisation = get_org(conn, org_slug)  # unknown organisation: exit 2 before any run
    from flows.import_flow import import_file
    from flows.importing import write_missing_reports, write_reports_index

    for rewritten in write_missing_reports(handle.engine, organisation.id, run_options.report_dir):
        echo_notice(rewritten.message(), error=rewritten.error is not None)

    if not as_json:
        from flows.progress import enable_terminal_progress

        enable_terminal_progress()
    prefect_ready()
    result = import_file(str(file), org_slug, run_options)
    write_reports_index(handle.engine, run_options.report_dir)
    print_summary(result.summary, as_json=as_json)
    message = result.reports_error_message()
    if message is not None:
        echo_notice(message, error=True)
    return result.exit_code
