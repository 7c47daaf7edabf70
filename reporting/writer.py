"""Write the reports of a run into its folder, and the index of runs beside the run folders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from contract import Summary
from contract.changes import ChangeOverview
from reporting.files import (
    write_errors_csv,
    write_rejected_rows_csv,
    write_summary_json,
    write_text,
)
from reporting.pages import render_index, render_run_report


def write_run_reports(
    run_dir: Path,
    summary: Summary,
    issues: pl.DataFrame,
    header: Sequence[str],
    rejected_rows: pl.DataFrame,
    delimiter: str,
    changes: ChangeOverview | None = None,
) -> None:
    """Create run_dir; write summary.json, errors.csv, rejected_rows.csv and report.html in it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_summary_json(run_dir / "summary.json", summary)
    write_errors_csv(run_dir / "errors.csv", issues)
    write_rejected_rows_csv(run_dir / "rejected_rows.csv", header, rejected_rows, delimiter)
    write_text(
        run_dir / "report.html",
        render_run_report(summary, issues, header, rejected_rows, changes),
    )


def write_index(
    report_dir: Path, summaries: Sequence[Summary], fields_changed: Mapping[str, int] | None = None
) -> Path:
    """Write report_dir/index.html listing the given run summaries and return its path.

    fields_changed: run id -> fields the run changed in all (from the change history).
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "index.html"
    write_text(path, render_index(summaries, fields_changed))
    return path
