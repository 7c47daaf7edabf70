"""Validators: a polars frame of raw export rows in, normalised customers, contacts and issues out.

Pure: no files, no database, no prefect. See `validate_rows` and `resolve_header`.
"""

from validators.columns import (
    ADDRESS_COLUMNS,
    ALL_COLUMNS,
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    CUSTOMER_FIELDS,
    KEY,
    REQUIRED_COLUMNS,
)
from validators.exceptions import HeaderError, SchemaReportError, ValidatorError
from validators.header import FileError, HeaderMap, resolve_header
from validators.issues import ERROR_CODES, ISSUE_SCHEMA, SEVERITY, WARNING_CODES
from validators.validate import Validated, validate_rows

__all__ = [
    "ADDRESS_COLUMNS",
    "ALL_COLUMNS",
    "CONTACT_COLUMNS",
    "CUSTOMER_COLUMNS",
    "CUSTOMER_FIELDS",
    "ERROR_CODES",
    "ISSUE_SCHEMA",
    "KEY",
    "REQUIRED_COLUMNS",
    "SEVERITY",
    "WARNING_CODES",
    "FileError",
    "HeaderError",
    "HeaderMap",
    "SchemaReportError",
    "Validated",
    "ValidatorError",
    "resolve_header",
    "validate_rows",
]
