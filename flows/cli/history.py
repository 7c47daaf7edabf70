"""`erp-sync changes`, `history` (and `history prune`) and `revert`: what runs changed, and undo."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flows.cli.common import UsageError, open_database

if TYPE_CHECKING:
    from loaders.history import CustomerChanges, RunInfo


class RevertRefusedExit(Exception):
    """A revert refused because later runs are in its way (exit 3, the message names them)."""


def _find_run(conn: Any, run_id: str) -> uuid.UUID:
    from loaders.runs import find_run_id

    found = find_run_id(conn, run_id)
    if found is None:
        raise UsageError(f"no run with id {run_id!r} (see `erp-sync runs`)")
    return found


def _value(value: Any) -> str:
    return "(empty)" if value is None else json.dumps(value, ensure_ascii=False)


def _customer_json(change: CustomerChanges) -> dict[str, Any]:
    return {
        "erp_customer_number": change.erp_customer_number,
        "action": change.action,
        "fields": [{"field": f.field, "before": f.before, "after": f.after} for f in change.fields],
        "contacts": [
            {
                "email": c.email,
                "action": c.action,
                "fields": [
                    {"field": f.field, "before": f.before, "after": f.after} for f in c.fields
                ],
            }
            for c in change.contacts
        ],
    }


def _run_json(run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": str(run.id),
        "org": run.org,
        "source": run.source,
        "mode": run.mode,
        "status": run.status,
        "dry_run": run.dry_run,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "reverts": str(run.reverts) if run.reverts else None,
        "reverted_by": str(run.reverted_by) if run.reverted_by else None,
        "history_pruned": run.history_pruned_at is not None,
    }


def _customer_lines(change: CustomerChanges) -> list[str]:
    lines = [f"  {change.erp_customer_number}  {change.action or 'contacts changed'}"]
    for f in change.fields:
        lines.append(f"      {f.field}: {_value(f.before)} -> {_value(f.after)}")
    for contact in change.contacts:
        lines.append(f"      contact {contact.email} {contact.action}")
        for f in contact.fields:
            lines.append(f"          {f.field}: {_value(f.before)} -> {_value(f.after)}")
    return lines


def _run_line(run: RunInfo) -> str:
    finished = (run.finished_at or run.started_at).isoformat()[:19].replace("T", " ")
    notes = []
    if run.reverts:
        notes.append(f"reverts {run.reverts}")
    if run.reverted_by:
        notes.append(f"reverted by {run.reverted_by}")
    if run.history_pruned_at:
        notes.append("history pruned")
    extra = f"; {'; '.join(notes)}" if notes else ""
    return (
        f"run {run.id} ({run.org}: {Path(run.source).name}, {run.mode}, {run.status}, "
        f"{finished} UTC{extra})"
    )


@click.command("changes")
@click.argument("run_id")
@click.option("--customer", "number", help="Only this customer (its ERP customer number).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def changes_command(run_id: str, number: str | None, as_json: bool) -> None:
    """What one run (RUN_ID, or a unique prefix) changed: per customer, the fields before -> after.

    \b
    Example:
      erp-sync changes 3f2a9c1e --customer 0000123
    """
    from loaders import history

    handle = open_database()
    with handle.engine.connect() as conn:
        run = history.get_run_info(conn, _find_run(conn, run_id))
        assert run is not None
        changes = history.run_changes(conn, run, number)
    if as_json:
        document = _run_json(run) | {"customers": [_customer_json(c) for c in changes]}
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    lines = [_run_line(run)]
    if not run.applied:
        lines.append("  the run applied nothing")
    elif not changes:
        lines.append("  no change recorded" + (" for this customer" if number else ""))
    for change in changes:
        lines += _customer_lines(change)
    click.echo("\n".join(lines))


@click.group("history", invoke_without_command=True)
@click.option("--org", "org_slug", help="The organisation's slug.")
@click.option("--customer", "number", help="The customer's ERP customer number.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def history_group(
    ctx: click.Context, org_slug: str | None, number: str | None, as_json: bool
) -> None:
    """Every run that touched one customer, newest first, with its changes.

    `erp-sync history prune --older-than 90d` deletes old history.

    \b
    Example:
      erp-sync history --org acme --customer 0000123
    """
    if ctx.invoked_subcommand is not None:
        return
    if org_slug is None or number is None:
        raise UsageError("history needs --org SLUG and --customer NUMBER (or `history prune`)")
    from loaders import history
    from loaders.orgs import get_org

    handle = open_database()
    with handle.engine.connect() as conn:
        organisation = get_org(conn, org_slug)
        runs = history.customer_history(conn, organisation.id, number)
    if as_json:
        document = {
            "org": org_slug,
            "erp_customer_number": number,
            "runs": [_run_json(run) | _customer_json(change) for run, change in runs],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if not runs:
        click.echo(f"{org_slug}: no recorded run touched customer {number}")
        return
    lines = []
    for run, change in runs:
        lines.append(_run_line(run))
        lines += _customer_lines(change)
    click.echo("\n".join(lines))


_DAYS = re.compile(r"^\s*(\d+)\s*d?\s*$")


def parse_days(text: str) -> int:
    """`90d` or `90` -> 90."""
    match = _DAYS.match(text)
    if match is None:
        raise UsageError(f"--older-than takes a number of days such as 90d, not {text!r}")
    return int(match.group(1))


@history_group.command("prune")
@click.option("--older-than", "older_than", required=True, metavar="DAYSd", help="e.g. 90d")
def prune_command(older_than: str) -> None:
    """Delete the change history of runs older than DAYS days; never customers or contacts.

    The runs stay (with their figures and per-field counts) but can no longer be reverted.
    ERP_SYNC_HISTORY_DAYS does the same after every sync.

    \b
    Example:
      erp-sync history prune --older-than 90d
    """
    from loaders.history import prune_history

    days = parse_days(older_than)
    handle = open_database()
    with handle.engine.begin() as conn:
        pruned = prune_history(conn, datetime.now(UTC) - timedelta(days=days))
    click.echo(
        f"pruned the history of {pruned.runs} run(s) older than {days} days "
        f"({pruned.rows} row(s) deleted)"
    )


@click.command("revert")
@click.argument("run_id")
@click.option("--cascade", is_flag=True, help="Revert the later runs in the way first.")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the revert runs' summaries as JSON.")
def revert_command(run_id: str, cascade: bool, dry_run: bool, as_json: bool) -> int:
    """Undo one applied run (RUN_ID, or a unique prefix), in one transaction.

    Puts back every value the run changed, deletes the customers and contacts it inserted,
    reactivates what it deactivated (and the reverse), and restores the primary contacts. The
    revert is a run of its own (mode revert), which can be reverted too; the reverted run's
    file counts as not applied. Refused (exit 3) when later runs changed the same customers,
    unless --cascade reverts them first, newest first.

    \b
    Example:
      erp-sync revert 3f2a9c1e --dry-run
    """
    from contract import ExitCode
    from flows.reverting import NotRevertibleError, RevertRefusedError, revert_run

    handle = open_database()
    with handle.engine.connect() as conn:
        found = _find_run(conn, run_id)
    try:
        done = revert_run(handle.engine, found, cascade=cascade, dry_run=dry_run)
    except NotRevertibleError as exc:
        raise UsageError(str(exc)) from exc
    except RevertRefusedError as exc:
        click.echo(f"erp-sync: error: {exc}", err=True)
        return ExitCode.REJECTED
    if as_json:
        documents = [
            r.summary.to_json_dict()
            | {"deleted": {"customers": r.counts.customers_deleted,
                           "contacts": r.counts.contacts_deleted}}
            for r in done
        ]  # fmt: skip
        click.echo(json.dumps(documents, indent=2, ensure_ascii=False))
        return ExitCode.OK
    for reverted in done:
        s, c = reverted.summary, reverted.counts
        prefix = "would revert" if dry_run else "reverted"
        click.echo(
            f"{s.org}: {prefix} run {s.reverts} ({Path(s.source).name})"
            + ("" if dry_run else f" as run {s.run_id}")
            + f"\n  customers  deleted {c.customers_deleted}, restored {c.customers_restored}, "
            f"values put back {c.customers_updated}, deactivated {c.customers_deactivated}, "
            f"reactivated {c.customers_reactivated}"
            f"\n  contacts   deleted {c.contacts_deleted}, restored {c.contacts_restored}, "
            f"values put back {c.contacts_updated}"
        )
    if dry_run:
        click.echo("dry run: nothing was changed")
    return ExitCode.OK
