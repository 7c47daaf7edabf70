"""Fingerprints of a customer's content: what makes them equal and what tells them apart."""

from __future__ import annotations

import ast
import subprocess
import sys

import polars as pl

from loaders.fingerprint import fingerprint_customers

KEY = "erp_customer_number"


def _prints(customers: dict, contacts: dict | pl.DataFrame) -> dict[str, int]:
    contact_frame = contacts if isinstance(contacts, pl.DataFrame) else pl.DataFrame(contacts)
    frame = fingerprint_customers(pl.DataFrame(customers), contact_frame)
    return dict(frame.iter_rows())


CUSTOMERS = {KEY: ["1", "2"], "name": ["A", "B"], "_line": [2, 4]}
CONTACTS = {KEY: ["1", "1", "2"], "email": ["a@x.de", "b@x.de", "c@x.de"], "name": ["A", None, ""]}


def test_the_order_of_a_customers_contacts_does_not_change_its_fingerprint() -> None:
    reversed_contacts = {k: list(reversed(v)) for k, v in CONTACTS.items()}
    assert _prints(CUSTOMERS, CONTACTS) == _prints(CUSTOMERS, reversed_contacts)


def test_a_changed_contact_changes_only_its_customers_fingerprint() -> None:
    changed = dict(CONTACTS, name=["A", "New", ""])
    before, after = _prints(CUSTOMERS, CONTACTS), _prints(CUSTOMERS, changed)
    assert before["1"] != after["1"]
    assert before["2"] == after["2"]


def test_an_empty_cell_and_a_missing_value_have_different_fingerprints() -> None:
    empty = dict(CONTACTS, name=["A", "", ""])
    assert _prints(CUSTOMERS, CONTACTS)["1"] != _prints(CUSTOMERS, empty)["1"]


def test_a_file_with_other_columns_never_matches() -> None:
    with_notes = dict(CUSTOMERS, notes=[None, None])
    assert _prints(CUSTOMERS, CONTACTS)["2"] != _prints(with_notes, CONTACTS)["2"]


def test_the_source_line_is_not_part_of_the_fingerprint() -> None:
    moved = dict(CUSTOMERS, _line=[10, 20])
    assert _prints(CUSTOMERS, CONTACTS) == _prints(moved, CONTACTS)


def test_a_customer_without_contacts_has_a_fingerprint() -> None:
    none = pl.DataFrame(schema={KEY: pl.String, "email": pl.String, "name": pl.String})
    prints = _prints(CUSTOMERS, none)
    assert set(prints) == {"1", "2"}


def test_fingerprints_are_the_same_in_another_process() -> None:
    code = (
        "import polars as pl; from loaders.fingerprint import fingerprint_customers as f;"
        f"print(dict(f(pl.DataFrame({CUSTOMERS!r}), pl.DataFrame({CONTACTS!r})).iter_rows()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ast.literal_eval(out.stdout.strip()) == _prints(CUSTOMERS, CONTACTS)
