"""Errors of the database stage, each saying whether a retry can help."""

from __future__ import annotations


class LoaderError(Exception):
    """Base class of the database stage's errors."""

    #: True when the same call may succeed if it is simply tried again.
    transient: bool = False


class DatabaseUnavailableError(LoaderError):
    """The database cannot be reached or refused the connection; the message names no password."""

    transient = True


class SchemaBehindError(LoaderError):
    """The schema of a server named by DATABASE_URL is not at the latest migration."""


class OrganisationNotFoundError(LoaderError):
    """No organisation has the slug a command named."""
