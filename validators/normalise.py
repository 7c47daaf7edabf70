"""Normalise raw cells to the values that are validated and stored.

Normalising is idempotent: a normalised frame comes back unchanged.
Blank cells become null, except `notes`, which is kept as given (only "" becomes null).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import polars as pl

from contract import ADDRESS_COLUMNS, KEY
from validators.reference import canonical_language, distinct_map

TRUE_WORDS: Final[tuple[str, ...]] = ("true", "1", "yes", "y", "x")
FALSE_WORDS: Final[tuple[str, ...]] = ("false", "0", "no", "n")


def _null_if_empty(value: pl.Expr) -> pl.Expr:
    """Turn "" into null."""
    return pl.when(value != "").then(value)


def _unneutralised(value: pl.Expr) -> pl.Expr:
    """Drop the `'` that erp-sync's own reports put before a cell a spreadsheet would run.

    rejected_rows.csv writes `+49 30 1234` as `'+49 30 1234` (the contract's formula
    neutralisation); fixed and fed back, the phone must come back as it was, not with the quote.
    """
    return value.str.replace(r"^'+([=+\-@\t\r])", "$1")


def _trimmed(value: pl.Expr) -> pl.Expr:
    return _null_if_empty(value.str.strip_chars())


def _requoted(values: pl.Series) -> pl.Series:
    """Trimmed values without the reports' formula quote (a no-op, and no copy, for most files)."""
    if not values.str.starts_with("'").any():
        return values
    frame = values.to_frame("v").select(_trimmed(_unneutralised(pl.col("v"))))
    return frame.to_series().rename(values.name)


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


def chunk_lengths(values: pl.Series) -> list[int]:
    """The lengths of the chunks of `values`."""
    return [chunk.len() for chunk in values.get_chunks()]


def realign(values: pl.Series, lengths: list[int]) -> pl.Series:
    """`values` cut into chunks of `lengths` (zero-copy slices), unless it already is.

    polars copies whole every column of a frame whose columns are chunked differently in the
    first select or filter that meets them (a String cell's view is 16 bytes: about 35 MB per
    column of 2 M rows). Columns made by joins or scatters come as one chunk; cutting them at
    the boundaries of the input's columns avoids that copy.
    """
    if chunk_lengths(values) == lengths:
        return values
    whole = values.rechunk()
    parts = []
    offset = 0
    for length in lengths:
        parts.append(whole.slice(offset, length))
        offset += length
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else whole


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
    """Normalise every canonical column of `raw` (String columns named canonically).

    The normalised columns are chunked like the columns of `raw`.
    """
    lengths = chunk_lengths(raw.to_series(0)) if raw.width else []
    out = raw
    # One column at a time, and a column that normalising leaves as it is stays the raw column
    # itself (shared, not copied): a String column of 2 M rows takes 35 MB and more.
    for name in raw.columns:
        if name in NORMALISERS and name not in _PER_DISTINCT:
            normalised = out.select(NORMALISERS[name](pl.col(name).cast(pl.String))).to_series()
            if NORMALISERS[name] in (_trimmed, _upper, _lower):
                normalised = _requoted(normalised)
        elif name in _PER_DISTINCT:
            normalised = distinct_map(
                out.get_column(name).cast(pl.String), _series_normaliser(name)
            )
        else:
            continue
        out = out.with_columns(
            _unless_unchanged(realign(normalised, lengths), raw.get_column(name))
        )
        del normalised
    if "name" in out.columns:
        out = out.with_columns(realign(compose_unicode(out.get_column("name")), lengths))
    if "default_language" in out.columns:
        normalised = normalise_languages(out.get_column("default_language").cast(pl.String))
        out = out.with_columns(
            _unless_unchanged(realign(normalised, lengths), raw.get_column("default_language"))
        )
    return out


def _unless_unchanged(normalised: pl.Series, raw: pl.Series) -> pl.Series:
    """`raw` when `normalised` holds the same values (and nulls), else `normalised`."""
    if raw.dtype == normalised.dtype and not normalised.ne_missing(raw).any():
        return raw
    return normalised


def _series_normaliser(name: str) -> Callable[[pl.Series], pl.Series]:
    normaliser = NORMALISERS[name]
    return lambda values: values.to_frame("v").select(normaliser(pl.col("v"))).to_series()
