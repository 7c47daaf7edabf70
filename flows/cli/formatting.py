"""Text for a terminal: the human summary of a run, the table of runs, the table of a sync."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contract import RunStatus, Summary

#: At most this many file warnings are printed, each cut to WARNING_WIDTH characters: a header
#: that swallowed its data (or has 10,000 columns) must not print every cell of the file.
WARNINGS_SHOWN = 3
WARNING_WIDTH = 60


def format_summary(summary: Summary) -> str:
    """The short human summary of a run (figures only: no emails, phones or values)."""
    if summary.status == RunStatus.FAILED:
        return format_failed_run(summary)
    rows, customers, contacts = summary.rows, summary.customers, summary.contacts
    dry = " (dry run: nothing changed)" if summary.dry_run else ""
    lines = [
        f"{summary.org}: {Path(summary.source).name}: {summary.status.upper()}{dry}"
        f"  run {summary.run_id}",
    ]
    if summary.status == RunStatus.SKIPPED:
        lines.append(
            "  the same file was already applied for this organisation "
            "(use --force to apply it again)"
        )
    for error in summary.file_errors:
        lines.append(f"  file error [{error.code}]: {error.message}")
    if summary.encoding:
        delimiter = {"\t": "tab"}.get(summary.delimiter or "", summary.delimiter)
        lines.append(f"  input      {summary.encoding}, delimiter {delimiter!r}")
    lines += [
        f"  rows       read {rows.read}, valid {rows.valid}, rejected {rows.rejected}",
        f"  customers  inserted {customers.inserted}, updated {customers.updated}, "
        f"unchanged {customers.unchanged}, deactivated {customers.deactivated}, "
        f"reactivated {customers.reactivated}, rejected {customers.rejected}",
        f"  contacts   inserted {contacts.inserted}, updated {contacts.updated}, "
        f"unchanged {contacts.unchanged}",
    ]
    if summary.issues_by_code:
        issues = ", ".join(f"{code} {n}" for code, n in summary.issues_by_code.items())
        lines.append(f"  issues     {issues}")
    for warning in summary.warnings[:WARNINGS_SHOWN]:
        lines.append(f"  warning    {_shortened(warning, WARNING_WIDTH)}")
    hidden = len(summary.warnings) - WARNINGS_SHOWN
    if hidden > 0:
        lines.append(f"  warning    ... and {hidden} more (every one is in errors.csv)")
    lines.append(f"  reports    {summary.report_dir}")
    return "\n".join(lines)


#: The failures of a database that went away (or never answered): what `failed` mostly means.
_DATABASE_FAILURES = ("OperationalError", "InterfaceError", "DatabaseUnavailableError")


def format_failed_run(summary: Summary) -> str:
    """A failed run in one line: that it failed, why, and what to do."""
    reason = " ".join(e.message for e in summary.file_errors) or "no reason recorded"
    if reason.startswith(_DATABASE_FAILURES):
        advice = "check that the database answers, then run the import again"
    else:
        advice = (
            "run the import again; if it fails again, rerun with ERP_SYNC_LOG_LEVEL=DEBUG "
            "for the details"
        )
    return (
        f"{summary.org}: {Path(summary.source).name}: FAILED  run {summary.run_id}: "
        f"{_shortened(reason, 200)}; nothing was applied: {advice} "
        f"(reports: {summary.report_dir})"
    )


#: An address, but not the user@host of a URL (after "//") or a masked "***@host".
EMAIL = re.compile(r"(?<![\w.+/*-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")


def _shortened(text: str, width: int) -> str:
    """text on one line, emails masked, cut to width characters with an ellipsis."""
    flat = EMAIL.sub("<email>", " ".join(text.split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_runs_table(summaries: Sequence[Summary]) -> str:
    """A fixed-width table of runs for a terminal."""
    header = (
        "started (UTC)",
        "org",
        "file",
        "status",
        "read",
        "valid",
        "rejected",
        "ins",
        "upd",
        "same",
        "deact",
        "run id",
    )
    rows = []
    for s in summaries:
        status = s.status + (" (dry)" if s.dry_run else "")
        rows.append(
            (
                s.started_at.isoformat()[:19].replace("T", " "),
                s.org,
                Path(s.source).name,
                status,
                str(s.rows.read),
                str(s.rows.valid),
                str(s.rows.rejected),
                str(s.customers.inserted),
                str(s.customers.updated),
                str(s.customers.unchanged),
                str(s.customers.deactivated),
                s.run_id,
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = set(range(4, 11))

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


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
    for file in result["files"]:
        if file.get("reason"):
            lines.append(f"{file['org']}: {Path(file['file']).name}: {file['reason']}")
    skipped = result["skipped_already_applied"]
    if skipped:
        lines.append(f"{skipped} file(s) already applied before: skipped (use --force to apply)")
    lines.append(f"index: {result['index'] or 'not written'}")
    lines.append(f"exit code {result['exit_code']}")
    return "\n".join(lines)
