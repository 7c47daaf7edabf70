"""Unit tests of the validators stage: header, per-row rules, normalisation, cross-row rules.

Speed is not timed here (timed runs live in benchmarks/); the code keeps it by staying
vectorised: Python runs once per distinct language tag or hard email address, never per row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from contract import IssueCode
from validators import (
    ISSUE_SCHEMA,
    FileError,
    HeaderError,
    Validated,
    resolve_header,
    validate_rows,
)
from validators.schemas import ExportRowSchema
from validators.testing import Record, make_rows

REQUIRED = ["erp_customer_number", "name", "default_currency", "default_language"]
FULL = [
    *REQUIRED,
    "email",
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


def row(key: str = "C1", **cells: str) -> dict[str, str]:
    """A valid row of customer `key`, with cells overridden."""
    return {
        "erp_customer_number": key,
        "name": f"Customer {key}",
        "default_currency": "EUR",
        "default_language": "de-DE",
        **cells,
    }


def run(records: Sequence[Record], header: Sequence[str] = FULL) -> Validated:
    """Validate records under a header."""
    return validate_rows(make_rows(header, records), resolve_header(header))


def issues(result: Validated, *codes: str) -> list[dict[str, Any]]:
    """The issues of the given codes (all when none given), as dicts."""
    frame = result.issues
    if codes:
        frame = frame.filter(pl.col("code").is_in(list(codes)))
    return frame.to_dicts()


def only(result: Validated, code: str) -> dict[str, Any]:
    """The one issue of a code."""
    found = issues(result, code)
    assert len(found) == 1, found
    return found[0]


def customer(result: Validated, key: str = "C1") -> dict[str, Any]:
    """The accepted customer with a key."""
    found = result.customers.filter(pl.col("erp_customer_number") == key).to_dicts()
    assert len(found) == 1, result.customers
    return found[0]


# --- header ----------------------------------------------------------------------------------


def test_header_names_match_case_insensitively_ignoring_surrounding_spaces() -> None:
    header = resolve_header(
        [" ERP_Customer_Number", "Name ", "DEFAULT_currency", "default_Language"]
    )
    assert header.columns == {
        "erp_customer_number": 0,
        "name": 1,
        "default_currency": 2,
        "default_language": 3,
    }
    assert header.file_errors == []
    assert header.unknown == []


def test_columns_may_come_in_any_order() -> None:
    header = ["default_language", "name", "erp_customer_number", "default_currency"]
    result = run([row("7")], header)
    assert customer(result, "7")["default_language"] == "de-DE"


def test_a_byte_order_mark_before_the_first_name_is_ignored() -> None:
    assert resolve_header(["\ufefferp_customer_number", *REQUIRED[1:]]).file_errors == []


def test_an_unknown_column_is_ignored_with_a_warning_on_line_one() -> None:
    header = resolve_header([*REQUIRED, " Fax "])
    assert header.unknown == [(4, " Fax ")]
    assert header.file_errors == []
    assert header.issues.schema == pl.Schema(ISSUE_SCHEMA)
    [warning] = header.issues.to_dicts()
    assert warning["line"] == 1
    assert warning["column"] == " Fax "
    assert warning["code"] == "unknown_column"
    assert warning["severity"] == "warning"


def test_unknown_column_warnings_are_also_in_the_validated_issues() -> None:
    result = run([{**row(), "fax": "123"}], [*REQUIRED, "fax"])
    assert only(result, "unknown_column")["column"] == "fax"
    assert result.rows_valid == 1


def test_a_missing_required_column_rejects_the_file() -> None:
    header = resolve_header(["erp_customer_number", "name", "default_currency"])
    assert header.file_errors == [
        FileError(
            code="missing_column",
            message="required column 'default_language' is missing from the header",
        )
    ]


def test_a_header_naming_the_same_column_twice_rejects_the_file() -> None:
    header = resolve_header([*REQUIRED, "EMAIL", " email"])
    [error] = header.file_errors
    assert error.code == "duplicate_column"
    assert "'email'" in error.message


def test_validating_rows_under_a_header_with_file_errors_is_refused() -> None:
    header = ["erp_customer_number", "name"]
    with pytest.raises(HeaderError):
        validate_rows(make_rows(header, [["1", "x"]]), resolve_header(header))


# --- normalisation ---------------------------------------------------------------------------


def test_a_valid_row_becomes_a_customer_with_normalised_values() -> None:
    result = run(
        [
            row(
                " 000123 ",
                name="  Cafe\u0301 Müller ",
                default_currency=" eur ",
                default_language="de_ch",
                email=" Info@Cafe.EXAMPLE ",
            )
        ]
    )
    assert customer(result, "000123") | {"_line": 0} == customer(result, "000123") | {
        "erp_customer_number": "000123",
        "name": "Caf\u00e9 Müller",
        "default_currency": "EUR",
        "default_language": "de-CH",
        "email": "info@cafe.example",
        "_line": 0,
    }
    assert issues(result) == []


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("de_ch", "de-CH"),
        ("EN-gb", "en-GB"),
        ("de_de", "de-DE"),
        ("en", "en"),
        ("zh-hant-tw", "zh-Hant-TW"),
        (" fr ", "fr"),
    ],
)
def test_language_tags_are_canonicalised(given: str, canonical: str) -> None:
    assert customer(run([row(default_language=given)]))["default_language"] == canonical


def test_contact_fields_are_trimmed_and_the_email_lowered() -> None:
    result = run(
        [
            row(
                contact_email=" Ann@Example.COM ",
                contact_name=" Ann ",
                contact_phone=" +49 30 1 ",
                contact_role=" buyer ",
            )
        ]
    )
    assert result.contacts.to_dicts() == [
        {
            "erp_customer_number": "C1",
            "email": "ann@example.com",
            "_line": 2,
            "name": "Ann",
            "phone": "+49 30 1",
            "role": "buyer",
            "is_primary": False,
        }
    ]


def test_notes_are_kept_as_given() -> None:
    assert customer(run([row(notes="  two  spaces ")]))["notes"] == "  two  spaces "


# --- present, absent and empty columns -------------------------------------------------------


def test_absent_optional_columns_are_absent_from_customers_and_contacts() -> None:
    result = run([row()], REQUIRED)
    assert result.customers.columns == ["erp_customer_number", "_line", *REQUIRED[1:]]
    assert result.contacts.columns == ["erp_customer_number", "email", "_line"]
    assert result.contacts.is_empty()
    assert result.present == frozenset(REQUIRED)


def test_an_empty_optional_cell_sets_its_field_to_null() -> None:
    found = customer(run([row(email="", notes="")]))
    assert found["email"] is None
    assert found["notes"] is None


def test_an_address_holds_exactly_its_present_keys_with_null_for_empty_cells() -> None:
    header = [*REQUIRED, "billing_city", "billing_street", "shipping_country"]
    found = customer(run([row(billing_city=" Berlin ", billing_street="")], header))
    assert json.loads(found["billing_address"]) == {"street": None, "city": "Berlin"}
    assert json.loads(found["shipping_address"]) == {"country": None}


def test_an_address_with_no_column_in_the_file_is_absent() -> None:
    result = run([row()], [*REQUIRED, "shipping_city"])
    assert "billing_address" not in result.customers.columns
    assert "shipping_address" in result.customers.columns


def test_address_json_escapes_quotes_and_keeps_unicode() -> None:
    found = customer(run([row(billing_street='Straße "Am Hang" 1\\2')]))
    assert json.loads(found["billing_address"])["street"] == 'Straße "Am Hang" 1\\2'


def test_contacts_have_is_primary_only_when_its_column_is_present() -> None:
    header = [*REQUIRED, "contact_email", "contact_role"]
    result = run([row(contact_email="a@example.com", contact_role="ceo")], header)
    assert result.contacts.columns == ["erp_customer_number", "email", "_line", "role"]


def test_a_row_with_every_contact_cell_empty_has_no_contact() -> None:
    result = run([row(contact_email=" ", contact_name="", contact_is_primary="")])
    assert result.contacts.is_empty()
    assert result.rows_valid == 1


# --- per-row errors --------------------------------------------------------------------------


@pytest.mark.parametrize("column", REQUIRED)
def test_a_blank_required_value_is_a_required_error(column: str) -> None:
    result = run([row(**{column: "  "})])
    error = only(result, "required")
    assert error["column"] == column
    assert error["value"] == "  "
    assert error["severity"] == "error"
    assert error["message"] == f"{column} is required"
    assert result.rows_rejected == 1


def test_a_key_of_100_characters_is_accepted_and_of_101_is_a_length_error() -> None:
    assert run([row("k" * 100)]).rows_valid == 1
    error = only(run([row("k" * 101)]), "length")
    assert error["column"] == "erp_customer_number"
    assert error["message"] == "erp_customer_number is 101 characters long; at most 100 are allowed"


def test_a_name_longer_than_500_characters_is_a_length_error() -> None:
    assert run([row(name="n" * 500)]).rows_valid == 1
    assert only(run([row(name="n" * 501)]), "length")["column"] == "name"


@pytest.mark.parametrize("code", ["EUX", "DEM", "EURO", "€"])
def test_a_code_that_is_not_an_active_iso_4217_currency_is_a_currency_error(code: str) -> None:
    error = only(run([row(default_currency=code)]), "currency")
    assert error["value"] == code
    assert error["message"] == f"'{code}' is not an active ISO 4217 currency code"


@pytest.mark.parametrize("code", ["eur", " chf ", "usd", "JPY"])
def test_currency_codes_in_any_case_with_spaces_are_valid(code: str) -> None:
    assert customer(run([row(default_currency=code)]))["default_currency"] == code.strip().upper()


@pytest.mark.parametrize("tag", ["xx", "xx-DE", "zz", "en-x", "123", "en--us", "english"])
def test_a_tag_that_is_not_valid_bcp_47_is_a_language_error(tag: str) -> None:
    error = only(run([row(default_language=tag)]), "language")
    assert error["value"] == tag
    assert error["message"] == f"'{tag}' is not a valid BCP 47 language tag"


@pytest.mark.parametrize("address", ["bad@@example.com", "a..b@example.com", "a@localhost", "x"])
def test_a_malformed_customer_email_is_an_email_error(address: str) -> None:
    error = only(run([row(email=address)]), "email")
    assert error["column"] == "email"
    assert error["message"].startswith(f"'{address}' is not a valid email address: ")


@pytest.mark.parametrize("address", ["José@example.com", "用户@例子.广告", "o'brien@example.ie"])
def test_internationalised_and_unusual_addresses_are_valid(address: str) -> None:
    assert customer(run([row(email=address)]))["email"] == address.lower()


def test_a_malformed_contact_email_is_an_email_error() -> None:
    error = only(run([row(contact_email="ann@", contact_name="Ann")]), "email")
    assert error["column"] == "contact_email"


@pytest.mark.parametrize("cell", ["contact_name", "contact_phone", "contact_role"])
def test_contact_email_is_required_when_another_contact_cell_is_filled(cell: str) -> None:
    error = only(run([row(**{cell: "something"})]), "required")
    assert error["column"] == "contact_email"


def test_a_yes_in_contact_is_primary_alone_needs_a_contact_email() -> None:
    assert only(run([row(contact_is_primary="x")]), "required")["column"] == "contact_email"


@pytest.mark.parametrize("word", ["0", "no", "false", "N"])
def test_a_no_in_contact_is_primary_alone_makes_no_contact(word: str) -> None:
    result = run([row(contact_is_primary=word)])
    assert result.rows_valid == 1
    assert result.contacts.is_empty()


def test_contact_cells_without_a_contact_email_column_are_required_errors() -> None:
    result = run([row(contact_name="Ann")], [*REQUIRED, "contact_name"])
    error = only(result, "required")
    assert error["column"] == "contact_email"
    assert error["value"] is None


@pytest.mark.parametrize(
    ("word", "primary"),
    [
        ("true", True),
        (" TRUE ", True),
        ("1", True),
        ("yes", True),
        ("Y", True),
        ("x", True),
        ("X", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("n", False),
        ("", False),
    ],
)
def test_primary_words_map_to_booleans(word: str, primary: bool) -> None:
    result = run([row(contact_email="a@example.com", contact_is_primary=word)])
    assert result.contacts.get_column("is_primary").to_list() == [primary]


def test_an_unknown_primary_word_is_a_boolean_error() -> None:
    error = only(run([row(contact_email="a@example.com", contact_is_primary="maybe")]), "boolean")
    assert error["column"] == "contact_is_primary"
    assert error["value"] == "maybe"


def test_one_row_reports_every_error_it_has() -> None:
    result = run([row(name="", default_currency="EUX", email="no-at-sign")])
    assert [i["code"] for i in issues(result)] == ["required", "currency", "email"]


def test_an_issue_holds_the_raw_cell_and_the_trimmed_key() -> None:
    error = only(run([row(" 007 ", default_currency=" eux ")]), "currency")
    assert error["value"] == " eux "
    assert error["erp_customer_number"] == "007"
    assert error["line"] == 2


# --- the key: invisible differences make no new customer -------------------------------------

# spellings of Z-1 that look the same: zero-width space, byte order mark, soft hyphen, and
# bidi marks around it (each says which character it hides, without showing it)
INVISIBLE_SPELLINGS = [
    ("Z\u200b-1", "U+200B ZERO WIDTH SPACE"),
    ("\ufeffZ-1", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
    ("Z\u00ad-1", "U+00AD SOFT HYPHEN"),
    ("\u200eZ-1\u200f", "U+200E LEFT-TO-RIGHT MARK, U+200F RIGHT-TO-LEFT MARK"),
]


@pytest.mark.parametrize(("spelling", "named"), INVISIBLE_SPELLINGS)
def test_a_key_with_invisible_characters_is_the_same_customer_with_a_warning(
    spelling: str, named: str
) -> None:
    result = run([row("Z-1", name="First"), row(spelling, name="Second")])
    assert result.customers.select("erp_customer_number", "name").rows() == [("Z-1", "Second")]
    assert result.keys_seen.to_list() == ["Z-1"]
    warning = only(result, "key_normalised")
    assert (warning["line"], warning["column"], warning["severity"]) == (
        3,
        "erp_customer_number",
        "warning",
    )
    assert warning["erp_customer_number"] == "Z-1"
    assert warning["value"] == spelling
    assert warning["message"] == (
        f"invisible characters removed ({named}); the customer number is 'Z-1'"
    )
    assert warning["message"].isprintable()


def test_the_nfd_and_nfc_spellings_of_a_key_are_one_customer_with_a_warning_on_nfd() -> None:
    nfc, nfd = "K\u00dc-1", "KU\u0308-1"
    result = run([row(nfc), row(nfd), row(f" {nfd} ")])
    assert result.customers.get_column("erp_customer_number").to_list() == [nfc]
    assert [(w["line"], w["value"]) for w in issues(result, "key_normalised")] == [
        (3, nfd),
        (4, f" {nfd} "),
    ]
    assert only(run([row(nfd)]), "key_normalised")["message"] == (
        f"Unicode NFC applied (combining marks composed); the customer number is '{nfc}'"
    )


def test_a_format_character_between_a_letter_and_its_mark_is_removed_before_nfc() -> None:
    warning = only(run([row("KU\u200b\u0308-1")]), "key_normalised")
    assert warning["erp_customer_number"] == "K\u00dc-1"
    assert warning["message"].startswith(
        "invisible characters removed (U+200B ZERO WIDTH SPACE); Unicode NFC applied"
    )


def test_trimming_spaces_from_a_key_is_no_normalisation_worth_a_warning() -> None:
    result = run([row(" Z-1 "), row("\u00a0K\u00dc-1\u3000")])
    assert issues(result, "key_normalised") == []
    assert result.customers.get_column("erp_customer_number").to_list() == ["Z-1", "K\u00dc-1"]


def test_leading_zeros_and_visible_characters_of_a_key_stay() -> None:
    result = run([row("007\u200b"), row("007"), row("7"), row("0-07/\u00e9")])
    assert result.customers.get_column("erp_customer_number").to_list() == [
        "007",
        "7",
        "0-07/\u00e9",
    ]


def test_a_key_of_only_invisible_characters_is_a_required_error() -> None:
    result = run([row("\u200b\ufeff ")])
    error = only(result, "required")
    assert (error["column"], error["erp_customer_number"]) == ("erp_customer_number", None)
    warning = only(result, "key_normalised")
    assert warning["message"] == (
        "invisible characters removed (U+200B ZERO WIDTH SPACE, U+FEFF ZERO WIDTH NO-BREAK "
        "SPACE); nothing is left of the customer number"
    )
    assert result.rows_rejected == 1


def test_the_key_length_counts_the_normalised_key() -> None:
    assert run([row("k" * 100 + "\u200b\u00ad")]).rows_valid == 1
    assert run([row("k" * 99 + "U\u0308")]).rows_valid == 1
    assert only(run([row("k" * 101 + "\u200b")]), "length")["message"] == (
        "erp_customer_number is 101 characters long; at most 100 are allowed"
    )


def test_every_format_character_python_knows_is_removed_from_keys() -> None:
    import sys
    import unicodedata

    from validators.normalise import normalise_keys

    every = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    keys = pl.Series([f"A{c}1" for c in every], dtype=pl.String)
    assert set(normalise_keys(keys).to_list()) == {"A1"}
    # the same set as the regex engine's own table of the category, as far as Python knows it
    assert pl.Series(every).str.contains(r"^\p{Cf}$").all()


def test_every_error_code_sorts_before_every_warning_code() -> None:
    from contract import SEVERITY, Severity

    severities = list(SEVERITY.values())
    assert severities == sorted(severities, key=lambda s: s is Severity.WARNING)
    assert SEVERITY[IssueCode.KEY_NORMALISED] is Severity.WARNING


# --- field count -----------------------------------------------------------------------------


def test_a_short_row_gets_only_a_field_count_error_and_rejects_its_customer() -> None:
    header = [*REQUIRED, "email"]
    result = run([row("C1"), ["C1", "", "EUX"], row("C2")], header)
    field_count = only(result, "field_count")
    assert field_count == {
        "line": 3,
        "erp_customer_number": "C1",
        "column": None,
        "value": None,
        "code": "field_count",
        "severity": "error",
        "message": "row has 3 fields, the header has 5",
    }
    assert only(result, "rejected_with_customer")["line"] == 2
    assert len(issues(result)) == 2
    assert result.customers.get_column("erp_customer_number").to_list() == ["C2"]
    assert "C1" in result.keys_seen.to_list()


def test_a_long_row_is_rejected_with_a_field_count_error() -> None:
    header = [*REQUIRED]
    result = run([["C1", "n", "EUR", "de", "surplus"]], header)
    assert only(result, "field_count")["message"] == "row has 5 fields, the header has 4"
    assert result.rejected_rows.get_column("_extra").to_list() == [["surplus"]]


def test_a_row_too_short_to_hold_a_key_is_rejected_alone() -> None:
    result = run([[""], row("C1")], [*REQUIRED])
    assert result.rows_rejected == 1
    assert only(result, "field_count")["erp_customer_number"] is None
    assert result.keys_seen.to_list() == ["C1"]


# --- the customer is the unit ----------------------------------------------------------------


def test_an_error_on_one_row_rejects_every_row_of_its_customer() -> None:
    result = run(
        [
            row("C1", contact_email="a@example.com"),
            row("C2"),
            row("C1", contact_email="b@example", contact_name="B"),
            row("C1", contact_email="c@example.com"),
        ]
    )
    assert result.customers.get_column("erp_customer_number").to_list() == ["C2"]
    assert result.contacts.is_empty()
    assert result.rejected_rows.get_column("_line").to_list() == [2, 4, 5]
    followers = issues(result, "rejected_with_customer")
    assert [i["line"] for i in followers] == [2, 5]
    assert followers[0]["message"] == "customer 'C1' is rejected because of an error on line 4"
    assert result.customers_rejected == 1


def test_a_row_with_a_blank_key_is_rejected_alone() -> None:
    result = run([row("C1"), row(""), row("C1")])
    assert result.customers.get_column("_line").to_list() == [4]
    assert result.rejected_rows.get_column("_line").to_list() == [3]
    assert issues(result, "rejected_with_customer") == []
    assert result.customers_rejected == 0
    assert result.rows_valid == 2


def test_rejected_rows_keep_the_input_columns_and_list_their_errors() -> None:
    rows = make_rows(FULL, [row("C1", default_currency="EUX", email="x@"), row("C1")])
    result = validate_rows(rows, resolve_header(FULL))
    assert result.rejected_rows.columns == [*rows.columns, "errors"]
    assert result.rejected_rows.drop("errors").equals(rows)
    first, second = result.rejected_rows.get_column("errors").to_list()
    assert first.startswith(
        "default_currency: 'EUX' is not an active ISO 4217 currency code; "
        "email: 'x@' is not a valid email address: "
    )
    assert second == "customer 'C1' is rejected because of an error on line 2"


def test_keys_seen_lists_every_key_once_rejected_ones_included() -> None:
    result = run([row(" A "), row("B", name=""), row("A"), row("")])
    assert result.keys_seen.to_list() == ["A", "B"]


def test_counts_add_up() -> None:
    result = run([row("A"), row("B", name=""), row("B"), row("C"), row("")])
    assert (result.rows_read, result.rows_valid, result.rows_rejected) == (5, 2, 3)
    assert result.customers_rejected == 1


def test_an_empty_export_gives_empty_frames() -> None:
    result = run([])
    assert result.customers.is_empty()
    assert result.contacts.is_empty()
    assert result.issues.is_empty()
    assert result.rejected_rows.is_empty()
    assert result.issues.schema == pl.Schema(ISSUE_SCHEMA)
    assert (result.rows_read, result.rows_valid, result.rows_rejected) == (0, 0, 0)


# --- last row wins ---------------------------------------------------------------------------


def test_differing_customer_values_last_row_wins_with_one_warning_per_column() -> None:
    result = run(
        [
            row("C1", name="Old", email="a@example.com"),
            row("C1", name="Older", email="a@example.com"),
            row("C1", name="New", email="b@example.com"),
            row("C1", name="New", email="b@example.com", default_currency="usd"),
        ]
    )
    assert customer(result) | {"notes": None} == customer(result) | {
        "_line": 5,
        "name": "New",
        "email": "b@example.com",
        "default_currency": "USD",
    }
    warnings = issues(result, "conflicting_values")
    assert [(w["column"], w["line"], w["value"]) for w in warnings] == [
        ("name", 5, "New"),
        ("default_currency", 5, "usd"),
        ("email", 5, "b@example.com"),
    ]
    assert "2 other value(s)" in warnings[0]["message"]
    assert all(w["severity"] == "warning" for w in warnings)
    assert result.rows_valid == 4


def test_values_that_agree_after_normalisation_do_not_conflict() -> None:
    result = run([row(default_currency=" eur ", name="Café"), row(name="Cafe\u0301")])
    assert issues(result, "conflicting_values") == []


def test_an_empty_cell_after_a_filled_one_is_a_conflict_and_wins() -> None:
    result = run([row(billing_city="Berlin"), row(billing_city="")])
    assert json.loads(customer(result)["billing_address"])["city"] is None
    assert only(result, "conflicting_values")["column"] == "billing_city"


def test_the_same_contact_twice_keeps_the_last_row_with_a_duplicate_contact_warning() -> None:
    result = run(
        [
            row(contact_email="ann@example.com", contact_name="Ann"),
            row(contact_email="bob@example.com", contact_name="Bob"),
            row(contact_email="ANN@example.com ", contact_name="Ann B."),
        ]
    )
    assert result.contacts.select("email", "name", "_line").to_dicts() == [
        {"email": "bob@example.com", "name": "Bob", "_line": 3},
        {"email": "ann@example.com", "name": "Ann B.", "_line": 4},
    ]
    warning = only(result, "duplicate_contact")
    assert (warning["line"], warning["column"], warning["value"]) == (
        4,
        "contact_email",
        "ANN@example.com ",
    )
    assert "lines 2, 4" in warning["message"]


def test_the_same_email_at_two_customers_is_two_contacts() -> None:
    result = run(
        [row("C1", contact_email="a@example.com"), row("C2", contact_email="a@example.com")]
    )
    assert result.contacts.height == 2
    assert issues(result, "duplicate_contact") == []


def test_two_primary_contacts_keep_the_last_with_a_multiple_primary_warning() -> None:
    result = run(
        [
            row(contact_email="a@example.com", contact_is_primary="yes"),
            row(contact_email="b@example.com", contact_is_primary="x"),
            row(contact_email="c@example.com", contact_is_primary="no"),
            row("C2", contact_email="d@example.com", contact_is_primary="1"),
        ]
    )
    assert result.contacts.select("email", "is_primary").to_dicts() == [
        {"email": "a@example.com", "is_primary": False},
        {"email": "b@example.com", "is_primary": True},
        {"email": "c@example.com", "is_primary": False},
        {"email": "d@example.com", "is_primary": True},
    ]
    warning = only(result, "multiple_primary")
    assert (warning["line"], warning["column"], warning["erp_customer_number"]) == (
        3,
        "contact_is_primary",
        "C1",
    )


def test_a_contact_repeated_as_primary_is_not_two_primaries() -> None:
    result = run(
        [
            row(contact_email="a@example.com", contact_is_primary="x"),
            row(contact_email="a@example.com", contact_is_primary="x"),
        ]
    )
    assert issues(result, "multiple_primary") == []
    assert result.contacts.get_column("is_primary").to_list() == [True]


def test_warnings_are_reported_for_rejected_customers_too() -> None:
    result = run([row(name="A", email="x@"), row(name="B", email="x@")])
    assert only(result, "conflicting_values")["line"] == 3
    assert result.customers.is_empty()


def test_a_customers_rows_need_not_be_next_to_each_other() -> None:
    records: list[Mapping[str, str]] = [
        row("A", name="A1", contact_email="a@example.com"),
        row("B", contact_email="b@example.com", contact_is_primary="x"),
        row("A", name="A2", contact_email="a@example.com"),
        row("B", contact_email="c@example.com", contact_is_primary="x"),
        row("C", default_currency="EUX"),
        row("A", name="A2"),
        row("C"),
    ]
    result = run(records)
    assert result.customers.select("erp_customer_number", "name", "_line").to_dicts() == [
        {"erp_customer_number": "B", "name": "Customer B", "_line": 5},
        {"erp_customer_number": "A", "name": "A2", "_line": 7},
    ]
    assert [(i["code"], i["line"]) for i in issues(result)] == [
        ("duplicate_contact", 4),
        ("multiple_primary", 5),
        ("currency", 6),
        ("conflicting_values", 7),
        ("rejected_with_customer", 8),
        ("conflicting_values", 8),
    ]


def test_issues_are_sorted_by_line_then_by_column_position_in_the_file() -> None:
    header = ["email", *REQUIRED]
    result = run([row("C1", default_currency="EUX", email="bad"), row("", name="")], header)
    assert [(i["line"], i["column"]) for i in issues(result)] == [
        (2, "email"),
        (2, "default_currency"),
        (3, "erp_customer_number"),
        (3, "name"),
    ]


# --- the declared schema ---------------------------------------------------------------------


def test_the_row_schema_names_each_failed_check_after_its_issue_code() -> None:
    frame = pl.DataFrame(
        {
            "erp_customer_number": ["C1", None],
            "name": ["n" * 501, "Ann"],
            "default_currency": ["EUX", "EUR"],
            "default_language": ["de-DE", "xx"],
            "contact_email": [None, "a@"],
            "contact_name": ["Ann", None],
            "contact_is_primary": ["maybe", "true"],
        }
    )
    with pytest.raises(SchemaErrors) as caught:
        ExportRowSchema.validate(frame, lazy=True)
    failures = caught.value.failure_cases.select("column", "check", "index").rows()
    assert sorted(failures, key=lambda f: (f[2], f[0])) == [
        ("contact_email", "required", 0),
        ("contact_is_primary", "boolean", 0),
        ("default_currency", "currency", 0),
        ("name", "length", 0),
        ("contact_email", "email", 1),
        ("default_language", "language", 1),
        ("erp_customer_number", "not_nullable", 1),
    ]


def test_the_header_width_counts_known_and_unknown_fields() -> None:
    assert resolve_header([*REQUIRED, "fax", "email"]).width == 6


def test_the_quote_that_reports_put_before_a_formula_cell_is_dropped_on_import() -> None:
    import polars as pl

    from validators.normalise import normalise_columns

    cells = ["'+49 30 1234", " '-7 ", "''=SUM(A1)", "'hello", "it's"]
    frame = pl.DataFrame({"contact_phone": cells, "notes": ["'=x", "", "a", "b", "c"]})
    out = normalise_columns(frame)
    assert out["contact_phone"].to_list() == ["+49 30 1234", "-7", "=SUM(A1)", "'hello", "it's"]
    assert out["notes"].to_list()[0] == "'=x"  # notes are kept exactly as given


def test_language_tags_change_only_their_case() -> None:
    from validators.reference import canonical_language

    assert canonical_language("de_ch") == "de-CH"
    assert canonical_language("DE-latn-de") == "de-Latn-DE"
    assert canonical_language("IW") == "iw"
    assert canonical_language("en-gb-oed") == "en-GB-oed"
    assert canonical_language("en-US-u-CA-gregory") == "en-US-u-ca-gregory"
