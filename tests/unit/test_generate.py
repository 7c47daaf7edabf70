"""benchmarks/generate.py: the seeded generator of ERP exports for the benchmark."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from benchmarks import generate as gen

CUSTOMERS = 2000
SEED = 7

# sha256 of the files of the `files` fixture (2000 customers, seed 7; the variant: seed 3 of
# seed 7, 10% changed, 5% new), recorded with the generator before its word lists moved to
# data files (benchmarks/wordlists/): the move changed no byte. A change of a word list
# or of the logic changes them; record new ones only when the output is meant to change.
BASE_SHA256 = "66ce545b91e50a4a5634d456a9dc0f81feaadedd6f25c2a13413e95a7c4862ae"
VARIANT_SHA256 = "8a9bbdc27c6f2d95ac9c8fa99f46421d8a30ec41ed3d77278201ef7ea3c15ddc"


def _write(path: Path, *args: str) -> Path:
    assert gen.main([str(path), "--customers", str(CUSTOMERS), *args]) == 0
    return path


def _read(path: Path) -> pl.DataFrame:
    # everything as text, empty cells as ""
    return pl.read_csv(path, infer_schema=False).with_columns(pl.all().fill_null(""))


def _number(df: pl.DataFrame) -> pl.Series:
    return df["erp_customer_number"].str.strip_chars()


def _invalid(df: pl.DataFrame) -> pl.Series:
    """The rows that break a rule of CONTRACT.md section 1, by a simple vectorised check."""
    c = pl.col

    def email_ok(column: str) -> pl.Expr:
        v = c(column).str.strip_chars()
        return (v == "") | v.str.contains(gen.EMAIL_PATTERN)

    contact_filled = (
        (c("contact_name") != "")
        | (c("contact_phone") != "")
        | (c("contact_role") != "")
        | (c("contact_is_primary") != "")
    )
    return df.select(
        ~c("default_currency").str.to_uppercase().is_in(list(gen.VALID_CURRENCIES))
        | ~c("default_language")
        .str.replace_all("_", "-")
        .str.to_lowercase()
        .is_in(list(gen.VALID_LANGUAGES))
        | (c("name").str.strip_chars() == "")
        | ~email_ok("email")
        | ~email_ok("contact_email")
        | ((c("contact_email").str.strip_chars() == "") & contact_filled)
        | ~c("contact_is_primary").str.to_lowercase().is_in(list(gen.VALID_BOOLEANS))
    ).to_series()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("generate")
    return {
        "base": _write(d / "base.csv", "--seed", str(SEED)),
        "variant": _write(
            d / "variant.csv",
            "--seed",
            "3",
            "--variant-of-seed",
            str(SEED),
            "--changed",
            "0.10",
            "--new",
            "0.05",
        ),
    }


@pytest.fixture(scope="module")
def base(files) -> pl.DataFrame:
    return _read(files["base"])


def test_the_same_seed_writes_the_same_bytes(files, tmp_path):
    again = _write(tmp_path / "again.csv", "--seed", str(SEED))
    assert again.read_bytes() == files["base"].read_bytes()


def test_the_same_variant_arguments_write_the_same_bytes(files, tmp_path):
    again = _write(
        tmp_path / "again.csv",
        "--seed",
        "3",
        "--variant-of-seed",
        str(SEED),
        "--changed",
        "0.10",
        "--new",
        "0.05",
    )
    assert again.read_bytes() == files["variant"].read_bytes()


def test_the_files_are_byte_for_byte_those_of_the_generator_before_the_word_lists_moved(files):
    assert hashlib.sha256(files["base"].read_bytes()).hexdigest() == BASE_SHA256
    assert hashlib.sha256(files["variant"].read_bytes()).hexdigest() == VARIANT_SHA256


def test_the_generator_finds_its_word_lists_from_another_working_directory(tmp_path):
    repo = Path(gen.__file__).resolve().parents[1]
    out = tmp_path / "out.csv"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.generate", str(out), "--customers", "50", "--seed", "3"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repo)},
        check=True,
        capture_output=True,
    )
    gen.write_csv(gen.generate(50, 3), tmp_path / "in_process.csv")
    assert out.read_bytes() == (tmp_path / "in_process.csv").read_bytes()


def test_another_seed_writes_another_file(files, tmp_path):
    other = _write(tmp_path / "other.csv", "--seed", str(SEED + 1))
    assert other.read_bytes() != files["base"].read_bytes()


def test_the_header_is_the_contract_header(files):
    first_line = files["base"].read_text(encoding="utf-8").split("\n", 1)[0]
    assert first_line == ",".join(gen.HEADER)


def test_every_record_has_as_many_fields_as_the_header_under_rfc_4180(files, base):
    with files["base"].open(newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    assert {len(r) for r in records} == {len(gen.HEADER)}
    assert len(records) - 1 == base.height


def test_there_is_one_customer_per_requested_customer(base):
    assert _number(base).n_unique() == CUSTOMERS


def test_rows_per_customer_average_near_two_point_two(base):
    assert 2.1 <= base.height / CUSTOMERS <= 2.3


def test_customers_span_rows_and_some_have_no_contact(base):
    rows = base.group_by(_number(base)).len()["len"]
    assert rows.max() >= 3
    assert (rows == 1).sum() > 0
    no_contact = base.filter(
        pl.all_horizontal(pl.col(c) == "" for c in gen.HEADER if c.startswith("contact_"))
    )
    assert no_contact.height > 0.03 * CUSTOMERS


def test_customer_numbers_keep_leading_zeros(base):
    numbers = _number(base)
    assert numbers.str.starts_with("0").mean() > 0.5
    assert numbers.str.starts_with("K0").sum() > 0


def test_about_two_percent_of_rows_are_invalid(base):
    share = _invalid(base).mean()
    assert 0.018 <= share <= 0.022


def test_each_kind_of_invalid_value_occurs(base):
    c = pl.col
    kinds = {
        "currency": ~c("default_currency").str.to_uppercase().is_in(list(gen.VALID_CURRENCIES)),
        "language": ~c("default_language")
        .str.replace_all("_", "-")
        .str.to_lowercase()
        .is_in(list(gen.VALID_LANGUAGES)),
        "blank name": c("name").str.strip_chars() == "",
        "email": (c("email") != "") & ~c("email").str.strip_chars().str.contains(gen.EMAIL_PATTERN),
        "contact email": (c("contact_email") != "")
        & ~c("contact_email").str.contains(gen.EMAIL_PATTERN),
        "contact without email": (c("contact_email") == "") & (c("contact_name") != ""),
        "boolean": ~c("contact_is_primary").str.to_lowercase().is_in(list(gen.VALID_BOOLEANS)),
    }
    counts = base.select(**{k: v.sum() for k, v in kinds.items()}).row(0, named=True)
    assert all(n > 0 for n in counts.values()), counts


def test_codes_come_in_case_variants_that_are_valid(base):
    assert base.filter(pl.col("default_currency") == "eur").height > 0
    assert base.filter(pl.col("default_language").str.contains("_")).height > 0
    assert base.filter(pl.col("default_language").is_in(["de-DE", "fr-FR", "it", "pl"])).height > 0


def test_some_customers_have_the_same_contact_twice_in_another_case(base):
    emails = base.filter(pl.col("contact_email") != "").select(
        _number(base.filter(pl.col("contact_email") != "")).alias("n"),
        pl.col("contact_email"),
    )
    twice = emails.group_by("n", pl.col("contact_email").str.to_lowercase()).agg(
        pl.col("contact_email").n_unique().alias("spellings")
    )
    assert twice.filter(pl.col("spellings") >= 2).height > 0.01 * CUSTOMERS


def test_primaries_are_about_one_per_customer(base):
    primary = pl.col("contact_is_primary").str.to_lowercase().is_in(["true", "1", "yes", "y", "x"])
    per_customer = base.filter(primary).height / CUSTOMERS
    assert 0.75 <= per_customer <= 1.0


def test_names_and_addresses_look_european(base):
    text = "".join(base["name"].head(3000).to_list() + base["billing_city"].head(3000).to_list())
    assert any(ch in text for ch in "äöüß")
    assert any(ch in text for ch in "éèçà")
    assert "GmbH" in text and "S.r.l." in text and "B.V." in text
    postal = base.filter(pl.col("billing_country") == "PL")["billing_postal_code"]
    assert postal.str.contains(r"^\d\d-\d\d\d$").all()
    postal = base.filter(pl.col("billing_country") == "NL")["billing_postal_code"]
    assert postal.str.contains(r"^\d{4} [A-Z]{2}$").all()


def test_notes_with_commas_quotes_and_newlines_survive_the_round_trip(base):
    notes = base["notes"]
    assert notes.str.contains(",").any()
    assert notes.str.contains('"').any()
    assert notes.str.contains("\n").any()


def test_the_variant_keeps_85_percent_of_customers_and_adds_5_percent_new(files, base):
    variant = _read(files["variant"])

    def by_customer(df: pl.DataFrame) -> dict[str, tuple[str, ...]]:
        rows = df.select(
            _number(df).alias("n"), pl.concat_str(pl.all(), separator="\x1f").alias("row")
        )
        grouped = rows.group_by("n", maintain_order=True).agg("row")
        return {n: tuple(r) for n, r in zip(grouped["n"], grouped["row"], strict=True)}

    old, new = by_customer(base), by_customer(variant)
    unchanged = sum(1 for n, rows in new.items() if old.get(n) == rows)
    changed = sum(1 for n, rows in new.items() if n in old and old[n] != rows)
    added = len(new.keys() - old.keys())
    assert old.keys() <= new.keys()
    assert unchanged == round(0.90 * CUSTOMERS)
    assert changed == round(0.10 * CUSTOMERS)
    assert added == round(0.05 * CUSTOMERS)
    assert 0.84 <= unchanged / len(new) <= 0.87
    # the new customers come after the base customers, with numbers of their own
    assert variant.height > base.height


def test_a_variant_changes_names_cities_notes_or_phones_only(files, base):
    variant = _read(files["variant"])
    joined = base.with_row_index("i").join(
        variant.head(base.height).with_row_index("i"), on="i", suffix="_v"
    )
    differs = {c: (joined[c] != joined[f"{c}_v"]).sum() for c in gen.HEADER}
    moved = {
        "name",
        "notes",
        "billing_street",
        "billing_city",
        "billing_postal_code",
        "shipping_street",
        "shipping_city",
        "shipping_postal_code",
        "contact_phone",
    }
    assert {c for c, n in differs.items() if n} <= moved
    assert all(differs[c] > 0 for c in ("name", "notes", "billing_city", "contact_phone"))
