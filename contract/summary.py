"""The summary of one run: the contract's summary.json document as a pydantic model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from contract.status import ExitCode, ImportMode, RunStatus

#: Times are written as Python's isoformat (`2026-11-20T02:00:00.123456+00:00`), as ever.
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


class _Document(BaseModel):
    # A stored summary with a key this version does not know is an error, not silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RowCounts(_Document):
    """Data rows of the file (not the header, not blank lines): read = valid + rejected."""

    read: int = Field(default=0, ge=0, description="data rows read")
    valid: int = Field(default=0, ge=0, description="rows accepted")
    rejected: int = Field(default=0, ge=0, description="rows rejected, each listed in the reports")


class CustomerCounts(_Document):
    """What the run did to customers (in a dry run: would have done)."""

    inserted: int = Field(default=0, ge=0)
    updated: int = Field(default=0, ge=0)
    unchanged: int = Field(default=0, ge=0)
    deactivated: int = Field(default=0, ge=0)
    reactivated: int = Field(default=0, ge=0)
    rejected: int = Field(default=0, ge=0)


class ContactCounts(_Document):
    """What the run did to contacts (in a dry run: would have done)."""

    inserted: int = Field(default=0, ge=0)
    updated: int = Field(default=0, ge=0)
    unchanged: int = Field(default=0, ge=0)


class FileError(_Document):
    """A reason the whole file was refused (a FileErrorCode), for a person to read."""

    code: str
    message: str


class Summary(_Document):
    """summary.json: the figures of one run, its status and where its reports are."""

    run_id: str
    org: str = Field(description="the organisation's slug")
    source: str = Field(description="the file as it was named to erp-sync")
    sha256: str | None = Field(description="sha256 of the file's bytes; None when unreadable")
    mode: ImportMode
    dry_run: bool
    status: RunStatus
    started_at: Timestamp
    finished_at: Timestamp
    encoding: str | None = Field(description="the encoding the file was read in")
    delimiter: str | None = Field(description="the field delimiter of the file")
    rows: RowCounts = RowCounts()
    customers: CustomerCounts = CustomerCounts()
    contacts: ContactCounts = ContactCounts()
    issues_by_code: dict[str, int] = Field(
        default_factory=dict, description="issue code -> count, most frequent first"
    )
    file_errors: list[FileError] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="file-level warnings for a person (unknown columns)"
    )
    report_dir: str | None = Field(default=None, description="the run's report folder")
    profile: str | None = Field(
        default=None, description="the source profile, when not the default `erp-sync`"
    )
    contacts_source: str | None = Field(
        default=None, description="the contacts file of a two-file export"
    )
    as_of: Timestamp | None = Field(
        default=None, description="the export's as-of time (file name or --as-of); None: unknown"
    )
    reverts: str | None = Field(
        default=None, description="mode revert: the id of the run this run reverted"
    )

    @property
    def exit_code(self) -> ExitCode:
        """The exit code of `erp-sync import` for this run."""
        return ExitCode.for_status(self.status)

    def to_json_dict(self) -> dict[str, Any]:
        """The document as JSON values, keys in the contract's order."""
        document = self.model_dump(mode="json")
        for key in _OMITTED_WHEN_NONE:
            if document[key] is None:
                del document[key]
        return document


#: Keys added after the first release: left out of summary.json when they say nothing, so that
#: runs of the contract's own layout keep the document they always had.
_OMITTED_WHEN_NONE = ("profile", "contacts_source", "as_of", "reverts")
