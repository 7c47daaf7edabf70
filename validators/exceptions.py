"""Exceptions of the validators stage: none of them is about the data, which never raises."""

from __future__ import annotations


class ValidatorError(Exception):
    """Base of the stage's exceptions; all are terminal (a retry cannot help)."""


class HeaderError(ValidatorError):
    """`validate_rows` was given a header with file errors: the file must be rejected first."""


class SchemaReportError(ValidatorError):
    """pandera reported a failure that is not tied to a row: a bug in the schema or framing."""
