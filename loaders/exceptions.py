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


class DatabaseUrlError(LoaderError):
    """DATABASE_URL cannot be parsed, or names another database than PostgreSQL: fix the URL."""


class AmbiguousRunIdError(LoaderError):
    """A run id prefix matches more than one run; `candidates` are (run id, org slug, file name)."""

    def __init__(self, prefix: str, candidates: list[tuple[str, str, str]], more: bool) -> None:
        self.prefix = prefix
        self.candidates = candidates
        self.more = more
        count = f"more than {len(candidates)}" if more else str(len(candidates))
        listed = "".join(f"\n  {run_id}  {org}  {name}" for run_id, org, name in candidates)
        super().__init__(
            f"the run id prefix {prefix!r} is ambiguous: it matches {count} runs "
            f"(give more of the id):{listed}"
        )
