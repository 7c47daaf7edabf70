"""Normalise raw cells to the values that are validated and stored.

Normalising is idempotent: a normalised frame comes back unchanged.
Blank cells become null, except `notes`, which is kept as given (only "" becomes null).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import polars as pl

from validators.columns import ADDRESS_COLUMNS, KEY
from validators.reference import canonical_language, distinct_map

TRUE_WORDS: Final[tuple[str, ...]] = ("true", "1", "yes", "y", "x")
FALSE_WORDS: Final[tuple[str, ...]] = ("false", "0", "no", "n")


def _null_if_empty(value: pl.Expr) -> pl.Expr:
    """Turn "" into null."""
    return pl.when(value != "").then(value)


def _trimmed(value: pl.Expr) -> pl.Expr:
    return _null_if_empty(value.str.strip_chars())


def _upper(value: pl.Expr) -> pl.Expr:
    return _trimmed(value).str.to_uppercase()


def _lower(value: pl.Expr) -> pl.Expr:
    return _trimmed(value).str.to_lowercase()


def _as_given(value: pl.Expr) -> pl.Expr:
    return _null_if_empty(value)


def _flag(value: pl.Expr) -> pl.Expr:
    """Spell a yes/no cell as "true" or "false"; an unknown word stays (trimmed, lower case)."""
    word = _lower(value)
    return (
        pl.when(word.is_in(TRUE_WORDS))
        .then(pl.lit("true"))
        .when(word.is_in(FALSE_WORDS))
        .then(pl.lit("false"))
        .otherwise(word)
    )


_ADDRESS_INPUTS = {col: _trimmed for parts in ADDRESS_COLUMNS.values() for col in parts.values()}

NORMALISERS: Final[dict[str, Callable[[pl.Expr], pl.Expr]]] = {
    KEY: _trimmed,
    "name": _trimmed,  # and NFC, in normalise_columns
    "default_currency": _upper,
    "email": _lower,
    "notes": _as_given,
    **_ADDRESS_INPUTS,
    "contact_email": _lower,
    "contact_name": _trimmed,
    "contact_phone": _trimmed,
    "contact_role": _trimmed,
    "contact_is_primary": _flag,
}
"""canonical column -> vectorised normaliser (name's NFC and default_language come after)"""

# columns with few distinct values: normalised once per distinct value, then spread back
_PER_DISTINCT: Final = frozenset({"default_currency", "contact_is_primary"})


def compose_unicode(values: pl.Series) -> pl.Series:
    """Return trimmed values in Unicode NFC, trimmed again; only non-ASCII ones can change."""
    non_ascii = (values.str.len_bytes() != values.str.len_chars()).fill_null(False)
    if not non_ascii.any():
        return values
    where = non_ascii.arg_true()
    composed = values.gather(where).to_frame("v").select(_trimmed(pl.col("v").str.normalize("NFC")))
    return values.scatter(where, composed.to_series())


def normalise_languages(tags: pl.Series) -> pl.Series:
    """Canonicalise language tags (`de_ch` -> `de-CH`), once per distinct tag; blank -> null."""
    trimmed = tags.to_frame("t").select(_trimmed(pl.col("t"))).to_series()
    return distinct_map(
        trimmed, lambda d: pl.Series([canonical_language(t) for t in d], dtype=pl.String)
    ).rename(tags.name)


def normalise_columns(raw: pl.DataFrame) -> pl.DataFrame:
    """Normalise every canonical column of `raw` (String columns named canonically)."""
    out = raw.with_columns(
        NORMALISERS[name](pl.col(name).cast(pl.String)).alias(name)
        for name in raw.columns
        if name in NORMALISERS and name not in _PER_DISTINCT
    )
    out = out.with_columns(
        distinct_map(out.get_column(name).cast(pl.String), _series_normaliser(name))
        for name in raw.columns
        if name in _PER_DISTINCT
    )
    if "name" in out.columns:
        out = out.with_columns(compose_unicode(out.get_column("name")))
    if "default_language" in out.columns:
        out = out.with_columns(
            normalise_languages(out.get_column("default_language").cast(pl.String))
        )
    return out


def _series_normaliser(name: str) -> Callable[[pl.Series], pl.Series]:
    normaliser = NORMALISERS[name]
    return lambda values: values.to_frame("v").select(normaliser(pl.col("v"))).to_series()
