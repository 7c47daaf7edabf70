"""The typed vocabulary of erp-sync's external contract (../shared/CONTRACT.md).

Every layer imports from here and this package imports none of them: run statuses, exit codes,
issue codes and their severities, the names of the input columns and stored fields, and the
summary document. A fact of the contract is written here once.

Importing `contract` is cheap (no polars, no pandera): the issue frame's polars schema lives in
`contract.frames`, imported only by the code that builds frames.
"""

from contract.columns import (
    ADDRESS_COLUMNS,
    ADDRESS_FIELDS,
    ADDRESS_PARTS,
    ALL_COLUMNS,
    CONTACT_COLUMNS,
    CONTACT_FIELDS,
    CUSTOMER_COLUMNS,
    CUSTOMER_FIELDS,
    FINGERPRINT,
    KEY,
    PLAIN_CUSTOMER_FIELDS,
    RAW_CONTACTS,
    RAW_FINGERPRINT,
    REPEATED_CUSTOMER_COLUMNS,
    REQUIRED_COLUMNS,
)
from contract.issues import (
    ERROR_CODES,
    ISSUE_COLUMNS,
    SEVERITY,
    WARNING_CODES,
    FileErrorCode,
    IssueCode,
    Severity,
)
from contract.status import APPLIED_STATUSES, ExitCode, ImportMode, RunStatus
from contract.summary import ContactCounts, CustomerCounts, FileError, RowCounts, Summary

__all__ = [
    "ADDRESS_COLUMNS",
    "ADDRESS_FIELDS",
    "ADDRESS_PARTS",
    "ALL_COLUMNS",
    "APPLIED_STATUSES",
    "CONTACT_COLUMNS",
    "CONTACT_FIELDS",
    "CUSTOMER_COLUMNS",
    "CUSTOMER_FIELDS",
    "ERROR_CODES",
    "FINGERPRINT",
    "ISSUE_COLUMNS",
    "KEY",
    "PLAIN_CUSTOMER_FIELDS",
    "RAW_CONTACTS",
    "RAW_FINGERPRINT",
    "REPEATED_CUSTOMER_COLUMNS",
    "REQUIRED_COLUMNS",
    "SEVERITY",
    "WARNING_CODES",
    "ContactCounts",
    "CustomerCounts",
    "ExitCode",
    "FileError",
    "FileErrorCode",
    "ImportMode",
    "IssueCode",
    "RowCounts",
    "RunStatus",
    "Severity",
    "Summary",
]
