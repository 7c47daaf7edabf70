"""Issue codes (row issues and file errors) and their severities (CONTRACT.md section 5)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Severity(StrEnum):
    """How bad an issue is: an error rejects its row (and customer), a warning does not."""

    ERROR = "error"
    WARNING = "warning"


class IssueCode(StrEnum):
    """Stable codes of row-level issues; the order breaks ties when issues are sorted."""

    FIELD_COUNT = "field_count"
    REQUIRED = "required"
    LENGTH = "length"
    CURRENCY = "currency"
    LANGUAGE = "language"
    EMAIL = "email"
    BOOLEAN = "boolean"
    UNKNOWN_VALUE = "unknown_value"
    """a value that the profile's value map of a column without a rule of its own does not know"""
    UNKNOWN_CUSTOMER = "unknown_customer"
    """a contact whose customer is not in the export (two-file and related-row layouts)"""
    REJECTED_WITH_CUSTOMER = "rejected_with_customer"
    CONFLICTING_VALUES = "conflicting_values"
    DUPLICATE_CONTACT = "duplicate_contact"
    MULTIPLE_PRIMARY = "multiple_primary"
    UNKNOWN_COLUMN = "unknown_column"
    KEY_NORMALISED = "key_normalised"
    PHONE = "phone"
    """a phone number that cannot be written in E.164 (`phones = "e164"`); kept as given"""
    HEADER_DRIFT = "header_drift"
    """the header differs from the last applied file of the organisation and profile"""


class FileErrorCode(StrEnum):
    """Stable codes of the reasons a whole file is refused (or, `failed`, could not be run)."""

    ENCODING = "encoding"
    MALFORMED = "malformed"
    MISSING_COLUMN = "missing_column"
    DUPLICATE_COLUMN = "duplicate_column"
    ERROR_BUDGET = "error_budget"
    DEACTIVATE_BUDGET = "deactivate_budget"
    HEADER_DRIFT = "header_drift"
    """--strict-header: the file lacks a column the last applied file had"""
    PROFILE = "profile"
    """the source profile cannot be used with this file"""
    STALE_EXPORT = "stale_export"
    """the export's as-of is older than the newest as-of applied for the organisation"""
    FAILED = "failed"


#: The severity of every row issue code, in IssueCode order.
SEVERITY: Final[dict[IssueCode, Severity]] = {
    IssueCode.FIELD_COUNT: Severity.ERROR,
    IssueCode.REQUIRED: Severity.ERROR,
    IssueCode.LENGTH: Severity.ERROR,
    IssueCode.CURRENCY: Severity.ERROR,
    IssueCode.LANGUAGE: Severity.ERROR,
    IssueCode.EMAIL: Severity.ERROR,
    IssueCode.BOOLEAN: Severity.ERROR,
    IssueCode.UNKNOWN_VALUE: Severity.ERROR,
    IssueCode.UNKNOWN_CUSTOMER: Severity.ERROR,
    IssueCode.REJECTED_WITH_CUSTOMER: Severity.ERROR,
    IssueCode.CONFLICTING_VALUES: Severity.WARNING,
    IssueCode.DUPLICATE_CONTACT: Severity.WARNING,
    IssueCode.MULTIPLE_PRIMARY: Severity.WARNING,
    IssueCode.UNKNOWN_COLUMN: Severity.WARNING,
    IssueCode.KEY_NORMALISED: Severity.WARNING,
    IssueCode.PHONE: Severity.WARNING,
    IssueCode.HEADER_DRIFT: Severity.WARNING,
}

ERROR_CODES: Final[frozenset[IssueCode]] = frozenset(
    code for code, severity in SEVERITY.items() if severity is Severity.ERROR
)
WARNING_CODES: Final[frozenset[IssueCode]] = frozenset(
    code for code, severity in SEVERITY.items() if severity is Severity.WARNING
)

#: The columns of an issue, in the order of errors.csv and of the issue frame.
ISSUE_COLUMNS: Final[tuple[str, ...]] = (
    "line",
    "erp_customer_number",
    "column",
    "value",
    "code",
    "severity",
    "message",
)
