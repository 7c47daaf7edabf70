"""Properties of the validators stage, checked with hypothesis."""

from __future__ import annotations

import string
import unicodedata

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from validators import ALL_COLUMNS, resolve_header, validate_rows
from validators.normalise import normalise_columns
from validators.reference import email_problem, fast_email_ok
from validators.testing import make_rows
from validators.validate import customer_ids

# --- normalising twice changes nothing -------------------------------------------------------

_TRICKY = " \t\u00a0\u2003_-@.ÉéeE\u0301\u0308oO\u212bÅ\u00c5İıßẞ"
# format characters (zero-width space and joiner, soft hyphen, BOM, bidi marks, a tag) and the
# reports' formula quote, which they may hide
_INVISIBLE = "\u200b\u200d\u00ad\ufeff\u200e\u202e\U000e0041'="
cells = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + _TRICKY, max_size=12),
    st.text(alphabet="Zu-0 " + _TRICKY[-12:] + _INVISIBLE, max_size=12),
    st.sampled_from(
        ["de_ch", "EN-gb", " en ", "zh-hant-tw", "iw", "sh", "xx", "en--us", "x", "Yes", " 0 "]
    ),
    st.text(max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(*[cells] * len(ALL_COLUMNS)), min_size=1, max_size=8))
def test_normalising_twice_changes_nothing(values: list[tuple[str, ...]]) -> None:
    raw = pl.DataFrame(values, schema=list(ALL_COLUMNS), orient="row")
    once = normalise_columns(raw)
    assert normalise_columns(once).equals(once)


# --- valid rows and rejected rows are the input rows -----------------------------------------

HEADER = [
    "erp_customer_number",
    "name",
    "default_currency",
    "default_language",
    "email",
    "contact_email",
    "contact_name",
    "contact_is_primary",
]
records = st.one_of(
    st.fixed_dictionaries(
        {
            "erp_customer_number": st.sampled_from(
                ["A", " A", "A\u200b", "B", "\ufeffB", "c", "", "\u00ad", "k" * 101]
            ),
            "name": st.sampled_from(["Ann", "Bob", "", " Ann "]),
            "default_currency": st.sampled_from(["EUR", "eur", "EUX"]),
            "default_language": st.sampled_from(["de", "de_de", "xx"]),
            "email": st.sampled_from(["", "a@example.com", "bad@"]),
            "contact_email": st.sampled_from(["", "p@example.com", "Q@example.com", "q@"]),
            "contact_name": st.sampled_from(["", "Pat"]),
            "contact_is_primary": st.sampled_from(["", "x", "no", "maybe"]),
        }
    ),
    st.lists(st.sampled_from(["A", "B", ""]), max_size=len(HEADER) + 2),
)


