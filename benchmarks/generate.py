"""Seeded generator of realistic ERP customer exports (CSV) for the erp-sync benchmark.

    python -m benchmarks.generate OUT.csv --customers 1000000 --seed 42
    python -m benchmarks.generate OUT.csv --customers 1000000 --seed 42 \\
        --variant-of-seed 42 --changed 0.10 --new 0.05

One row per customer-contact pair (CONTRACT.md section 1), about 2.2 rows per customer: European
company names, addresses, postal codes and phone numbers (DE, AT, CH, FR, BE, IT, ES, NL, PL, SE,
DK, NO, FI), ERP numbers with leading zeros, currency and language codes in case variants, notes
with commas, quotes and newlines, contact emails in case variants (the same contact twice now and
then), and about 2% invalid rows (bad currency, language, email, boolean; blank name; contact
without email).

Everything is generated column-wise with a seeded numpy Generator and polars expressions; no
per-row Python loop. The same arguments give the same bytes. The words (names, streets, cities,
notes, ...) are data files in benchmarks/wordlists/; this module holds the logic.

A variant (`--variant-of-seed S`) is the base file of seed S with `--changed` of its customers
changed (name, billing city, notes or contact phones), every other row as in the base file, and
`--new` x customers new customers, with numbers above the base file's, appended at the end.
`--seed` then picks which customers change and how.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

# --------------------------------------------------------------------------------------------
# Word lists: data files in benchmarks/wordlists/, one per country and common.toml (README.md)
# --------------------------------------------------------------------------------------------

# beside this module, so that the generator finds them from any working directory
WORDLISTS = Path(__file__).resolve().parent / "wordlists"


@functools.cache
def read_wordlist(name: str) -> dict[str, Any]:
    """The parsed data file benchmarks/wordlists/<name>.toml, read once per process."""
    with (WORDLISTS / f"{name}.toml").open("rb") as f:
        return tomllib.load(f)


def _entries(country: str, key: str) -> list[Any]:
    """A country's list, each `{ from = "de", take = 20 }` replaced by the first 20 entries of
    the same list of that country (all of them without `take`)."""
    entries: list[Any] = []
    for entry in read_wordlist(country)[key]:
        if isinstance(entry, dict) and "from" in entry:
            entries += _entries(entry["from"], key)[: entry.get("take")]
        else:
            entries.append(entry)
    return entries


def load_countries() -> list[dict[str, Any]]:
    """Every country of common.toml, in its order, with its lists as in its data file."""
    return [
        {k: _entries(name, k) if isinstance(v, list) else v for k, v in read_wordlist(name).items()}
        for name in read_wordlist("common")["countries"]
    ]


COUNTRIES = load_countries()
_COMMON = read_wordlist("common")
ROLES: list[str] = _COMMON["roles"]
NOTES: list[str] = _COMMON["notes"]
NOTE_SUFFIXES_CHANGED: list[str] = _COMMON["note_suffixes_changed"]
ACCENT_MAP: dict[str, str] = _COMMON["accents"]
BOOL_TRUE: list[str] = _COMMON["booleans"]["true"]
BOOL_FALSE: list[str] = _COMMON["booleans"]["false"]
BAD_CURRENCIES: list[str] = _COMMON["invalid"]["currencies"]
BAD_LANGUAGES: list[str] = _COMMON["invalid"]["languages"]
BAD_EMAILS: list[str] = _COMMON["invalid"]["emails"]
BAD_BOOLEANS: list[str] = _COMMON["invalid"]["booleans"]


# --------------------------------------------------------------------------------------------
# Public constants (the tests and the benchmark use them)
# --------------------------------------------------------------------------------------------

HEADER = [
    "erp_customer_number",
    "name",
    "email",
    "default_currency",
    "default_language",
    "notes",
    "billing_street",
    "billing_city",
    "billing_postal_code",
    "billing_country",
    "shipping_street",
    "shipping_city",
    "shipping_postal_code",
    "shipping_country",
    "contact_email",
    "contact_name",
    "contact_phone",
    "contact_role",
    "contact_is_primary",
]
VALID_CURRENCIES = frozenset({"EUR", "CHF", "SEK", "PLN", "DKK", "GBP", "NOK"})
VALID_LANGUAGES = frozenset(
    {t.lower().replace("_", "-") for c in COUNTRIES for t in c["languages"]} | {"en", "en-gb"}
)
VALID_BOOLEANS = frozenset({"true", "false", "1", "0", "yes", "no", "y", "n", "x", ""})
# Syntax check used by the tests; every valid address this generator writes passes it.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"

ERROR_RATE = 0.02
# Contacts per customer: 0..3; a customer with no contact still has one row.
_CONTACTS_P = [0.08, 0.19, 0.30, 0.43]
_DUPLICATE_CONTACT_P = 0.04  # customers whose first contact appears twice (email case variant)
_MOVED_ROW_P = 0.003  # customers whose last row comes at the end of the file
_ID_START = 1000

_N_COUNTRIES = len(COUNTRIES)
_SHARES = np.array([c["share"] for c in COUNTRIES], dtype=np.float64)
_SHARES /= _SHARES.sum()


def _slug(e: pl.Expr) -> pl.Expr:
    return (
        e.str.to_lowercase()
        .str.replace_many(list(ACCENT_MAP), list(ACCENT_MAP.values()))
        .str.replace_all(r"[^a-z0-9-]", "")
    )


class _Table:
    """One list per country, flattened, picked per row with a country index (vectorised)."""

    def __init__(self, key: str):
        lists = [c[key] for c in COUNTRIES]
        self.lens = np.array([len(x) for x in lists], dtype=np.int64)
        self.offs = np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64)
        self.flat = [v for x in lists for v in x]
        self.values = pl.Series(
            key, [v if isinstance(v, str) else v["name"] for v in self.flat], dtype=pl.String
        )
        self.slugs = pl.select(_slug(pl.lit(self.values))).to_series()

    def local(self, u: np.ndarray, country: np.ndarray) -> np.ndarray:
        lens = self.lens[country]
        return np.minimum((u * lens).astype(np.int64), lens - 1)

    def get(self, country: np.ndarray, local: np.ndarray) -> pl.Series:
        return self.values.gather(self.offs[country] + local)

    def slug(self, country: np.ndarray, local: np.ndarray) -> pl.Series:
        """The entry in lower-case ASCII for mail addresses (Müller -> mueller)."""
        return self.slugs.gather(self.offs[country] + local)


_FIRST = _Table("first")
_LAST = _Table("last")
_STREETS = _Table("streets")
_CITIES = _Table("cities")
_CITY_BASE = np.array([c["postal_code"] for c in _CITIES.flat], dtype=np.int64)
_CITY_SPREAD = np.array([c["spread"] for c in _CITIES.flat], dtype=np.int64)
_LEGAL = _Table("legal")
_INDUSTRY = _Table("industry")
_LANG = _Table("languages")
_MAILBOX = _Table("mailboxes")
_CODE = pl.Series([c["code"] for c in COUNTRIES])
_LOCAL = pl.Series([c["local"] for c in COUNTRIES])
_TLD = pl.Series([c["tld"] for c in COUNTRIES])
_PHONE_CC = pl.Series([c["phone"] for c in COUNTRIES])
_MAIN_SHARE = np.array([c["main_share"] for c in COUNTRIES])
_IND_FIRST = np.array([c["industry_first"] for c in COUNTRIES])
_STYLE_CODES = {"after": 0, "before": 1, "comma": 2, "es": 3, "pl": 4}
_STYLE = np.array([_STYLE_CODES[c["street_style"]] for c in COUNTRIES])
_POSTAL_CODES = {"d5": 0, "d4": 1, "nl": 2, "pl": 3, "se": 4}
_POSTAL = np.array([_POSTAL_CODES[c["postal"]] for c in COUNTRIES])
_NL_LETTERS = pl.Series(list("ABCDEGHJKLMNPRSTVWXZ"))


def _pick(rng: np.random.Generator, values: list[str], n: int) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(rng.integers(0, len(values), n))


def _rng(seq: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seq))


# --------------------------------------------------------------------------------------------
# Column builders (each takes a country index per row and returns polars Series / frames)
# --------------------------------------------------------------------------------------------


def _by_case(df: pl.DataFrame, case: np.ndarray, exprs: list[pl.Expr]) -> pl.Series:
    """Row i gets exprs[case[i]]; each expression is evaluated on its own rows only (a
    when/then chain would evaluate every branch on every row)."""
    parts, where = [], []
    for c, expr in enumerate(exprs):
        idx = np.flatnonzero(case == c)
        if len(idx):
            parts.append(df[idx].select(expr.alias("v")).to_series())
            where.append(idx)
    if not parts:
        return pl.Series("v", [], dtype=pl.String)
    order = np.concatenate(where)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pl.concat(parts).gather(inverse)


def _cat(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literals, "@column" references and expressions: _cat("@st", " ", "@num")."""
    return pl.concat_str(
        [
            p if isinstance(p, pl.Expr) else pl.col(p[1:]) if p.startswith("@") else pl.lit(p)
            for p in parts
        ]
    )


