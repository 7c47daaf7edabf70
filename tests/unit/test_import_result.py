"""The exit code and the one line of a run whose report files could not be written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract import ExitCode, ImportMode, RunStatus, Summary
from flows.importing import ImportResult, ReportsNotWritten


def _summary(status: RunStatus, *, dry_run: bool = False) -> Summary:
    moment = datetime(2026, 12, 9, 2, 0, tzinfo=UTC)
    return Summary(
        run_id="0190b6f2-0000-7000-8000-000000000001",
        org="acme",
        source="/in/kunden.csv",
        sha256="ab",
        mode=ImportMode.UPSERT,
        dry_run=dry_run,
        status=status,
        started_at=moment,
        finished_at=moment,
        encoding="utf-8",
        delimiter=",",
        report_dir="reports/0190b6f2-0000-7000-8000-000000000001",
    )


NOT_WRITTEN = ReportsNotWritten(Path("reports/0190b6f2"), "No space left on device")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (RunStatus.SUCCEEDED, ExitCode.REPORTS_NOT_WRITTEN),
        (RunStatus.PARTIAL, ExitCode.REPORTS_NOT_WRITTEN),
        (RunStatus.SKIPPED, ExitCode.OK),
        (RunStatus.REJECTED, ExitCode.REJECTED),
        (RunStatus.FAILED, ExitCode.FAILED),
    ],
)
def test_exit_5_applies_only_to_applied_runs_whose_reports_were_not_written(
    status: RunStatus, code: ExitCode
) -> None:
    assert ImportResult(_summary(status), NOT_WRITTEN).exit_code == code
    assert ImportResult(_summary(status)).exit_code == ExitCode.for_status(status)


def test_the_line_says_the_data_was_applied_where_why_and_the_command_that_writes_them() -> None:
    line = ImportResult(_summary(RunStatus.PARTIAL), NOT_WRITTEN).reports_error_message()
    assert line is not None and "\n" not in line
    assert "the data was applied (partial)" in line
    assert "reports/0190b6f2: No space left on device" in line
    assert "`erp-sync report 0190b6f2-0000-7000-8000-000000000001 --write`" in line


def test_a_dry_run_or_a_refused_file_is_not_said_to_be_applied() -> None:
    dry = ImportResult(_summary(RunStatus.SUCCEEDED, dry_run=True), NOT_WRITTEN)
    refused = ImportResult(_summary(RunStatus.REJECTED), NOT_WRITTEN)
    assert "nothing was changed" in (dry.reports_error_message() or "")
    assert "nothing was applied (rejected)" in (refused.reports_error_message() or "")
    assert ImportResult(_summary(RunStatus.PARTIAL)).reports_error_message() is None


def test_an_oserror_names_the_file_it_failed_on_when_that_is_not_the_run_folder() -> None:
    error = OSError(28, "No space left on device", "reports/r1/.errors.csv.1-2.tmp")
    assert ReportsNotWritten.of(Path("reports/r1"), error).reason == (
        "No space left on device (reports/r1/.errors.csv.1-2.tmp)"
    )
    same = OSError(30, "Read-only file system", "reports/r1")
    assert ReportsNotWritten.of(Path("reports/r1"), same).reason == "Read-only file system"
