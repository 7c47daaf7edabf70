"""The `erp-sync sync` and `erp-sync serve` commands, added to the CLI group of flows/cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flows.cli import UsageError, _build_options, _database, cli, import_options
from flows.settings import get_settings


@cli.command("sync")
@click.argument("inbox", type=click.Path(path_type=Path))
@import_options
def sync_command(inbox: Path, as_json: bool, **options: Any) -> int:
    """Import every new export under INBOX/<org-slug>/ (.csv, .txt, .tsv), as a Prefect flow run.

    A file is new when its bytes were never applied for that organisation. Each file is its own
    subflow run; organisations run in parallel (ERP_SYNC_SYNC_CONCURRENCY), the files of one
    organisation one at a time in name order. INBOX/<org-slug>/erp-sync.toml may set mode,
    max_error_rate and max_deactivate_rate for that organisation. The inbox is never modified.

    Exit code: the highest of the files' (0 succeeded or skipped, 1 partial, 3 rejected,
    4 failed), and 2 when a folder names an unknown organisation or has an invalid erp-sync.toml.
    """
    if not inbox.is_dir():
        raise UsageError(f"no such inbox folder: {inbox}")
    _database()  # schema behind or database down: exit before any run starts
    sync_options = _build_options(options)
    from flows.sync_flow import sync_inbox

    if not as_json:
        from flows.progress import enable_terminal_progress

        enable_terminal_progress()

    result = sync_inbox(str(inbox), sync_options)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(format_sync_result(result))
    code: int = result["exit_code"]
    return code


def format_sync_result(result: dict[str, Any]) -> str:
    """The per-file table of a sync, the organisations it skipped, and where index.html is."""
    header = ("org", "file", "status", "exit", "reports")
    rows = [
        (f["org"], Path(f["file"]).name, f["status"], str(f["exit_code"]), f["report_dir"] or "-")
        for f in result["files"]
    ]
    rows += [
        (
            e["org"],
            "-",
            "unknown organisation" if e["code"] == "unknown_org" else "invalid settings",
            str(e["exit_code"]),
            "-",
        )
        for e in result["org_errors"]
    ]
    lines = []
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    else:
        lines.append("nothing new to import")
    for error in result["org_errors"]:
        lines.append(f"{error['org']}: skipped: {error['message']}")
    skipped = result["skipped_already_applied"]
    if skipped:
        lines.append(f"{skipped} file(s) already applied before: skipped (use --force to apply)")
    lines.append(f"index: {result['index']}")
    lines.append(f"exit code {result['exit_code']}")
    return "\n".join(lines)


@cli.command("serve")
@click.option(
    "--cron",
    default="0 2 * * *",
    show_default=True,
    help="When the nightly sync runs (cron expression).",
)
@click.option(
    "--timezone",
    "timezone_name",
    metavar="TZ",
    help="IANA time zone of the cron expression (default: this machine's zone).",
)
@click.option(
    "--inbox",
    type=click.Path(file_okay=False, path_type=Path),
    help="The inbox folder (default ERP_SYNC_INBOX, else ./inbox).",
)
def serve_command(cron: str, timezone_name: str | None, inbox: Path | None) -> None:
    """Serve the nightly sync as the Prefect deployment nightly-sync/nightly, until stopped.

    Uses the Prefect server of PREFECT_API_URL; without one it starts a local Prefect server
    (with its scheduler, data under ERP_SYNC_HOME/prefect) for as long as it serves. Runs never
    overlap: a run due while the previous one is still going is cancelled.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import serve

    try:
        serve.build_deployment(cron=cron, timezone=timezone_name, inbox=inbox)  # validate first
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if PREFECT_API_URL.value():
        serve.serve_deployment(serve.build_deployment(cron, timezone_name, inbox))
        return
    with serve.local_prefect_server(get_settings().home) as url:
        click.echo(f"started a local Prefect server: {url.removesuffix('/api')}", err=True)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            serve.serve_deployment(serve.build_deployment(cron, timezone_name, inbox))
