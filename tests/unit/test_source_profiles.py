"""Source profiles without a database: loading, value maps, mapping, phones, header drift."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.reading import ReadOptions, read_export
from validators import validate_rows
from validators.drift import Layout, compare_layouts
from validators.mapping import coverage, map_export
from validators.phones import e164, normalise_phones
from validators.profiles import ProfileError, load_profile, parse_profile, shipped_profiles
from validators.value_maps import (
    SAP_LANGUAGES,
    country_name,
    currency_name,
    explicit_map,
    language_name,
    map_values,
    sap_language,
)

# --- loading ------------------------------------------------------------------------------------


def test_every_shipped_profile_loads() -> None:
    assert shipped_profiles()[0] == "erp-sync"
    assert set(shipped_profiles()) == {"erp-sync", "sap", "dynamics365", "datev", "odoo"}
    for name in shipped_profiles():
        assert load_profile(name).name == name
    assert load_profile("erp-sync").is_default
    assert load_profile("dynamics365").two_files


def test_a_profile_naming_an_unknown_contract_column_names_the_file_and_line() -> None:
    text = '[columns]\nerp_customer_number = "Nr"\n\ncustomer_name = "Name"\n'
    with pytest.raises(ProfileError, match=r"mine\.toml, line 4: .*'customer_name'"):
        parse_profile(text, "mine.toml")


def test_a_malformed_profile_names_the_file_and_line() -> None:
    with pytest.raises(ProfileError, match=r"mine\.toml: not valid TOML: .*line 2"):
        parse_profile('[columns]\nname = "Name\n', "mine.toml")


def test_a_profile_with_a_bad_option_names_the_option_and_line() -> None:
    text = '[file]\ndelimiter = ":"\n[columns]\nerp_customer_number = "Nr"\n'
    with pytest.raises(ProfileError, match=r"line 2: file\.delimiter"):
        parse_profile(text, "mine.toml")


def test_an_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'sapp'.*sap"):
        load_profile("sapp")


def test_a_profile_file_is_found_relative_to_its_base(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('[columns]\nerp_customer_number = "Nr"\n')
    assert load_profile("mine.toml", base=tmp_path).name == "mine"


# --- value maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_value", "code"),
    [
        ("Euro", "EUR"),
        ("eur", "EUR"),
        ("US Dollar", "USD"),
        ("US-Dollar", "USD"),
        ("Schweizer Franken", "CHF"),
        ("Swiss Franc", "CHF"),
        ("  pound sterling ", "GBP"),
        ("€", "EUR"),
        ("Galactic Credits", None),
    ],
)
def test_currency_names_translate_to_iso_codes(given_value: str, code: str | None) -> None:
    assert currency_name(given_value) == code


@pytest.mark.parametrize(
    ("given_value", "tag"),
    [
        ("German", "de"),
        ("Deutsch", "de"),
        ("Français", "fr"),
        ("de_DE", "de-DE"),
        ("en-us", "en-US"),
        ("Klingonisch-ish nonsense 42", None),
    ],
)
def test_language_names_translate_to_bcp47(given_value: str, tag: str | None) -> None:
    assert language_name(given_value) == tag


@pytest.mark.parametrize(
    ("given_value", "code"),
    [("Germany", "DE"), ("DEU", "DE"), ("de", "DE"), ("Schweiz", "CH"), ("Atlantis", None)],
)
def test_country_names_and_alpha3_translate_to_alpha2(given_value: str, code: str | None) -> None:
    assert country_name(given_value) == code


def test_every_sap_language_key_translates_and_others_are_unknown() -> None:
    assert {key: sap_language(key) for key in SAP_LANGUAGES} == SAP_LANGUAGES
    assert sap_language("d") == "de"
    assert sap_language("Z") is None
    assert sap_language("DE") is None


def test_an_explicit_map_matches_trimmed_and_case_insensitively() -> None:
    translate = explicit_map({"Ja": "true", "1": "de"})
    assert translate(" ja ") == "true"
    assert translate("1") == "de"
    assert translate("2") is None


def test_map_values_keeps_blanks_and_marks_only_unknown_values() -> None:
    values = pl.Series("v", ["D", "", None, "Z", "E", "D"])
    translated, unknown = map_values(values, sap_language)
    assert translated.to_list() == ["de", "", None, None, "en", "de"]
    assert unknown.to_list() == [False, False, False, True, False, False]


# --- mapping ------------------------------------------------------------------------------------


def rows_of(header: list[str], *records: list[str]) -> pl.DataFrame:
    data: dict[str, list[object]] = {
        "_line": list(range(2, len(records) + 2)),
        "_nfields": [len(header)] * len(records),
    }
    for i in range(len(header)):
        data[f"c{i}"] = [r[i] for r in records]
    frame = pl.DataFrame(data, schema_overrides={"_nfields": pl.Int32})
    return frame.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("_extra"))


def test_an_unknown_mapped_value_is_an_error_of_its_column_naming_the_source() -> None:
    header = ["KUNNR", "NAME1", "NAME2", "WAERS", "SPRAS"]
    rows = rows_of(
        header, ["0001", "Müller", "GmbH", "EUR", "D"], ["0002", "Rossi", "", "EUR", "Z"]
    )
    mapped = map_export(rows, header, load_profile("sap"))
    validated = validate_rows(mapped.rows, mapped.header, prior=mapped.prior, shadow=mapped.shadow)
    assert validated.customers["name"].to_list() == ["Müller GmbH"]
    assert validated.customers["default_language"].to_list() == ["de"]
    assert validated.customers[validated.customers.columns[0]].to_list() == ["0001"]
    (error,) = validated.issues.filter(pl.col("severity") == "error").iter_rows(named=True)
    assert error["code"] == "language"
    assert error["column"] == "SPRAS"
    assert error["value"] == "Z"
    assert "SPRAS" in error["message"] and "'Z'" in error["message"]
    # the rejected row keeps the source's cells
    assert validated.rejected_rows.select("c0", "c4").row(0) == ("0002", "Z")


def test_a_missing_required_source_column_names_its_aliases() -> None:
    header = ["KUNNR", "NAME1", "WAERS"]
    mapped = map_export(rows_of(header, ["1", "A", "EUR"]), header, load_profile("sap"))
    (error,) = mapped.header.file_errors
    assert error.code == "missing_column"
    assert "'SPRAS'" in error.message


def test_odoo_contacts_take_their_companys_key_and_an_orphan_is_an_error() -> None:
    header = ["External ID", "Name", "Related Company", "ref", "Email", "Language", "Currency"]
    rows = rows_of(
        header,
        ["x.1", "Agrolait", "", "C-1", "info@agrolait.example", "fr_BE", "EUR"],
        ["x.2", "Michel", "x.1", "", "michel@agrolait.example", "fr_BE", ""],
        ["x.3", "Nobody", "x.9", "", "nobody@example.com", "", ""],
    )
    mapped = map_export(rows, header, load_profile("odoo"))
    validated = validate_rows(mapped.rows, mapped.header, prior=mapped.prior, shadow=mapped.shadow)
    assert validated.customers["erp_customer_number"].to_list() == ["C-1"]
    assert validated.contacts.select("erp_customer_number", "email", "name").rows() == [
        ("C-1", "michel@agrolait.example", "Michel")
    ]
    errors = validated.issues.filter(pl.col("severity") == "error")
    assert errors.select("line", "code").rows() == [(4, "unknown_customer")]


def test_the_shipped_samples_are_covered_best_by_their_own_profile() -> None:
    samples = Path(__file__).resolve().parents[2] / "sample_data" / "profiles"
    for name in ("sap", "datev", "odoo"):
        (path,) = (samples / name).glob("*.csv")
        profile = load_profile(name)
        file = profile.file
        raw = read_export(
            path,
            ReadOptions(
                file.encoding, file.delimiter, file.skip_lines, file.skip_lines_starting_with
            ),
        )
        share, required = coverage(raw.header, profile)
        assert required and share > 0.6, (name, share)


def test_a_profile_encoding_and_preamble_are_honoured(tmp_path: Path) -> None:
    path = tmp_path / "extf.csv"
    path.write_bytes('"EXTF";700;16\r\n"Konto";"Name"\r\n10001;"Bäckerei"\r\n'.encode("cp1252"))
    raw = read_export(
        path, ReadOptions(encoding="windows-1252", skip_lines_starting_with=("EXTF",))
    )
    assert raw.header == ("Konto", "Name")
    assert raw.rows.select("_line", "c1").rows() == [(3, "Bäckerei")]
    assert raw.encoding == "windows-1252" and raw.delimiter == ";"


# --- phones -------------------------------------------------------------------------------------


def test_phones_are_written_in_e164_with_the_billing_country_as_region() -> None:
    assert e164("089 1234567", "DE") == "+49891234567"
    assert e164("+49 89 1234567", None) == "+49891234567"
    assert e164("01 42 68 53 00", "FR") == "+33142685300"
    assert e164("bitte zurückrufen", "DE") is None
    assert e164("089 1234567", None) is None  # no + and no region: cannot be read


def test_an_unreadable_phone_is_kept_with_a_warning() -> None:
    phones, warnings = normalise_phones(
        pl.Series("p", ["089 1234567", "n/a", "", None]), pl.Series("c", ["DE", "DE", "DE", "DE"])
    )
    assert phones.to_list() == ["+49891234567", "n/a", "", None]
    assert warnings.select("_row", "code").rows() == [(1, "phone")]


@settings(max_examples=200, deadline=None)
@given(
    number=st.text(alphabet="0123456789 +-()/", min_size=0, max_size=20),
    region=st.sampled_from(["DE", "FR", "CH", "US", "GB", None, "XX"]),
)
def test_normalising_phones_twice_changes_nothing(number: str, region: str | None) -> None:
    once, _ = normalise_phones(pl.Series("p", [number]), pl.Series("c", [region], pl.String))
    twice, _ = normalise_phones(once, pl.Series("c", [region], pl.String))
    assert twice.to_list() == once.to_list()


# --- header drift -------------------------------------------------------------------------------


def test_drift_names_columns_gone_renamed_added_and_changed_settings() -> None:
    previous = Layout(("KUNNR", "NAME1", "SMTP_ADDR", "WAERS"), ";", "utf-8")
    current = Layout(("KUNNR", "NAME1", "EMAIL", "ORT01"), ",", "windows-1252")
    drift = compare_layouts(previous, current)
    messages = " | ".join(m for _, m in drift.messages)
    assert "'SMTP_ADDR' of the last applied file is now 'EMAIL'" in messages
    assert "'WAERS'" in messages and "'ORT01'" in messages
    assert "delimiter changed" in messages and "encoding changed" in messages
    assert set(drift.lost) == {"SMTP_ADDR", "WAERS"}


def test_the_same_header_in_another_case_is_no_drift() -> None:
    layout = Layout(("KUNNR", "NAME1"), ";", "utf-8")
    assert not compare_layouts(layout, Layout((" kunnr", "Name1"), ";", "utf-8")).messages