def _key(cell: str | None) -> str:
    """The contract's key, written plainly: format characters removed, NFC, trimmed."""
    visible = "".join(c for c in cell or "" if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", visible).strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=12))
def test_valid_rows_and_rejected_rows_are_exactly_the_input_rows(rows: list) -> None:
    frame = make_rows(HEADER, rows)
    result = validate_rows(frame, resolve_header(HEADER))

    lines = set(frame.get_column("_line").to_list())
    rejected = result.rejected_rows.get_column("_line").to_list()
    valid = lines - set(rejected)
    assert len(rejected) == len(set(rejected)) and set(rejected) <= lines
    assert result.rows_read == frame.height == len(lines)
    assert result.rows_valid + result.rows_rejected == result.rows_read
    assert result.rows_rejected == len(rejected)
    assert result.rejected_rows.drop("errors").equals(frame.filter(pl.col("_line").is_in(rejected)))

    # every valid row belongs to an accepted customer; no accepted key has a rejected row
    accepted = set(result.customers.get_column("erp_customer_number").to_list())
    assert len(accepted) == result.customers.height
    valid_keys = {
        _key(k) for k in frame.filter(pl.col("_line").is_in(list(valid))).get_column("c0").to_list()
    }
    assert valid_keys == accepted
    rejected_keys = {_key(k) for k in result.rejected_rows.get_column("c0").to_list()} - {""}
    assert not accepted & rejected_keys
    assert result.customers_rejected == len(rejected_keys)
    assert set(result.keys_seen.to_list()) == accepted | rejected_keys

    # every rejected row has an error at its line; accepted rows have none
    errors = result.issues.filter(pl.col("severity") == "error")
    assert set(errors.get_column("line").to_list()) == set(rejected)

    # contacts belong to accepted customers, once per email, one primary at most
    contacts = result.contacts
    assert set(contacts.get_column("erp_customer_number").to_list()) <= accepted
    assert not contacts.select("erp_customer_number", "email").is_duplicated().any()
    primaries = contacts.filter("is_primary").get_column("erp_customer_number")
    assert not primaries.is_duplicated().any()


# --- the fast email pattern never accepts what email-validator rejects -----------------------

_LOCAL_CHARS = string.ascii_lowercase + string.digits + "._+-!#'"
_DOMAIN_CHARS = string.ascii_lowercase + string.digits + ".-"
tlds = st.one_of(
    st.sampled_from(["com", "de", "co", "test", "local", "arpa", "onion", "invalid", "localhost"]),
    st.sampled_from(["c", "123", "c0m", "x-y", "xn--p1ai", "ab--cd"]),
    st.text(alphabet=_DOMAIN_CHARS, min_size=1, max_size=66),
)
addresses = st.one_of(
    st.builds(
        lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
        st.text(alphabet=_LOCAL_CHARS, max_size=70),
        st.lists(st.text(alphabet=_DOMAIN_CHARS, max_size=66), max_size=4),
        tlds,
    ),
    st.builds(
        lambda n, m, k: f"{'a' * n}@{'b' * m}.{'c' * k}.com",
        st.integers(60, 68),
        st.integers(60, 66),
        st.integers(1, 190),
    ),
    st.text(alphabet=string.printable, max_size=40),
)

CORPUS = [
    "a@b.co",
    "first.last@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-example.com",
    "a@example-.com",
    "a@example..com",
    "a@example.123",
    "a@example.c0m",
    "a@localhost",
    "a@example.test",
    "a@example.local",
    "a@sub.example.onion",
    "a@ab--cd.com",
    "a@xn--p1ai.com",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 4) + ".com",
    "a+tag@example.com",
    "a_b-c@example.com",
    "a@b",
    "@example.com",
    "a@",
    "a b@example.com",
]


def _fast(address: str) -> bool:
    return bool(pl.select(fast_email_ok(pl.lit(address, dtype=pl.String))).item())


@settings(max_examples=1000, deadline=None)
@given(addresses)
@example("a@example.test")
def test_the_fast_email_pattern_never_accepts_what_email_validator_rejects(address: str) -> None:
    if _fast(address):
        assert email_problem(address) is None


@pytest.mark.parametrize("address", CORPUS)
def test_the_fast_email_pattern_agrees_with_email_validator_on_a_corpus(address: str) -> None:
    if _fast(address):
        assert email_problem(address) is None


def test_the_fast_email_pattern_settles_common_addresses() -> None:
    common = ["a@b.co", "first.last@example.com", "a+tag@mail.example.de", "x_y-z@a-b.org"]
    assert all(_fast(a) for a in common)


# --- customer ids ----------------------------------------------------------------------------


@given(st.lists(st.sampled_from(["A", "B", "C", "", None]), max_size=20))
def test_equal_keys_get_equal_customer_ids_and_different_keys_different_ones(
    keys: list[str | None],
) -> None:
    ids = customer_ids(pl.Series(keys, dtype=pl.String)).to_list()
    for key, cid in zip(keys, ids, strict=True):
        assert (cid is None) == (key is None)
    pairs = {(k, i) for k, i in zip(keys, ids, strict=True) if k is not None}
    assert len(pairs) == len({k for k, _ in pairs}) == len({i for _, i in pairs})


def test_a_language_tag_with_non_ascii_letters_is_left_as_given_and_stays_so() -> None:
    # hypothesis found it: `-ßA` upper-cased to `-SSA` once, lower-cased to `-ssa` the next time
    raw = pl.DataFrame({"default_language": ["-ßA", "de_ßx"]})
    once = normalise_columns(raw)
    assert once.get_column("default_language").to_list() == ["-ßA", "de-ßx"]
    assert normalise_columns(once).equals(once)
