"""Reference data and value checks: ISO 4217 currencies, BCP 47 tags, email syntax.

Every function that needs Python per value works on the distinct values of a column only,
so a file with millions of rows costs as many calls as it has distinct values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Final

import langcodes
import polars as pl
import pycountry

# pycountry's ISO 4217 table lists the codes in use (withdrawn ones live in historic_currencies)
ACTIVE_CURRENCIES: Final[frozenset[str]] = frozenset(
    currency.alpha_3 for currency in pycountry.currencies
)


def distinct_map(values: pl.Series, function: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """Apply a function to the distinct non-null values of a series and spread its result back.

    `function` gets the distinct values and returns one result per value, in the same order.
    Nulls map to null.
    """
    distinct = values.drop_nulls().unique()
    results = function(distinct)
    lookup = pl.DataFrame({"_v": distinct, "_r": results})
    return (
        values.rename("_v")
        .to_frame()
        .join(lookup, on="_v", how="left", maintain_order="left")
        .get_column("_r")
        .rename(values.name)
    )


# --- languages -----------------------------------------------------------------------------


def canonical_language(tag: str) -> str:
    """The tag in BCP 47's canonical case, `_` read as `-` (`de_ch` -> `de-CH`).

    Only the case changes (RFC 5646, 2.1.1): language and extensions lower case, a 4-letter
    script title case, a 2-letter region upper case; everything after a singleton (`x-`, `u-`)
    lower case. Subtags are never replaced or dropped (`iw` stays `iw`): the ERP said it.
    """
    if not tag.isascii():
        # Not a BCP 47 tag (its subtags are ASCII) and invalid anyway: left as given, since
        # Unicode case mapping is not idempotent (`ß`.upper() is `SS`, which lowers to `ss`).
        return tag.replace("_", "-")
    subtags = tag.replace("_", "-").split("-")  # already trimmed (by polars, not str.strip)
    out = [subtags[0].lower()]
    extension = len(subtags[0]) == 1  # `x-...` private use or `i-...` grandfathered
    for subtag in subtags[1:]:
        if extension or len(subtag) == 1:
            extension = True
            out.append(subtag.lower())
        elif len(subtag) == 4 and subtag.isalpha():
            out.append(subtag.title())
        elif len(subtag) == 2 and subtag.isalpha():
            out.append(subtag.upper())
        else:
            out.append(subtag.lower())
    return "-".join(out)


def is_valid_language(tag: str) -> bool:
    """Tell whether a tag is well-formed and valid BCP 47."""
    return bool(langcodes.tag_is_valid(tag))


def valid_languages(tags: pl.Series) -> pl.Series:
    """Tell, per value, whether it is a valid BCP 47 tag (null stays null)."""
    return distinct_map(
        tags, lambda d: pl.Series([is_valid_language(t) for t in d], dtype=pl.Boolean)
    )


# --- email ---------------------------------------------------------------------------------

# A conservative pattern for the common plain-ASCII address, applied to trimmed lower-case
# text. Whatever it accepts, email-validator accepts too (a hypothesis test holds it to that);
# whatever it does not accept goes to email-validator, which has the last word.
_LOCAL: Final = r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
FAST_EMAIL_PATTERN: Final = rf"^{_LOCAL}@(?:{_LABEL}\.)+[a-z]{{2,63}}$"
# what the pattern cannot say cheaply is sent to email-validator instead: a label or local
# part longer than 63 characters (any run of 64 such characters is enough to be careful),
# `--` (an R-LDH or punycode label), and the special-use domains email-validator refuses
_LONG_RUN: Final = r"[a-z0-9_+-]{64}"
_MAX_EMAIL: Final = 254
_MAX_LOCAL: Final = 64


@cache
def special_use_pattern() -> str:
    """The special-use domains email-validator refuses, as a pattern (email-validator is
    imported when a file first has email addresses, not at start-up)."""
    import email_validator

    special = "|".join(re.escape(name) for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
    return rf"\.(?:{special})$"


def fast_email_ok(addresses: pl.Expr) -> pl.Expr:
    """Accept the plain addresses that certainly pass email-validator (False means: ask it)."""
    return (
        addresses.str.contains(FAST_EMAIL_PATTERN)
        & ~addresses.str.contains("--", literal=True)
        & ~addresses.str.contains(_LONG_RUN)
        & ~addresses.str.contains(special_use_pattern())
        & (addresses.str.len_bytes() <= _MAX_EMAIL)
        & (addresses.str.find("@", literal=True) <= _MAX_LOCAL)
    ).fill_null(False)


def email_problem(address: str) -> str | None:
    """Return why email-validator rejects an address, or None when it accepts it.

    `strict` holds the local part to RFC 5321's 64 characters; deliverability (DNS) is not
    checked.
    """
    import email_validator

    try:
        email_validator.validate_email(address, check_deliverability=False, strict=True)
    except email_validator.EmailNotValidError as error:
        return str(error)
    return None


def email_problems(addresses: pl.Series) -> pl.Series:
    """Return, per address, why it is not a valid email address (null: valid, or null).

    One email-validator call per distinct address: meant for the few addresses that failed.
    """
    return distinct_map(
        addresses, lambda d: pl.Series([email_problem(a) for a in d], dtype=pl.String)
    )


def valid_emails(addresses: pl.Series) -> pl.Series:
    """Tell, per address, whether it is a valid email address (null stays null).

    The fast pattern runs on the whole column (cheaper than finding its distinct values);
    email-validator sees each distinct address the pattern does not settle.
    """
    frame = addresses.rename("a").to_frame().with_columns(_fast=fast_email_ok(pl.col("a")))
    unsettled = frame.filter(~pl.col("_fast") & pl.col("a").is_not_null()).get_column("a")
    distinct = unsettled.unique()
    accepted = distinct.filter(
        pl.Series([email_problem(a) is None for a in distinct], dtype=pl.Boolean)
    )
    return (
        frame.select(
            pl.when(pl.col("a").is_not_null()).then(
                pl.col("_fast") | pl.col("a").is_in(accepted.implode())
            )
        )
        .to_series()
        .rename(addresses.name)
    )
