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
@click.option(
    "--work-pool",
    "work_pool",
    metavar="POOL",
    help="Fan the night out as shard runs on this Prefect work pool (see `erp-sync deploy`).",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    help="With --work-pool: how many shards (default: twice the pool's online workers, else 4).",
)
def sync_command(
    inbox: Path, as_json: bool, work_pool: str | None, shards: int | None, **options: Any
) -> int:
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

    With --work-pool POOL (on the Prefect server of PREFECT_API_URL, after `erp-sync deploy
    --work-pool POOL`) the organisations are packed into shards by input bytes (an organisation
    is never split) and each shard runs as a deployment run on the pool's workers; the command
    waits for them all and its result and exit code are the whole night's.

    \b
    Example:
      erp-sync sync ./inbox --max-error-rate 0.1
      erp-sync sync /srv/erp/inbox --work-pool erp-night
    """
    if not inbox.is_dir():
        raise UsageError(f"no such inbox folder: {inbox}")
    if shards is not None and work_pool is None:
        raise UsageError("--shards needs --work-pool")
    if work_pool is not None:
        return _sync_on_pool(inbox, work_pool, shards, as_json, options)
    use_prefect(wait=False)  # it may start while the database opens
    open_database()  # schema behind or database down: exit before any run starts
    sync_options = build_import_options(options)
    from flows.sync_flow import sync_inbox

    if not as_json:
        from flows.progress import enable_terminal_progress

        enable_terminal_progress()

    prefect_ready()
    result = sync_inbox(str(inbox), sync_options)
    return _show(result, as_json)


def _sync_on_pool(
    inbox: Path, work_pool: str, shards: int | None, as_json: bool, options: dict[str, Any]
) -> int:
    """The night as shard runs on a work pool, dispatched (and waited for) by this process."""
    from flows.servers import configured_prefect_url

    if not configured_prefect_url():
        raise UsageError(
            "--work-pool needs PREFECT_API_URL: the Prefect server the pool's workers use"
        )
    open_database()
    sync_options = build_import_options(options)
    from flows import fleet

    try:
        fleet.check_shard_deployment(work_pool)
    except fleet.FleetError as exc:
        raise UsageError(str(exc)) from None
    result = fleet.dispatch_night(str(inbox), work_pool, sync_options, shards)
    return _show(result, as_json)


def _show(result: dict[str, Any], as_json: bool) -> int:
    for recovered in result["reports_recovered"]:
        echo_notice(recovered["message"], error=recovered["error"] is not None)
    for file in result["files"]:
        if file["reports_error"]:
            echo_notice(file["reports_error"], error=True)
    for shard in result.get("shards", []):
        if shard["failure"]:
            echo_notice(f"shard {shard['key']}: {shard['failure']}", error=True)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(format_sync_result(result))
    code: int = result["exit_code"]
    return code
