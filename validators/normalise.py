"""Normalise raw cells to the values that are validated and stored.

Normalising is idempotent: a normalised frame comes back unchanged.
Blank cells become null, except `notes`, which is kept as given (only "" becomes null).
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from typing import Final

import polars as pl

from contract import ADDRESS_COLUMNS, KEY
from validators.reference import canonical_language, distinct_map

TRUE_WORDS: Final[tuple[str, ...]] = ("true", "1", "yes", "y", "x")
FALSE_WORDS: Final[tuple[str, ...]] = ("false", "0", "no", "n")


def _format_character_class() -> str:
    """A regex class of every format character (Unicode category Cf), as ranges of code points.

    Built from Python's Unicode database rather than written `\\p{Cf}`: the regex engine's
    Unicode tables may be newer than Python's, and the characters removed must be the ones that
    migration 0004 removed from the stored keys and that `describe_key_changes` can name.
    """
    ranges: list[tuple[int, int]] = []
    for point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(point)) == "Cf":
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1] = (ranges[-1][0], point)
            else:
                ranges.append((point, point))
    parts = (
        f"\\x{{{low:X}}}" if low == high else f"\\x{{{low:X}}}-\\x{{{high:X}}}"
        for low, high in ranges
    )
    return f"[{''.join(parts)}]"


#: Every format character: zero-width space and joiners, soft hyphen, BOM, bidi marks, ...
FORMAT_CHARACTERS: Final = _format_character_class()


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
    KEY: _trimmed,  # and NFC, format characters removed, in normalise_columns
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


def normalise_keys(keys: pl.Series) -> pl.Series:
    """Return trimmed keys without format characters, in Unicode NFC, trimmed again.

    Only non-ASCII keys can change, so only they are touched. Format characters go before NFC
    (one between a letter and its combining mark would otherwise keep them apart), and the
    reports' formula quote is dropped again in case one of them hid it.
    """
    non_ascii = (keys.str.len_bytes() != keys.str.len_chars()).fill_null(False)
    if not non_ascii.any():
        return keys
    where = non_ascii.arg_true()
    cleaned = (
        keys.gather(where)
        .to_frame("v")
        .select(_trimmed(pl.col("v").str.replace_all(FORMAT_CHARACTERS, "").str.normalize("NFC")))
        .to_series()
    )
    return keys.clone().scatter(where, _requoted(cleaned))


def describe_key_changes(raw: pl.Series) -> pl.Series:
    """Say what `normalise_keys` changes in each raw key beyond trimming; null where nothing.

    Names the format characters removed (`U+200B ZERO WIDTH SPACE`), never the characters
    themselves, and whether NFC composed anything. Python runs once per distinct character.
    """
    visible = raw.str.replace_all(FORMAT_CHARACTERS, "")
    removed = raw.str.extract_all(FORMAT_CHARACTERS).list.unique(maintain_order=True)
    found = removed.explode().drop_nulls().unique()
    labels = [_character_label(c) for c in found]
    named = removed.list.eval(
        pl.element().replace_strict(found, labels, return_dtype=pl.String)
    ).list.join(", ")
    frame = pl.DataFrame({"named": named, "nfc": visible.str.normalize("NFC") != visible})
    parts = frame.select(
        pl.when(pl.col("named") != "").then(
            pl.format("invisible characters removed ({})", pl.col("named"))
        ),
        pl.when(pl.col("nfc")).then(pl.lit("Unicode NFC applied (combining marks composed)")),
    )
    return (
        parts.select(pl.concat_str(pl.all(), separator="; ", ignore_nulls=True))
        .select(pl.when(pl.all() != "").then(pl.all()))
        .to_series()
        .rename(raw.name)
    )


def _character_label(character: str) -> str:
    """`U+200B ZERO WIDTH SPACE`: a character as a reader can see it."""
    return f"U+{ord(character):04X} {unicodedata.name(character, 'unnamed')}"


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
    if KEY in out.columns:
        out = out.with_columns(realign(normalise_keys(out.get_column(KEY)), lengths))
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
