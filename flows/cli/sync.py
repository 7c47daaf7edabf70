"""`erp-sync sync`: the nightly sync of an inbox, as a Prefect flow run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flows.cli.common import (
    UsageError,
    build_import_options,
    echo_notice,
    import_options,
    open_database,
    prefect_ready,
    use_prefect,
)
from flows.cli.formatting import format_sync_result


@click.command("sync")
@click.argument("inbox", type=click.Path(path_type=Path))
@import_options
def sync_command(inbox: Path, as_json: bool, **options: Any) -> int:
    """Import every new export under INBOX/<org-slug>/ (.csv, .txt, .tsv), as a Prefect flow run.

    A file is new when its bytes were never applied for that organisation. Each file is its own
    subflow run; organisations run in parallel (ERP_SYNC_SYNC_CONCURRENCY), the files of one
    organisation one at a time in as-of order (the date in the file name), then by name; an
    export older than one already applied is refused (stale_export, exit 3).
    INBOX/<org-slug>/erp-sync.toml may set mode, max_error_rate, max_deactivate_rate, profile
    and strict_header for that organisation. The inbox is never modified. ERP_SYNC_HISTORY_DAYS,
    when set, prunes the change history older than that after the sync.

    Exit code: the highest of the files' (0 succeeded or skipped, 1 partial, 3 rejected,
    4 failed, 5 applied but the report files could not be written), and 2 when a folder names
    an unknown organisation or has an invalid erp-sync.toml. The missing report files of the
    organisations' earlier runs are written first, one line on stderr per run.

    \b
    Example:
      erp-sync sync ./inbox --max-error-rate 0.1
    """
    if not inbox.is_dir():
        raise UsageError(f"no such inbox folder: {inbox}")
    use_prefect(wait=False)  # it may start while the database opens
    open_database()  # schema behind or database down: exit before any run starts
    sync_options = build_import_options(options)
    from flows.sync_flow import sync_inbox

    if not as_json:
        from flows.progress import enable_terminal_progress

        enable_terminal_progress()

    prefect_ready()
    result = sync_inbox(str(inbox), sync_options)
    for recovered in result["reports_recovered"]:
        echo_notice(recovered["message"], error=recovered["error"] is not None)
    for file in result["files"]:
        if file["reports_error"]:
            echo_notice(file["reports_error"], error=True)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(format_sync_result(result))
    code: int = result["exit_code"]
    return code
