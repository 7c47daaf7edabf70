"""Phone numbers to E.164 (`phones = "e164"` in a profile), with the billing country as region.

Python runs once per distinct (number, country) pair. A number that cannot be read as a
possible phone number is kept as given, with a `phone` warning: a phone is never worth
rejecting a customer for.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType

import polars as pl

from contract import IssueCode


@cache
def _phonenumbers() -> tuple[ModuleType, frozenset[str]]:
    """phonenumbers and its regions, imported when a profile first formats phones (not at
    start-up: most imports have no phones to format)."""
    import phonenumbers

    return phonenumbers, frozenset(phonenumbers.SUPPORTED_REGIONS)


def e164(number: str, region: str | None) -> str | None:
    """`number` in E.164 (`+493012345`), read in `region` when it has no `+`; None if unreadable."""
    text = number.strip()
    if not text:
        return None
    country = region.strip().upper() if region else None
    phonenumbers, regions = _phonenumbers()
    try:
        parsed = phonenumbers.parse(text, country if country in regions else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_phones(
    phones: pl.Series, countries: pl.Series | None
) -> tuple[pl.Series, pl.DataFrame]:
    """The phones in E.164 where they can be read, else as given; and one warning per other.

    The warnings are row issues (`_row`, `column`, `value`, `code`, `message`) of
    `contact_phone`.
    """
    region = (
        countries if countries is not None else pl.Series([None] * phones.len(), dtype=pl.String)
    )
    pairs = pl.DataFrame({"phone": phones, "region": region.cast(pl.String)})
    filled = pairs.get_column("phone").str.strip_chars().fill_null("") != ""
    distinct = pairs.filter(filled).unique()
    results = [e164(p, r) for p, r in distinct.iter_rows()]
    lookup = distinct.with_columns(_e164=pl.Series(results, dtype=pl.String))
    joined = pairs.join(
        lookup, on=["phone", "region"], how="left", maintain_order="left", nulls_equal=True
    )
    formatted = joined.get_column("_e164")
    unreadable = filled & formatted.is_null()
    out = pl.select(pl.when(formatted.is_not_null()).then(formatted).otherwise(phones)).to_series()
    bad = phones.filter(unreadable)
    warnings = pl.DataFrame(
        {
            "_row": unreadable.arg_true().cast(pl.UInt32),
            "column": pl.Series(["contact_phone"] * bad.len(), dtype=pl.String),
            "value": bad,
            "code": pl.Series([str(IssueCode.PHONE)] * bad.len(), dtype=pl.String),
        }
    ).with_columns(
        message=pl.format(
            "'{}' is not a phone number that can be written in E.164; kept as given",
            pl.col("value").str.strip_chars(),
        )
    )
    return out.rename(phones.name), warnings