def _company(rng: np.random.Generator, country: np.ndarray) -> pl.DataFrame:
    """Company name and its mail domain."""
    n = len(country)
    pattern = rng.choice(4, size=n, p=[0.35, 0.15, 0.35, 0.15])
    i_l1 = _LAST.local(rng.random(n), country)
    i_l2 = _LAST.local(rng.random(n), country)
    i_f = _FIRST.local(rng.random(n), country)
    legal = _LEGAL.get(country, _LEGAL.local(rng.random(n), country))
    i_ind = _INDUSTRY.local(rng.random(n), country)
    u = rng.random(n)
    tld = np.where(u < 0.85, country, np.where(u < 0.95, _N_COUNTRIES, _N_COUNTRIES + 1))
    df = pl.DataFrame(
        {
            "l1": _LAST.get(country, i_l1),
            "l2": _LAST.get(country, i_l2),
            "f": _FIRST.get(country, i_f),
            "lg": legal,
            "ind": _INDUSTRY.get(country, i_ind),
            "s_l1": _LAST.slug(country, i_l1),
            "s_l2": _LAST.slug(country, i_l2),
            "s_f": _FIRST.slug(country, i_f),
            "s_ind": _INDUSTRY.slug(country, i_ind),
        }
    )
    name = _by_case(
        df,
        np.where((pattern == 2) & _IND_FIRST[country], 4, pattern),
        [
            _cat("@l1", " ", "@lg"),  # Müller GmbH
            _cat("@l1", " & ", "@l2", " ", "@lg"),  # Müller & Schmidt GmbH
            _cat("@l1", " ", "@ind", " ", "@lg"),  # Müller Logistik GmbH
            _cat("@f", " ", "@l1"),  # Anna Müller
            _cat("@ind", " ", "@l1", " ", "@lg"),  # Transports Dubois SARL
        ],
    )
    host = _by_case(
        df,
        pattern,
        [
            pl.col("s_l1"),
            _cat("@s_l1", "-", "@s_l2"),
            _cat("@s_l1", "-", "@s_ind"),
            _cat("@s_f", "-", "@s_l1"),
        ],
    )
    domain = host + "." + pl.concat([_TLD, pl.Series(["com", "eu"])]).gather(tld)
    return pl.DataFrame({"name": name, "_domain": domain})


