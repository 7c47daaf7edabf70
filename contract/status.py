"""Run statuses, import modes and exit codes, with the contract's mapping from status to code."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final


class RunStatus(StrEnum):
    """What became of one run (summary.json `status`, import_run.status)."""

    RUNNING = "running"
    """recorded while a run is under way (reserved; no run is stored in this state today)"""
    SUCCEEDED = "succeeded"
    """applied, no row rejected"""
    PARTIAL = "partial"
    """applied; some customers rejected"""
    SKIPPED = "skipped"
    """the same bytes were applied before for this organisation: nothing done"""
    REJECTED = "rejected"
    """the file as a whole was refused: nothing applied"""
    FAILED = "failed"
    """an infrastructure failure: nothing applied"""


#: Statuses whose run changed the organisation's data (dry runs aside).
APPLIED_STATUSES: Final[tuple[RunStatus, ...]] = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)


class ImportMode(StrEnum):
    """How a file relates to the organisation's customers (`--mode`)."""

    UPSERT = "upsert"
    """insert new customers, update changed ones, leave the rest alone"""
    FULL = "full"
    """the file is the complete customer list: deactivate the customers it lacks"""
    REVERT = "revert"
    """not an import: `erp-sync revert` undid an earlier run (summary key `reverts`)"""


class ExitCode(IntEnum):
    """The exit codes of `erp-sync` (CONTRACT.md section 2)."""

    OK = 0
    """succeeded or skipped"""
    PARTIAL = 1
    """applied; some customers rejected"""
    USAGE = 2
    """bad option, unknown organisation, missing file, schema behind"""
    REJECTED = 3
    """the file as a whole was refused; nothing applied"""
    FAILED = 4
    """infrastructure failure; nothing applied"""
    REPORTS_NOT_WRITTEN = 5
    """succeeded or partial: applied, but the report files could not be written"""

    @classmethod
    def for_status(cls, status: RunStatus | str) -> ExitCode:
        """The exit code of a run that ended in `status`."""
        return _EXIT_CODE_OF_STATUS[RunStatus(status)]


_EXIT_CODE_OF_STATUS: Final[dict[RunStatus, ExitCode]] = {
    RunStatus.SUCCEEDED: ExitCode.OK,
    RunStatus.SKIPPED: ExitCode.OK,
    RunStatus.PARTIAL: ExitCode.PARTIAL,
    RunStatus.REJECTED: ExitCode.REJECTED,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.RUNNING: ExitCode.FAILED,  # a run still "running" when asked for never finished
}
