"""Value maps of source profiles: explicit tables and the built-in translations.

A map turns the distinct values of a column into the contract's form (`D` -> `de`, "Euro" ->
`EUR`). Python runs once per distinct value, never per row; the result is spread back over
the column by a join. A value a map does not know comes back as null, and the caller reports
it as an error of the column the map feeds.
"""

from __future__ import annotations

import gettext
import unicodedata
from collections.abc import Callable, Mapping
from functools import cache
from typing import Final

import langcodes
import polars as pl
import pycountry

from validators.reference import ACTIVE_CURRENCIES, canonical_language, is_valid_language

#: SAP's one-letter language keys (table T002, SPRAS) -> BCP 47.
SAP_LANGUAGES: Final[dict[str, str]] = {
    "D": "de",
    "E": "en",
    "F": "fr",
    "I": "it",
    "S": "es",
    "N": "nl",
    "P": "pt",
    "L": "pl",
    "C": "cs",
    "K": "da",
    "V": "sv",
    "O": "no",
    "U": "fi",
    "T": "tr",
    "R": "ru",
    "J": "ja",
    "1": "zh",
    "3": "ko",
}

# Locales whose names of currencies and countries (pycountry's gettext catalogues) are read
# besides the English ones: the languages ERPs in Europe write their exports in.
_NAME_LOCALES: Final[tuple[str, ...]] = (
    "de", "fr", "it", "es", "nl", "pt", "pl", "cs", "da", "sv", "nb_NO", "fi",
)  # fmt: skip

# Common forms no ISO table holds: symbols and abbreviations seen in ERP exports.
_CURRENCY_FORMS: Final[dict[str, str]] = {
    "€": "EUR",
    "euros": "EUR",
    "$": "USD",
    "us$": "USD",
    "dollar": "USD",
    "us dollars": "USD",
    "£": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "sfr": "CHF",
    "sfr.": "CHF",
    "fr.": "CHF",
    "franken": "CHF",
    "swiss francs": "CHF",
    "¥": "JPY",
    "yen": "JPY",
    "kč": "CZK",
    "zł": "PLN",
}

#: The names of the built-in translations, as a profile writes them.
BUILT_IN: Final[tuple[str, ...]] = (
    "currency_name",
    "language_name",
    "country_name",
    "sap_language",
)


def folded(text: str) -> str:
    """A name as it is matched: NFC, trimmed, inner spaces collapsed, case-folded."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def _catalogue(domain: str, locale: str) -> gettext.NullTranslations:
    try:
        return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[locale])
    except OSError:
        return gettext.NullTranslations()


@cache
def _currency_names() -> dict[str, str]:
    """folded name (English and the locales') -> ISO 4217 code, active currencies only."""
    names: dict[str, str] = {}
    catalogues = [_catalogue("iso4217", locale) for locale in _NAME_LOCALES]
    for currency in pycountry.currencies:
        code = currency.alpha_3
        names.setdefault(folded(currency.name), code)
        for catalogue in catalogues:
            names.setdefault(folded(catalogue.gettext(currency.name)), code)
    names.update(_CURRENCY_FORMS)
    return names


@cache
def _country_names() -> dict[str, str]:
    """folded name, official name, alpha-3 or alpha-2 -> ISO 3166 alpha-2."""
    names: dict[str, str] = {}
    catalogues = [_catalogue("iso3166-1", locale) for locale in _NAME_LOCALES]
    for country in pycountry.countries:
        code = country.alpha_2
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                names.setdefault(folded(name), code)
                for catalogue in catalogues:
                    names.setdefault(folded(catalogue.gettext(name)), code)
    for country in pycountry.countries:  # codes win over names
        names[folded(country.alpha_3)] = country.alpha_2
        names[folded(country.alpha_2)] = country.alpha_2
    return names


def currency_name(value: str) -> str | None:
    """An ISO 4217 code, or a currency's name in English or a European language -> its code."""
    code = value.strip().upper()
    if code in ACTIVE_CURRENCIES:
        return code
    return _currency_names().get(folded(value))


def language_name(value: str) -> str | None:
    """A BCP 47 tag (`de_DE` too), or a language's name in its own or another language -> tag."""
    text = value.strip()
    tag = canonical_language(text)
    if is_valid_language(tag):
        return tag
    try:
        found = langcodes.find(text)
    except LookupError:
        return None
    # langcodes matches loosely; take only a name that is the language's name in some language
    wanted = folded(text)
    for locale in (found.language or "en", "en", *_NAME_LOCALES):
        if folded(found.display_name(locale)) == wanted:
            return str(found.to_tag())
    return None


def country_name(value: str) -> str | None:
    """An ISO 3166 alpha-2 or alpha-3 code, or a country's name -> its alpha-2 code."""
    return _country_names().get(folded(value))


def sap_language(value: str) -> str | None:
    """An SAP one-letter language key -> BCP 47 (`D` -> `de`); any other value is unknown."""
    return SAP_LANGUAGES.get(value.strip().upper())


TRANSLATIONS: Final[dict[str, Callable[[str], str | None]]] = {
    "currency_name": currency_name,
    "language_name": language_name,
    "country_name": country_name,
    "sap_language": sap_language,
}


def explicit_map(table: Mapping[str, str]) -> Callable[[str], str | None]:
    """A map from a profile's table: keys match trimmed and case-insensitively."""
    lookup = {folded(key): value for key, value in table.items()}
    return lambda value: lookup.get(folded(value))


def map_values(
    values: pl.Series, translate: Callable[[str], str | None]
) -> tuple[pl.Series, pl.Series]:
    """Translate each distinct non-blank value once; return (translated, unknown).

    `translated` holds the translation, blank cells as they are, and null where the map does
    not know the value; `unknown` is true exactly there.
    """
    blank = values.str.strip_chars().fill_null("") == ""
    distinct = values.filter(~blank).unique()
    results = pl.Series([translate(v) for v in distinct], dtype=pl.String)
    translated = values.replace_strict(distinct, results, default=None, return_dtype=pl.String)
    translated = pl.select(pl.when(blank).then(values).otherwise(translated)).to_series()
    unknown = ~blank & translated.is_null()
    return translated.rename(values.name), unknown.rename(values.name)
