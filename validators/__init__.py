"""Validators: a polars frame of raw export rows in, normalised customers, contacts and issues out.

Pure: no files, no database, no prefect. See `validate_rows` and `resolve_header`; the column
names and issue codes they use are the contract's (`contract`).
"""

from contract import ALL_COLUMNS, FileError
from contract.frames import ISSUE_SCHEMA
from validators.exceptions import HeaderError, SchemaReportError, ValidatorError
from validators.header import HeaderMap, resolve_header
from validators.validate import Validated, validate_rows

__all__ = [
    "ALL_COLUMNS",
    "ISSUE_SCHEMA",
    "FileError",
    "HeaderError",
    "HeaderMap",
    "SchemaReportError",
    "Validated",
    "ValidatorError",
    "resolve_header",
    "validate_rows",
]