def _address(
    rng: np.random.Generator, country: np.ndarray, exclude_city: np.ndarray | None = None
) -> pl.DataFrame:
    """Street with house number, city, postal code and country, in each country's style."""
    n = len(country)
    street = _STREETS.get(country, _STREETS.local(rng.random(n), country))
    if exclude_city is None:
        city_local = _CITIES.local(rng.random(n), country)
    else:  # a different city of the same country
        lens = _CITIES.lens[country]
        shift = 1 + (rng.random(n) * np.maximum(lens - 1, 1)).astype(np.int64)
        city_local = (exclude_city + shift) % lens
    flat = _CITIES.offs[country] + city_local
    pc = _CITY_BASE[flat] + (rng.random(n) * _CITY_SPREAD[flat]).astype(np.int64)
    df = pl.DataFrame(
        {
            "st": street,
            "num": rng.integers(1, 180, n),
            "extra": rng.integers(1, 60, n),
            "letter": _pick(rng, ["a", "b", "c", "A", "B", "C", "D"], n),
            "nl": (
                _NL_LETTERS.gather(rng.integers(0, 20, n))
                + _NL_LETTERS.gather(rng.integers(0, 20, n))
            ),
            "pc": pc,
            "code": _CODE.gather(country),
            "local": _LOCAL.gather(country),
        }
    ).with_columns(pl.col("num").cast(pl.String))
    style = _STYLE[country]
    u = rng.random(n)
    case = np.select(
        [style == 0, style == 1, style == 2, style == 3],
        [
            0 + (u < 0.08),
            2 + (u < 0.04) + 2 * ((u >= 0.04) & (u < 0.19)),
            5 + (u >= 0.6),
            7 + (u < 0.3),
        ],
        9 + (u < 0.4),
    )
    street = _by_case(
        df,
        case,
        [
            _cat("@st", " ", "@num"),  # Hauptstraße 12
            _cat("@st", " ", "@num", "@letter"),  # Hauptstraße 12a
            _cat("@num", " ", "@st"),  # 12 rue de la Paix
            _cat("@num", " bis ", "@st"),  # 12 bis rue de la Paix
            _cat("@num", ", ", "@st"),  # 12, rue de la Paix
            _cat("@st", ", ", "@num"),  # Via Roma, 12
            _cat("@st", " ", "@num"),  # Via Roma 12
            _cat("@st", ", ", "@num"),  # Calle Mayor, 12
            _cat(
                "@st",
                ", ",
                "@num",
                ", ",
                (pl.col("extra") % 8 + 1).cast(pl.String),
                "º ",
                pl.col("letter").str.to_uppercase(),
            ),  # Calle Mayor, 12, 3º B
            _cat("@st", " ", "@num"),  # ul. Długa 12
            _cat("@st", " ", "@num", "/", pl.col("extra").cast(pl.String)),  # ul. Długa 12/3
        ],
    )
    d5 = pl.col("pc").cast(pl.String).str.zfill(5)
    d4 = pl.col("pc").cast(pl.String).str.zfill(4)
    postal = _by_case(
        df,
        _POSTAL[country],
        [
            d5,  # 10115
            d4,  # 1010
            _cat(d4, " ", "@nl"),  # 1011 AB
            _cat(d5.str.slice(0, 2), "-", d5.str.slice(2)),  # 00-950
            _cat(d5.str.slice(0, 3), " ", d5.str.slice(3)),  # 111 20
        ],
    )
    u = rng.random(n)
    ctry = _by_case(
        df,
        np.where(u < 0.94, 0, np.where(u < 0.99, 1, 2)),
        [
            pl.col("code"),
            pl.col("local"),
            pl.col("code").str.to_lowercase(),
        ],
    )
    return pl.DataFrame(
        {
            "street": street,
            "city": _CITIES.get(country, city_local),
            "postal_code": postal,
            "country": ctry,
            "_city_local": city_local,
        }
    )


