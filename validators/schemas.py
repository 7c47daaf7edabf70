"""Declared per-row rules: a pandera schema of one normalised export row.

Each check is named after the issue code it raises, so a failure case maps to an issue
without a lookup table (pandera's own `not_nullable` is the `required` code).
Declared here, run by `validators.validate` on the normalised frame.
"""

from __future__ import annotations

import sys
from typing import Final

import pandera.polars as pa
import polars as pl

from validators.reference import ACTIVE_CURRENCIES, valid_emails, valid_languages


def _pandera_checks_without_hypothesis() -> None:
    """Load pandera's check registry with its data-synthesis strategies off.

    pandera.strategies.base_strategies imports hypothesis when it is installed (a dev
    dependency of erp-sync, for its tests), only to generate example data from schemas,
    which erp-sync never does; pandera imports it on the first validation of every process
    (0.1-0.3 s of a one-row import, README "Start-up"). A None in sys.modules makes that one
    import fail, which pandera handles as "hypothesis not installed"; the entry is removed
    right after, so hypothesis itself stays importable. A process that imported hypothesis
    first (a test run) keeps pandera's strategies.
    """
    if "hypothesis" in sys.modules or "pandera.strategies.base_strategies" in sys.modules:
        return
    sys.modules["hypothesis"] = None  # type: ignore[assignment]
    try:
        import pandera.strategies.base_strategies  # noqa: F401
    finally:
        if "hypothesis" in sys.modules and sys.modules["hypothesis"] is None:
            del sys.modules["hypothesis"]


_pandera_checks_without_hypothesis()  # before any validation loads pandera's checks

MAX_KEY_LENGTH: Final = 100
MAX_NAME_LENGTH: Final = 500

CONTACT_DETAILS: Final[tuple[str, ...]] = ("contact_name", "contact_phone", "contact_role")

# pandera check name -> issue code, where they differ
PANDERA_CODES: Final[dict[str, str]] = {"not_nullable": "required"}


def contact_given(columns: list[str]) -> pl.Expr:
    """Tell whether a normalised row names a contact besides its email.

    A contact_is_primary that only says "no" does not make a contact: ERPs write 0 or false
    on the rows of customers without contacts.
    """
    given = [pl.col(c).is_not_null() for c in CONTACT_DETAILS if c in columns]
    if "contact_is_primary" in columns:
        flag = pl.col("contact_is_primary")
        given.append(flag.is_not_null() & (flag != "false"))
    return pl.any_horizontal(given) if given else pl.lit(False)


def _series(data: pa.PolarsData) -> pl.Series:
    return data.lazyframe.select(pl.col(data.key)).collect().to_series()


class ExportRowSchema(pa.DataFrameModel):
    """One row of an ERP customer export, after normalisation (CONTRACT.md section 1)."""

    erp_customer_number: str = pa.Field(nullable=False)
    name: str = pa.Field(nullable=False)
    default_currency: str = pa.Field(nullable=False)
    default_language: str = pa.Field(nullable=False)
    email: str | None = pa.Field(nullable=True)
    notes: str | None = pa.Field(nullable=True)
    billing_street: str | None = pa.Field(nullable=True)
    billing_city: str | None = pa.Field(nullable=True)
    billing_postal_code: str | None = pa.Field(nullable=True)
    billing_country: str | None = pa.Field(nullable=True)
    shipping_street: str | None = pa.Field(nullable=True)
    shipping_city: str | None = pa.Field(nullable=True)
    shipping_postal_code: str | None = pa.Field(nullable=True)
    shipping_country: str | None = pa.Field(nullable=True)
    contact_email: str | None = pa.Field(nullable=True)
    contact_name: str | None = pa.Field(nullable=True)
    contact_phone: str | None = pa.Field(nullable=True)
    contact_role: str | None = pa.Field(nullable=True)
    contact_is_primary: str | None = pa.Field(nullable=True)

    class Config:
        """Only canonical columns reach the schema."""

        strict = True

    @pa.check("erp_customer_number", name="length")
    def key_length(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The key is at most 100 characters."""
        return data.lazyframe.select(pl.col(data.key).str.len_chars() <= MAX_KEY_LENGTH)

    @pa.check("name", name="length")
    def name_length(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The name is at most 500 characters."""
        return data.lazyframe.select(pl.col(data.key).str.len_chars() <= MAX_NAME_LENGTH)

    @pa.check("default_currency", name="currency")
    def active_currency(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The currency is an active ISO 4217 code."""
        return data.lazyframe.select(pl.col(data.key).is_in(sorted(ACTIVE_CURRENCIES)))

    @pa.check("default_language", name="language")
    def valid_language(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The language is a well-formed, valid BCP 47 tag."""
        return pl.LazyFrame([valid_languages(_series(data))])

    @pa.check("email", "contact_email", name="email")
    def valid_email(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """An email address has valid syntax (no DNS lookup)."""
        return pl.LazyFrame([valid_emails(_series(data))])

    @pa.check("contact_email", name="required", ignore_na=False)
    def contact_has_email(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A row that names a contact gives the contact's email."""
        columns = data.lazyframe.collect_schema().names()
        return data.lazyframe.select(pl.col(data.key).is_not_null() | ~contact_given(columns))

    @pa.check("contact_is_primary", name="boolean")
    def known_flag(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The primary flag is one of the known yes/no words (normalised to true/false)."""
        return data.lazyframe.select(pl.col(data.key).is_in(["true", "false"]))
