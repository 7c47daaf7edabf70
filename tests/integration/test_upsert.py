"""The merge on real PostgreSQL: insert, update, unchanged, contacts, primaries, full mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.integration.helpers import make_org, run_import

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,notes,"
    "billing_street,billing_city,billing_postal_code,billing_country,"
    "contact_email,contact_name,contact_phone,contact_role,contact_is_primary"
)


def csv(*rows: str, header: str = HEADER) -> str:
    """A CSV text; short rows (no quoted commas here) are padded with empty cells."""
    width = header.count(",")
    padded = [row + "," * (width - row.count(",")) for row in rows]
    return "\n".join([header, *padded]) + "\n"


def customers(engine: Engine, org_id: Any) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM customer WHERE org_id = :org ORDER BY erp_customer_number"),
            {"org": org_id},
        ).mappings()
        return {r["erp_customer_number"]: dict(r) for r in rows}


def contacts(engine: Engine, org_id: Any, number: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT cc.* FROM customer_contact cc JOIN customer c ON c.id = cc.customer_id "
                "WHERE c.org_id = :org AND c.erp_customer_number = :n ORDER BY cc.email"
            ),
            {"org": org_id, "n": number},
        ).mappings()
        return {str(r["email"]): dict(r) for r in rows}


@pytest.fixture
def org(engine: Engine, request: pytest.FixtureRequest) -> Any:
    return make_org(engine, request.node.name.replace("_", "-")[:60].lower())


def test_a_new_customer_is_inserted_with_normalised_values(engine, org, tmp_path: Path) -> None:
    summary = run_import(
        engine, org, tmp_path,
        csv("00042, Müller GmbH ,Info@Mueller.DE, eur ,de_de,note,Hauptstr. 1,Berlin,,DE,"
            "Anna@Mueller.de,Anna,+49 1,CEO,x"),
    )  # fmt: skip
    assert summary["status"] == "succeeded"
    assert summary["customers"]["inserted"] == 1
    row = customers(engine, org.id)["00042"]
    assert row["name"] == "Müller GmbH"
    assert row["email"] == "info@mueller.de"
    assert row["default_currency"] == "EUR"
    assert row["default_language"] == "de-DE"
    assert row["billing_address"] == {"street": "Hauptstr. 1", "city": "Berlin", "country": "DE"}
    assert row["shipping_address"] is None
    assert row["is_active"] is True
    contact = contacts(engine, org.id, "00042")["anna@mueller.de"]
    assert contact["is_primary"] is True
    assert contact["org_id"] == org.id


def test_rerunning_the_same_file_is_skipped_and_force_reports_every_customer_unchanged(
    engine, org, tmp_path: Path
) -> None:
    text = csv("1,A,,EUR,en,,,,,,a@x.de,A,,,1", "2,B,,EUR,en,,,,,,", "3,C,,EUR,en,,,,,,c@x.de,,,,")
    first = run_import(engine, org, tmp_path, text)
    before = customers(engine, org.id)
    assert first["customers"]["inserted"] == 3
    assert first["contacts"]["inserted"] == 2

    second = run_import(engine, org, tmp_path, text)
    assert second["status"] == "skipped"

    forced = run_import(engine, org, tmp_path, text, force=True)
    assert forced["status"] == "succeeded"
    assert forced["customers"] == {
        "inserted": 0, "updated": 0, "unchanged": 3, "deactivated": 0, "reactivated": 0,
        "rejected": 0,
    }  # fmt: skip
    assert forced["contacts"] == {"inserted": 0, "updated": 0, "unchanged": 2}
    after = customers(engine, org.id)
    assert {k: v["updated_at"] for k, v in after.items()} == {
        k: v["updated_at"] for k, v in before.items()
    }


def test_a_changed_value_updates_the_customer_and_moves_updated_at(engine, org, tmp_path) -> None:
    run_import(engine, org, tmp_path, csv("7,Old Name,,EUR,en,,,,,,"))
    before = customers(engine, org.id)["7"]
    summary = run_import(engine, org, tmp_path, csv("7,New Name,,EUR,en,,,,,,"), name="b.csv")
    after = customers(engine, org.id)["7"]
    assert summary["customers"]["updated"] == 1
    assert after["name"] == "New Name"
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]


def test_an_absent_column_leaves_the_field_untouched_and_an_empty_cell_clears_it(
    engine, org, tmp_path
) -> None:
    run_import(engine, org, tmp_path, csv("8,Name,n@x.de,EUR,en,keep me,Street 1,City,,,"))
    no_notes = "erp_customer_number,name,default_currency,default_language,email"
    summary = run_import(
        engine, org, tmp_path, csv("8,Name,EUR,en,", header=no_notes), name="b.csv"
    )
    row = customers(engine, org.id)["8"]
    assert summary["customers"]["updated"] == 1
    assert row["notes"] == "keep me"  # absent column: untouched
    assert row["email"] is None  # present, empty: cleared
    assert row["billing_address"] == {"street": "Street 1", "city": "City"}


def test_address_keys_merge_and_an_address_with_no_filled_cell_is_null(
    engine, org, tmp_path
) -> None:
    run_import(engine, org, tmp_path, csv("9,N,,EUR,en,,Street 1,City,12345,DE,"))
    only_city = "erp_customer_number,name,default_currency,default_language,billing_city"
    run_import(engine, org, tmp_path, csv("9,N,EUR,en,Town", header=only_city), name="b.csv")
    assert customers(engine, org.id)["9"]["billing_address"] == {
        "street": "Street 1", "city": "Town", "postal_code": "12345", "country": "DE",
    }  # fmt: skip
    run_import(engine, org, tmp_path, csv("9,N,,EUR,en,,,,,,"), name="c.csv")
    assert customers(engine, org.id)["9"]["billing_address"] is None


def test_contacts_merge_by_email_case_insensitively_and_others_are_kept(
    engine, org, tmp_path
) -> None:
    run_import(
        engine,
        org,
        tmp_path,
        csv("10,N,,EUR,en,,,,,,anna@x.de,Anna,111,,", "10,N,,EUR,en,,,,,,bob@x.de,Bob,,,"),
    )
    summary = run_import(
        engine, org, tmp_path, csv("10,N,,EUR,en,,,,,,ANNA@X.DE,Anna B,222,,", "10,N,,EUR,en,,,,,,cy@x.de,Cy,,,"),
        name="b.csv",
    )  # fmt: skip
    assert summary["contacts"] == {"inserted": 1, "updated": 1, "unchanged": 0}
    found = contacts(engine, org.id, "10")
    assert set(found) == {"anna@x.de", "bob@x.de", "cy@x.de"}
    assert found["anna@x.de"]["name"] == "Anna B"
    assert found["anna@x.de"]["phone"] == "222"


def test_a_contact_marked_primary_demotes_the_old_primary(engine, org, tmp_path) -> None:
    run_import(
        engine, org, tmp_path, csv("11,N,,EUR,en,,,,,,a@x.de,,,,1", "11,N,,EUR,en,,,,,,b@x.de,,,,")
    )
    assert contacts(engine, org.id, "11")["a@x.de"]["is_primary"] is True
    only_b = "erp_customer_number,name,default_currency,default_language,contact_email,contact_is_primary"
    run_import(engine, org, tmp_path, csv("11,N,EUR,en,b@x.de,yes", header=only_b), name="b.csv")
    found = contacts(engine, org.id, "11")
    assert found["b@x.de"]["is_primary"] is True
    assert found["a@x.de"]["is_primary"] is False


def test_a_file_that_marks_no_primary_keeps_the_customers_primary(engine, org, tmp_path) -> None:
    run_import(engine, org, tmp_path, csv("12,N,,EUR,en,,,,,,a@x.de,,,,1"))
    no_flag = (
        "erp_customer_number,name,default_currency,default_language,contact_email,contact_name"
    )
    run_import(engine, org, tmp_path, csv("12,N,EUR,en,c@x.de,Cy", header=no_flag), name="b.csv")
    found = contacts(engine, org.id, "12")
    assert found["a@x.de"]["is_primary"] is True
    assert found["c@x.de"]["is_primary"] is False


def test_two_primaries_in_one_file_keep_the_last_with_a_warning(engine, org, tmp_path) -> None:
    summary = run_import(
        engine, org, tmp_path, csv("13,N,,EUR,en,,,,,,a@x.de,,,,1", "13,N,,EUR,en,,,,,,b@x.de,,,,1")
    )
    assert summary["issues_by_code"].get("multiple_primary") == 1
    found = contacts(engine, org.id, "13")
    assert found["b@x.de"]["is_primary"] is True
    assert found["a@x.de"]["is_primary"] is False


def test_one_bad_row_rejects_its_whole_customer_and_nothing_of_it_lands(
    engine, org, tmp_path
) -> None:
    summary = run_import(
        engine, org, tmp_path,
        csv("14,N,,EUR,en,,,,,,a@x.de,,,,", "14,N,,EUR,en,,,,,,not-an-email,,,,", "15,M,,EUR,en,,,,,,"),
    )  # fmt: skip
    assert summary["status"] == "partial"
    assert summary["rows"] == {"read": 3, "valid": 1, "rejected": 2}
    assert summary["customers"]["rejected"] == 1
    assert summary["issues_by_code"]["rejected_with_customer"] == 1
    assert set(customers(engine, org.id)) == {"15"}


def test_full_mode_deactivates_missing_customers_and_reactivates_returning_ones(
    engine, org, tmp_path
) -> None:
    run_import(
        engine, org, tmp_path, csv("20,A,,EUR,en,,,,,,", "21,B,,EUR,en,,,,,,", "22,C,,EUR,en,,,,,,")
    )
    # 22 is present but rejected: it counts as present and is not deactivated.
    full = run_import(
        engine,
        org,
        tmp_path,
        csv("20,A,,EUR,en,,,,,,", "22,C,,XXX,en,,,,,,"),
        name="b.csv",
        mode="full",
    )
    assert full["customers"]["deactivated"] == 1
    state = customers(engine, org.id)
    assert (state["20"]["is_active"], state["21"]["is_active"], state["22"]["is_active"]) == (
        True,
        False,
        True,
    )
    back = run_import(
        engine,
        org,
        tmp_path,
        csv("20,A,,EUR,en,,,,,,", "21,B,,EUR,en,,,,,,", "22,C,,EUR,en,,,,,,"),
        name="c.csv",
        mode="full",
        force=True,
    )
    assert back["customers"]["reactivated"] == 1
    assert customers(engine, org.id)["21"]["is_active"] is True


def test_upsert_mode_never_deactivates(engine, org, tmp_path) -> None:
    run_import(engine, org, tmp_path, csv("30,A,,EUR,en,,,,,,", "31,B,,EUR,en,,,,,,"))
    summary = run_import(engine, org, tmp_path, csv("30,A,,EUR,en,,,,,,"), name="b.csv")
    assert summary["customers"]["deactivated"] == 0
    assert customers(engine, org.id)["31"]["is_active"] is True


def test_the_deactivation_budget_rejects_the_file_and_changes_nothing(
    engine, org, tmp_path
) -> None:
    run_import(engine, org, tmp_path, csv(*(f"4{i},N{i},,EUR,en,,,,,," for i in range(10))))
    summary = run_import(
        engine, org, tmp_path, csv("40,Changed,,EUR,en,,,,,,"), name="b.csv",
        mode="full", max_deactivate_rate=0.5,
    )  # fmt: skip
    assert summary["status"] == "rejected"
    assert summary["file_errors"][0]["code"] == "deactivate_budget"
    state = customers(engine, org.id)
    assert all(row["is_active"] for row in state.values())
    assert state["40"]["name"] == "N0"


def test_the_error_budget_rejects_the_file_before_anything_is_written(
    engine, org, tmp_path
) -> None:
    summary = run_import(
        engine, org, tmp_path, csv("50,A,,EUR,en,,,,,,", "51,B,,BAD,en,,,,,,"), max_error_rate=0.25
    )
    assert summary["status"] == "rejected"
    assert summary["file_errors"][0]["code"] == "error_budget"
    assert customers(engine, org.id) == {}


def test_a_dry_run_reports_the_counts_and_changes_nothing(engine, org, tmp_path) -> None:
    summary = run_import(engine, org, tmp_path, csv("60,A,,EUR,en,,,,,,a@x.de,,,,"), dry_run=True)
    assert summary["dry_run"] is True
    assert summary["customers"]["inserted"] == 1
    assert summary["contacts"]["inserted"] == 1
    assert customers(engine, org.id) == {}
    # A dry run does not count as applied: the real run is not skipped.
    real = run_import(engine, org, tmp_path, csv("60,A,,EUR,en,,,,,,a@x.de,,,,"))
    assert real["status"] == "succeeded"


def test_two_organisations_with_the_same_erp_numbers_stay_apart(engine, tmp_path) -> None:
    one, two = make_org(engine, "same-one"), make_org(engine, "same-two")
    run_import(engine, one, tmp_path, csv("70,Org One,,EUR,en,,,,,,"))
    run_import(engine, two, tmp_path, csv("70,Org Two,,EUR,en,,,,,,"), name="b.csv", mode="full")
    assert customers(engine, one.id)["70"]["name"] == "Org One"
    assert customers(engine, two.id)["70"]["name"] == "Org Two"
    assert customers(engine, one.id)["70"]["is_active"] is True


def test_the_run_and_its_issues_are_recorded(engine, org, tmp_path) -> None:
    summary = run_import(engine, org, tmp_path, csv("80,A,,EUR,en,,,,,,", "81,B,,EUR,xx-YY,,,,,,"))
    with engine.connect() as conn:
        run = (
            conn.execute(
                sa.text("SELECT * FROM import_run WHERE id = :id"), {"id": summary["run_id"]}
            )
            .mappings()
            .one()
        )
        issues = conn.execute(
            sa.text("SELECT code, line, column_name FROM import_issue WHERE run_id = :id"),
            {"id": summary["run_id"]},
        ).all()
    assert run["status"] == "partial"
    assert run["rows_rejected"] == 1
    assert run["summary"]["run_id"] == summary["run_id"]
    assert [(i.code, i.line, i.column_name) for i in issues] == [
        ("language", 3, "default_language")
    ]
    assert json.loads(json.dumps(run["issues_by_code"])) == {"language": 1}


def test_an_empty_file_and_a_header_without_rows_succeed_and_change_nothing(
    engine, org, tmp_path
) -> None:
    empty = run_import(engine, org, tmp_path, "", mode="full")
    header_only = run_import(engine, org, tmp_path, HEADER + "\n", name="b.csv", mode="full")
    assert empty["status"] == header_only["status"] == "succeeded"
    assert header_only["rows"]["read"] == 0


def _xmins(engine: Engine, org_id: Any) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.erp_customer_number || '/' || coalesce(cc.email::text, ''), "
                "c.xmin::text || '/' || coalesce(cc.xmin::text, '') "
                "FROM customer c LEFT JOIN customer_contact cc ON cc.customer_id = c.id "
                "WHERE c.org_id = :org"
            ),
            {"org": org_id},
        ).all()
    return dict(rows)


def test_a_forced_rerun_rewrites_no_row_at_all(engine, org, tmp_path) -> None:
    text = csv(
        "90,A,,EUR,en,,,,,,a@x.de,A,,,1", "90,A,,EUR,en,,,,,,b@x.de,B,,,", "91,B,,EUR,en,,,,,,"
    )
    run_import(engine, org, tmp_path, text)
    before = _xmins(engine, org.id)
    forced = run_import(engine, org, tmp_path, text, force=True)
    assert forced["customers"]["unchanged"] == 2
    assert forced["contacts"]["unchanged"] == 2
    assert _xmins(engine, org.id) == before  # xmin changes with every write of a row


def test_a_contact_change_alone_is_applied_even_though_the_customer_is_the_same(
    engine, org, tmp_path
) -> None:
    run_import(engine, org, tmp_path, csv("92,A,,EUR,en,,,,,,a@x.de,Old,,,"))
    summary = run_import(
        engine, org, tmp_path, csv("92,A,,EUR,en,,,,,,a@x.de,New,,,"), name="b.csv"
    )
    assert summary["customers"]["unchanged"] == 1
    assert summary["contacts"]["updated"] == 1
    assert contacts(engine, org.id, "92")["a@x.de"]["name"] == "New"


def test_a_customer_without_a_stored_fingerprint_gets_one_without_moving_updated_at(
    engine, org, tmp_path
) -> None:
    text = csv("93,A,,EUR,en,,,,,,")
    run_import(engine, org, tmp_path, text)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE customer SET source_hash = NULL WHERE org_id = :org"), {"org": org.id}
        )
    before = customers(engine, org.id)["93"]
    summary = run_import(engine, org, tmp_path, text, force=True)
    after = customers(engine, org.id)["93"]
    assert summary["customers"]["unchanged"] == 1
    assert after["source_hash"] is not None
    assert after["updated_at"] == before["updated_at"]