def _phone(rng: np.random.Generator, country: np.ndarray) -> pl.Series:
    """Phone numbers in the usual international and national notations, for example
    +49 30 1234567, +49 (0)30 1234567, 0049 30 1234567, +49301234567, +49-30-1234567,
    030 1234567, +49 30 123 4567."""
    n = len(country)
    fmt = rng.choice(7, size=n, p=[0.35, 0.10, 0.10, 0.15, 0.08, 0.07, 0.15])
    #                      0     1       2     3    4    5    6
    lead = pl.Series(["+", "+", "00", "+", "+", "0", "+"]).gather(fmt)
    sep1 = pl.Series([" ", " (0)", " ", "", "-", "", " "]).gather(fmt)
    sep2 = pl.Series([" ", " ", " ", "", "-", " ", " "]).gather(fmt)
    sep3 = pl.Series(["", "", "", "", "", "", " "]).gather(fmt)
    cc = pl.concat([_PHONE_CC, pl.Series([""])]).gather(  # national notation: no code
        np.where(fmt == 5, len(_PHONE_CC), country)
    )
    width = rng.integers(3, 6, n)  # digits after the first three of the subscriber number
    low = (10**width + rng.integers(0, 10**width)).astype(np.int64)
    ext = rng.random(n) < 0.03
    df = pl.DataFrame(
        {
            "lead": lead,
            "cc": cc,
            "s1": sep1,
            "area": rng.integers(1, 999, n),
            "s2": sep2,
            "hi": rng.integers(100, 1000, n),
            "s3": sep3,
            "lo": low,
            "ext": pl.Series(np.where(ext, rng.integers(10, 300, n), 0)),
        }
    )
    return df.select(
        pl.concat_str(
            [
                "lead",
                "cc",
                "s1",
                pl.col("area").cast(pl.String),
                "s2",
                pl.col("hi").cast(pl.String),
                "s3",
                pl.col("lo").cast(pl.String).str.slice(1),
                pl.when(pl.col("ext") > 0)
                .then(pl.concat_str([pl.lit(" ext. "), pl.col("ext").cast(pl.String)]))
                .otherwise(pl.lit("")),
            ]
        ).alias("contact_phone")
    ).to_series()


def _notes(rng: np.random.Generator, n: int) -> pl.Series:
    df = pl.DataFrame(
        {
            "k": rng.choice(4, size=n, p=[0.47, 0.35, 0.14, 0.04]),
            "a": _pick(rng, NOTES, n),
            "b": _pick(rng, NOTES, n),
            "c": _pick(rng, NOTES, n),
            "sep": _pick(rng, [" / ", "\n", "; ", ". "], n),
        }
    )
    k = pl.col("k")
    return df.select(
        pl.when(k == 0)
        .then(pl.lit(""))
        .when(k == 1)
        .then(pl.col("a"))
        .when(k == 2)
        .then(pl.concat_str([pl.col("a"), pl.col("sep"), pl.col("b")]))
        .otherwise(pl.concat_str([pl.col("a"), pl.col("b"), pl.col("c")], separator="; "))
        .alias("notes")
    ).to_series()


# --------------------------------------------------------------------------------------------
# Pipeline: customers -> rows (contacts) -> [variant changes] -> quirks and invalid rows
# --------------------------------------------------------------------------------------------


def _put(s: pl.Series, mask: np.ndarray, values) -> pl.Series:
    """`s` with the entries where `mask` holds replaced by `values` (a Series for those
    entries, or a function of them). Used for the rare variants, so that string work is done
    only on the few entries that vary."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return s
    new = values(s.gather(idx)) if callable(values) else values
    s = s.clone()
    s.scatter(idx, new)
    return s


def _blank(s: pl.Series) -> pl.Series:
    return s.str.slice(0, 0)


_CURRENCY_CODES = ["EUR", "CHF", "SEK", "PLN", "DKK", "GBP", "NOK"]
_COUNTRY_CURRENCY = np.array([_CURRENCY_CODES.index(c["currency"]) for c in COUNTRIES])


def _customers(rng: np.random.Generator, n: int, id_start: int) -> pl.DataFrame:
    country = rng.choice(_N_COUNTRIES, size=n, p=_SHARES)
    ids = id_start + np.cumsum(rng.integers(1, 21, size=n))
    id_fmt = rng.choice(4, size=n, p=[0.70, 0.12, 0.08, 0.10])
    company = _company(rng, country)
    billing = _address(rng, country)
    other = _address(rng, country)
    ship_mode = rng.choice(3, size=n, p=[0.56, 0.28, 0.16])  # same / none / different

    # ERP number: mostly zero-padded to 10 digits, some with a prefix or 8 digits
    number = _by_case(
        pl.DataFrame({"id": ids}).with_columns(pl.col("id").cast(pl.String)),
        id_fmt,
        [
            pl.col("id").str.zfill(10),  # 0000104233
            _cat("K", pl.col("id").str.zfill(8)),  # K00104233
            _cat("C-", pl.col("id").str.zfill(9)),  # C-000104233
            pl.col("id").str.zfill(8),  # 00104233
        ],
    )

    # name: 1% decomposed Unicode (NFD), 1% with surrounding spaces
    u = rng.random(n)
    name = _put(company["name"], u < 0.01, lambda s: s.str.normalize("NFD"))
    name = _put(name, (u >= 0.01) & (u < 0.02), lambda s: "  " + s + " ")

    # company email: a mailbox at the company's domain; some capitalised, padded or missing
    u = rng.random(n)
    mailbox = _MAILBOX.get(country, _MAILBOX.local(rng.random(n), country))
    mailbox = _put(mailbox, u < 0.05, lambda s: s.str.to_titlecase())
    email = mailbox + "@" + company["_domain"]
    email = _put(email, u < 0.01, lambda s: " " + s + " ")
    email = _put(email, u >= 0.82, _blank)

    # currency: the country's, else EUR; some GBP; some in lower or title case
    u = rng.random(n)
    cur_idx = np.where(u < _MAIN_SHARE[country], _COUNTRY_CURRENCY[country], 0)
    cur_idx[u < 0.015] = _CURRENCY_CODES.index("GBP")
    currency = pl.Series(_CURRENCY_CODES).gather(cur_idx)
    u = rng.random(n)
    currency = _put(currency, u < 0.06, lambda s: s.str.to_lowercase())
    currency = _put(currency, (u >= 0.06) & (u < 0.07), lambda s: s.str.to_titlecase())

    # language: the country's tags (with _ and case variants), some English, some re-cased
    u = rng.random(n)
    language = _LANG.get(country, _LANG.local(rng.random(n), country))
    language = _put(language, u < 0.03, _pick(rng, ["en-GB", "en", "en-gb"], int((u < 0.03).sum())))
    language = _put(language, u > 0.98, lambda s: s.str.to_uppercase())
    language = _put(language, (u > 0.96) & (u <= 0.98), lambda s: s.str.to_lowercase())

    df = pl.DataFrame(
        {
            "_cid": np.arange(n, dtype=np.int64),
            "_id": ids,
            "_country": country,
            "_domain": company["_domain"],
            "_city_local": billing["_city_local"],
            "_ship_same": ship_mode == 0,
            "_ship": ship_mode,
            "erp_customer_number": number,
            "name": name,
            "email": email,
            "default_currency": currency,
            "default_language": language,
            "notes": _notes(rng, n),
            "billing_street": billing["street"],
            "billing_city": billing["city"],
            "billing_postal_code": billing["postal_code"],
            "billing_country": billing["country"],
            "_o_street": other["street"],
            "_o_city": other["city"],
            "_o_pc": other["postal_code"],
            "_o_country": other["country"],
        }
    )
    ship = pl.col("_ship")

    def shipping(same: str, other_col: str) -> pl.Expr:
        return (
            pl.when(ship == 0)
            .then(pl.col(same))
            .when(ship == 1)
            .then(pl.lit(""))
            .otherwise(pl.col(other_col))
        )

    return df.select(
        pl.exclude("_ship", "_o_street", "_o_city", "_o_pc", "_o_country"),
        shipping("billing_street", "_o_street").alias("shipping_street"),
        shipping("billing_city", "_o_city").alias("shipping_city"),
        shipping("billing_postal_code", "_o_pc").alias("shipping_postal_code"),
        shipping("billing_country", "_o_country").alias("shipping_country"),
    )


def _rows(rng: np.random.Generator, cust: pl.DataFrame) -> pl.DataFrame:
    """One row per customer-contact pair, customer columns repeated on each row."""
    n = cust.height
    country_c = cust["_country"].to_numpy()
    k = rng.choice(4, size=n, p=_CONTACTS_P)
    nrows = np.maximum(k, 1)
    total = int(nrows.sum())
    starts = np.cumsum(nrows) - nrows
    cid = np.repeat(np.arange(n, dtype=np.int64), nrows)
    slot = np.arange(total, dtype=np.int64) - np.repeat(starts, nrows)
    has = slot < k[cid]
    country = country_c[cid]

    # contacts: distinct first names within a customer, one mail scheme per company
    first_local = (_FIRST.local(rng.random(n), country_c)[cid] + slot * 7) % _FIRST.lens[country]
    last_local = _LAST.local(rng.random(total), country)
    first = _FIRST.get(country, first_local)
    last = _LAST.get(country, last_local)
    fs = _FIRST.slug(country, first_local)
    ls = _LAST.slug(country, last_local)
    scheme = rng.choice(4, size=n, p=[0.60, 0.15, 0.15, 0.10])[cid]
    # first.last, f.last, firstlast, first_last
    local = (
        _put(fs, scheme == 1, lambda s: s.str.slice(0, 1))
        + pl.Series([".", ".", "", "_"]).gather(scheme)
        + ls
    )

    u = rng.random(total)
    cname = first + " " + last
    cname = _put(cname, u < 0.06, (last + ", " + first).filter(pl.Series(u < 0.06)))
    cname = _put(cname, (u >= 0.06) & (u < 0.10), lambda s: "Dr. " + s)
    m = (u >= 0.10) & (u < 0.12)
    cname = _put(cname, m, (first + " " + last.str.to_uppercase()).filter(pl.Series(m)))

    prim_slot = (rng.random(n) * nrows).astype(np.int64)
    prim_kind = rng.choice(3, size=n, p=[0.88, 0.02, 0.10])[cid]  # one / two / none
    is_prim = (slot == prim_slot[cid]) | (
        (prim_kind == 1) & (k[cid] >= 2) & (slot == (prim_slot[cid] + 1) % nrows[cid])
    )
    is_prim &= (prim_kind != 2) & has
    u = rng.random(total)
    primary = _put(_pick(rng, BOOL_FALSE, total), u >= 0.6, _blank)
    primary = _put(primary, is_prim, _pick(rng, BOOL_TRUE, int(is_prim.sum())))
    primary = _put(primary, ~has, _blank)
    phone = _put(_phone(rng, country), ~has | (rng.random(total) >= 0.9), _blank)
    role = _put(_pick(rng, ROLES, total), ~has | (rng.random(total) >= 0.75), _blank)
    case = rng.choice(3, size=total, p=[0.85, 0.10, 0.05])  # lower, Title, UPPER

    df = pl.DataFrame(
        {
            "_cid": cid,
            "_has": has,
            "_fs": fs,
            "_ls": ls,
            "_local": local,
            "_case": case,
            "_domain": cust["_domain"].gather(cid),
            "_cname": cname,
            "contact_phone": phone,
            "contact_role": role,
            "contact_is_primary": primary,
        }
    )

    # the same contact twice for some customers, its email in another case; sometimes a new phone
    dup_c = np.flatnonzero((k >= 1) & (rng.random(n) < _DUPLICATE_CONTACT_P))
    new_phone = _phone(rng, country_c[dup_c])
    swap = rng.random(len(dup_c)) < 0.3
    dup = df[starts[dup_c]]
    dup = dup.with_columns(
        pl.Series("_case", np.where(dup["_case"].to_numpy() == 0, 1, 0)),
        _put(dup["contact_phone"], swap, new_phone.filter(pl.Series(swap))),
    )
    df = pl.concat([df, dup])

    case = df["_case"].to_numpy()
    local = _put(df["_local"], case == 1, lambda s: s.str.to_titlecase())
    local = _put(local, case == 2, lambda s: s.str.to_uppercase())
    has = df["_has"].to_numpy()
    df = df.with_columns(
        _put(local + "@" + df["_domain"], ~has, _blank).alias("contact_email"),
        _put(df["_cname"], ~has, _blank).alias("contact_name"),
    )

    # order: customer by customer, rows by slot, a duplicate after its customer's rows; a few
    # customers have their last row moved to the end of the file
    moved = (nrows >= 2) & (rng.random(n) < _MOVED_ROW_P)
    all_cid = np.concatenate([cid, dup_c])
    all_slot = np.concatenate([slot, np.full(len(dup_c), 9, dtype=np.int64)])
    is_last = np.concatenate([slot == nrows[cid] - 1, np.zeros(len(dup_c), dtype=bool)])
    primary_key = np.where(is_last & moved[all_cid], n + all_cid, all_cid)
    order = np.lexsort((all_slot, primary_key))
    df = df[order]
    customer_cols = [c for c in cust.columns if c not in ("_cid", "_domain")]
    return pl.concat(
        [
            df.select(
                "_cid",
                "_fs",
                "_ls",
                "_cname",
                "contact_email",
                "contact_name",
                "contact_phone",
                "contact_role",
                "contact_is_primary",
            ),
            cust.select(customer_cols)[df["_cid"].to_numpy()],
        ],
        how="horizontal",
    )


def _scatter(df: pl.DataFrame, column: str, idx: np.ndarray, values) -> pl.DataFrame:
    if len(idx) == 0:
        return df
    s = df[column].clone()
    s.scatter(idx, values)
    return df.with_columns(s)


def _error_plan(rng: np.random.Generator, n: int, error_rate: float) -> dict[str, Any]:
    """Where the oddities and invalid values go, and which: drawn before the data is final so
    that a variant can see which rows will lose their name."""
    plan: dict[str, Any] = {
        "pad": np.flatnonzero(rng.random(n) < 0.003),  # " 0000123" (valid once trimmed)
        "conflict": np.flatnonzero(rng.random(n) < 0.002),  # name in upper case on one row
    }
    k = round(error_rate * n)
    rows = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    kind = rng.choice(len(_ERROR_KINDS), size=k, p=[p for _, p in _ERROR_KINDS])
    for t, (name, _) in enumerate(_ERROR_KINDS):
        plan[name] = rows[kind == t]
    plan["currency_values"] = _pick(rng, BAD_CURRENCIES, len(plan["currency"]))
    plan["language_values"] = _pick(rng, BAD_LANGUAGES, len(plan["language"]))
    plan["email_values"] = _pick(rng, BAD_EMAILS, len(plan["email"]))
    plan["contact_email_at_end"] = rng.random(len(plan["contact_email"])) < 0.5
    plan["name_values"] = _pick(rng, ["", "", "   "], len(plan["blank_name"]))
    plan["boolean_values"] = _pick(rng, BAD_BOOLEANS, len(plan["boolean"]))
    return plan


# kinds of invalid rows and their shares
_ERROR_KINDS = [
    ("currency", 0.18),
    ("language", 0.16),
    ("email", 0.12),
    ("contact_email", 0.14),
    ("blank_name", 0.12),
    ("contact_without_email", 0.14),
    ("boolean", 0.14),
]


def _quirks_and_errors(df: pl.DataFrame, plan: dict[str, Any]) -> pl.DataFrame:
    """Valid oddities (padded numbers, conflicting names) and the invalid rows of the plan."""
    i = plan["pad"]
    df = _scatter(df, "erp_customer_number", i, " " + df["erp_customer_number"].gather(i))
    i = plan["conflict"]
    df = _scatter(df, "name", i, df["name"].gather(i).str.to_uppercase())
    df = _scatter(df, "default_currency", plan["currency"], plan["currency_values"])
    df = _scatter(df, "default_language", plan["language"], plan["language_values"])
    df = _scatter(df, "email", plan["email"], plan["email_values"])
    i = plan["contact_email"]  # "anna.schmidt@" or "anna schmidt@domain"
    bad = (
        df[i]
        .select(
            pl.when(pl.Series(plan["contact_email_at_end"]))
            .then(pl.concat_str([pl.col("_fs"), pl.lit("."), pl.col("_ls"), pl.lit("@")]))
            .otherwise(
                pl.concat_str(
                    [
                        pl.col("_fs"),
                        pl.lit(" "),
                        pl.col("_ls"),
                        pl.lit("@"),
                        pl.col("contact_email").str.split("@").list.last(),
                    ]
                )
            )
        )
        .to_series()
    )
    df = _scatter(df, "contact_email", i, bad)
    df = _scatter(df, "name", plan["blank_name"], plan["name_values"])
    i = plan["contact_without_email"]  # contact columns filled, contact email blank
    df = _scatter(df, "contact_email", i, _blank(df["contact_email"].gather(i)))
    df = _scatter(df, "contact_name", i, df["_cname"].gather(i))
    df = _scatter(df, "contact_is_primary", plan["boolean"], plan["boolean_values"])
    return df


def _apply_changes(
    rng: np.random.Generator,
    rows: pl.DataFrame,
    cust: pl.DataFrame,
    fraction: float,
    blank_name_rows: np.ndarray,
) -> pl.DataFrame:
    """Change `fraction` of the customers: a new name, a move to another city, new notes, or
    new contact phone numbers. Every chosen customer ends up with at least one changed value."""
    n = cust.height
    k = round(fraction * n)
    if k == 0:
        return rows
    chosen = np.sort(rng.choice(n, size=k, replace=False))
    kind = rng.choice(4, size=k)  # 0 name, 1 city, 2 notes, 3 phone
    row_cid = rows["_cid"].to_numpy()
    phone_filled = (rows["contact_phone"] != "").to_numpy()
    has_phone = np.bincount(row_cid, weights=phone_filled, minlength=n) > 0
    kind[(kind == 3) & ~has_phone[chosen]] = 2
    # a new name would not show on a customer whose every row gets a blank name
    blanked = np.bincount(row_cid[blank_name_rows], minlength=n) >= np.bincount(
        row_cid, minlength=n
    )
    kind[(kind == 0) & blanked[chosen]] = 2
    country = cust["_country"].to_numpy()[chosen]

    old = cust[chosen]
    new_name = _company(rng, country)["name"]
    new_name = pl.select(
        pl.when(new_name == old["name"]).then(new_name + " Holding").otherwise(new_name)
    ).to_series()
    new_addr = _address(rng, country, exclude_city=old["_city_local"].to_numpy())
    new_notes = _pick(rng, NOTES, k) + " – " + _pick(rng, NOTE_SUFFIXES_CHANGED, k)
    new_notes = pl.select(
        pl.when(new_notes == old["notes"]).then(new_notes + " (geändert)").otherwise(new_notes)
    ).to_series()

    pos = np.full(n, -1, dtype=np.int64)
    pos[chosen] = np.arange(k)
    rpos = pos[row_cid]
    rkind = np.where(rpos >= 0, kind[np.maximum(rpos, 0)], -1)

    i = np.flatnonzero(rkind == 0)
    rows = _scatter(rows, "name", i, new_name.gather(rpos[i]))
    i = np.flatnonzero(rkind == 1)
    same = rows["_ship_same"].to_numpy()
    for part, col in (("street", "street"), ("city", "city"), ("postal_code", "postal_code")):
        values = new_addr[col].gather(rpos[i])
        rows = _scatter(rows, f"billing_{part}", i, values)
        j = same[i]
        rows = _scatter(rows, f"shipping_{part}", i[j], values.filter(pl.Series(j)))
    i = np.flatnonzero(rkind == 2)
    rows = _scatter(rows, "notes", i, new_notes.gather(rpos[i]))
    i = np.flatnonzero((rkind == 3) & phone_filled)
    row_country = cust["_country"].to_numpy()[row_cid[i]]
    rows = _scatter(rows, "contact_phone", i, _phone(rng, row_country))
    return rows


def _pipeline(
    seq: np.random.SeedSequence,
    customers: int,
    id_start: int,
    error_rate: float,
    change_seq: np.random.SeedSequence | None = None,
    changed: float = 0.0,
) -> tuple[pl.DataFrame, int]:
    s_cust, s_rows, s_err = seq.spawn(3)
    cust = _customers(_rng(s_cust), customers, id_start)
    rows = _rows(_rng(s_rows), cust)
    plan = _error_plan(_rng(s_err), rows.height, error_rate)
    if change_seq is not None and changed > 0:
        rows = _apply_changes(_rng(change_seq), rows, cust, changed, plan["blank_name"])
    rows = _quirks_and_errors(rows, plan)
    max_id = int(cust["_id"].to_numpy().max()) if customers else id_start
    return rows.select(HEADER), max_id


def generate(customers: int, seed: int, error_rate: float = ERROR_RATE) -> pl.DataFrame:
    """The base export for `seed`: one row per customer-contact pair, all columns text."""
    rows, _ = _pipeline(np.random.SeedSequence(seed), customers, _ID_START, error_rate)
    return rows


def generate_variant(
    customers: int,
    base_seed: int,
    seed: int = 0,
    changed: float = 0.10,
    new: float = 0.05,
    error_rate: float = ERROR_RATE,
) -> pl.DataFrame:
    """A re-sync of the base export of `base_seed`: `changed` of its customers changed, the
    others' rows as in the base, and `new` x customers new customers (new numbers) at the end.
    `seed` picks which customers change and how."""
    variant_seq = np.random.SeedSequence([base_seed, seed, 0x5EED])
    s_change, s_new = variant_seq.spawn(2)
    rows, max_id = _pipeline(
        np.random.SeedSequence(base_seed),
        customers,
        _ID_START,
        error_rate,
        change_seq=s_change,
        changed=changed,
    )
    n_new = round(new * customers)
    if n_new:
        extra, _ = _pipeline(s_new, n_new, max_id + 1000, error_rate)
        rows = pl.concat([rows, extra])
    return rows


def write_csv(df: pl.DataFrame, path: str | Path) -> None:
    """RFC 4180 CSV, UTF-8, LF line ends; empty cells unquoted, fields quoted only as needed."""
    df.select(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in HEADER
    ).write_csv(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write a seeded, realistic ERP customer export (CSV) for benchmarks.",
    )
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument(
        "--customers",
        type=int,
        default=1000,
        help="customers in the base file (default 1000; rows are about 2.2x)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of the base file; with --variant-of-seed, of the changes",
    )
    parser.add_argument(
        "--variant-of-seed",
        type=int,
        default=None,
        metavar="S",
        help="write a re-sync variant of the base file of seed S",
    )
    parser.add_argument(
        "--changed",
        type=float,
        default=0.10,
        help="variant: share of customers changed (default 0.10)",
    )
    parser.add_argument(
        "--new",
        type=float,
        default=0.05,
        help="variant: new customers as a share of --customers (default 0.05)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=ERROR_RATE, help="share of invalid rows (default 0.02)"
    )
    args = parser.parse_args(argv)
    if (
        args.customers < 0
        or not (0 <= args.changed <= 1)
        or args.new < 0
        or not (0 <= args.error_rate <= 1)
    ):
        parser.error(
            "--customers, --changed, --new and --error-rate must be non-negative "
            "(--changed and --error-rate at most 1)"
        )

    started = time.perf_counter()
    if args.variant_of_seed is None:
        df = generate(args.customers, args.seed, args.error_rate)
    else:
        df = generate_variant(
            args.customers, args.variant_of_seed, args.seed, args.changed, args.new, args.error_rate
        )
    generated = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(df, args.out)
    done = time.perf_counter()
    size = args.out.stat().st_size
    print(
        f"{args.out}: {df.height:,} rows, {size / 1e6:,.1f} MB "
        f"(generate {generated - started:.1f}s, write {done - generated:.1f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
