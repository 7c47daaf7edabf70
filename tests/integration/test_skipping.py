"""Skipping unchanged customers before validation gives exactly what a full validation gives."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import importing
from flows.importing import ImportOptions, RunContext
from flows.reading import RawExport, read_export
from flows.skipping import RawPrints, skip_unchanged
from loaders.orgs import Organisation
from tests.integration.helpers import make_org
from validators.profiles import default_profile

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,notes,"
    "billing_street,billing_city,billing_postal_code,billing_country,"
    "contact_email,contact_name,contact_phone,contact_role,contact_is_primary"
)


def csv(*rows: str) -> str:
    width = HEADER.count(",")
    return "\n".join([HEADER, *(row + "," * (width - row.count(",")) for row in rows)]) + "\n"


# C1 unchanged; C2 changed; C3 rejected both times; C4 rejected, then fixed; C5 a warning
# (conflicting names) both times; C6 rows far apart, unchanged; C7 spelled with a space the
# second time (same key once trimmed); C8 gone the second time; C9 new; a row without a key.
FIRST = csv(
    "C6,Far,,EUR,en,,,,,,far1@x.de,,,,",
    "C1,Alpha,,EUR,en,,Weg 1,Berlin,,DE,a@x.de,Anna,+49 1,CEO,yes",
    "C1,Alpha,,EUR,en,,Weg 1,Berlin,,DE,b@x.de,Bert,,,",
    "C2,Beta,,EUR,en,,,,,,",
    "C3,Gamma,,EURO,en,,,,,,",
    "C4,Delta,,DOLLAR,en,,,,,,",
    "C5,Eps,,EUR,en,,,,,,e@x.de,,,,",
    "C5,Eps Two,,EUR,en,,,,,,",
    "C7,Seven,,EUR,de,,,,,,",
    "C8,Eight,,EUR,en,,,,,,",
    "C6,Far,,EUR,en,,,,,,far2@x.de,,,,",
)
SECOND = csv(
    "C6,Far,,EUR,en,,,,,,far1@x.de,,,,",
    "C1,Alpha,,EUR,en,,Weg 1,Berlin,,DE,a@x.de,Anna,+49 1,CEO,yes",
    "C1,Alpha,,EUR,en,,Weg 1,Berlin,,DE,b@x.de,Bert,,,",
    "C2,Beta Neu,,EUR,en,,,,,,",
    "C3,Gamma,,EURO,en,,,,,,",
    "C4,Delta,,EUR,en,,,,,,",
    "C5,Eps,,EUR,en,,,,,,e@x.de,,,,",
    "C5,Eps Two,,EUR,en,,,,,,",
    " C7 ,Seven,,EUR,de,,,,,,",
    ",No Key,,EUR,en,,,,,,",
    "C9,Nine,,EUR,en,,,,,,n@x.de,,,,",
    "C6,Far,,EUR,en,,,,,,far2@x.de,,,,",
)


def _import(
    engine: Engine, org: Organisation, folder: Path, name: str, text: str, **options: Any
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    opts = ImportOptions(report_dir=folder / "reports", **options)
    ctx = importing.new_run(org, path, opts)
    return importing.run_import(engine, ctx).summary.to_json_dict()


def _reports(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json without what names the run, and the row-level report files."""
    folder = Path(summary["report_dir"])
    stored = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    for name in ("run_id", "started_at", "finished_at", "report_dir", "org", "source"):
        stored.pop(name, None)
    files = {
        name: (folder / name).read_text(encoding="utf-8")
        for name in ("errors.csv", "rejected_rows.csv")
        if (folder / name).exists()
    }
    return {"summary": stored, **files}


def _tables(engine: Engine, org_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    """Every column of the org's customers and contacts but ids, org and times, in key order."""
    with engine.connect() as conn:
        customers = conn.execute(
            sa.text(
                "SELECT erp_customer_number, name, email, default_currency, default_language, "
                "billing_address, shipping_address, notes, is_active, source_hash, raw_hash, "
                "raw_contacts FROM customer WHERE org_id = :org ORDER BY erp_customer_number"
            ),
            {"org": org_id},
        ).all()
        contacts = conn.execute(
            sa.text(
                "SELECT c.erp_customer_number, cc.email::text, cc.name, cc.phone, cc.role, "
                "cc.is_primary FROM customer_contact cc JOIN customer c ON c.id = cc.customer_id "
                "WHERE c.org_id = :org ORDER BY 1, 2"
            ),
            {"org": org_id},
        ).all()
    return customers, contacts


def _skipped(engine: Engine, org: Organisation, path: Path, **options: Any) -> set[str]:
    """The keys the next import of path would skip."""
    _, prints = skip_unchanged(
        engine, org.id, read_export(path), default_profile(), **{"mode": "upsert"} | options
    )
    assert prints is not None
    return set(prints.skipped.get_column("erp_customer_number").to_list())


def _pair(engine: Engine, name: str) -> tuple[Organisation, Organisation]:
    suffix = uuid.uuid4().hex[:6]
    return make_org(engine, f"{name}-on-{suffix}"), make_org(engine, f"{name}-off-{suffix}")


def test_skipping_unchanged_customers_gives_the_reports_and_tables_of_a_full_validation(
    engine: Engine, tmp_path: Path
) -> None:
    on, off = _pair(engine, "skip")
    for org, skip in ((on, True), (off, False)):
        _import(engine, org, tmp_path / org.slug, "first.csv", FIRST, skip_unchanged=skip)
    (tmp_path / "second.csv").write_text(SECOND, encoding="utf-8")
    # only the unchanged customers with no issue last time: C5 had a warning, C7 is respelled
    assert _skipped(engine, on, tmp_path / "second.csv") == {"C1", "C6"}

    for step, (name, text, options) in enumerate(
        [
            ("second.csv", SECOND, {"mode": "full"}),  # deactivates C8
            ("second.csv", SECOND, {"force": True}),  # a rerun: every clean customer skipped
            ("first.csv", FIRST, {"force": True, "dry_run": True}),
        ]
    ):
        results = [
            _import(engine, org, tmp_path / org.slug, name, text, skip_unchanged=skip, **options)
            for org, skip in ((on, True), (off, False))
        ]
        assert _reports(results[0]) == _reports(results[1]), step
        assert _tables(engine, on.id) == _tables(engine, off.id), step

    summary = _reports(results[0])["summary"]
    assert summary["dry_run"] is True
    customers, _ = _tables(engine, on.id)
    by_key = {row[0]: row for row in customers}
    assert by_key["C1"].raw_contacts == 2 and by_key["C1"].raw_hash is not None
    assert by_key["C5"].raw_hash is None  # its warning is reported again every time
    assert by_key["C8"].is_active is False


def test_the_rerun_counts_skipped_customers_and_their_contacts_unchanged(
    engine: Engine, tmp_path: Path
) -> None:
    on, off = _pair(engine, "rerun")
    for org, skip in ((on, True), (off, False)):
        _import(engine, org, tmp_path / org.slug, "second.csv", SECOND, skip_unchanged=skip)
    assert _skipped(engine, on, tmp_path / on.slug / "second.csv") == {
        "C1",
        "C2",
        "C4",
        "C6",
        "C7",
        "C9",
    }
    forced = [
        _import(
            engine, org, tmp_path / org.slug, "second.csv", SECOND, force=True, skip_unchanged=skip
        )
        for org, skip in ((on, True), (off, False))
    ]
    assert forced[0]["customers"] == forced[1]["customers"]
    assert forced[0]["customers"]["unchanged"] == 7  # C1 C2 C4 C5 C6 C7 C9; C3 rejected
    assert forced[0]["contacts"] == forced[1]["contacts"] == {
        "inserted": 0, "updated": 0, "unchanged": 6,
    }  # fmt: skip
    assert forced[0]["rows"] == forced[1]["rows"]


def test_a_change_of_the_rules_validates_every_customer_again(
    engine: Engine, tmp_path: Path
) -> None:
    org = make_org(engine, f"rules-{uuid.uuid4().hex[:6]}")
    _import(engine, org, tmp_path, "second.csv", SECOND)
    assert _skipped(engine, org, tmp_path / "second.csv")
    assert _skipped(engine, org, tmp_path / "second.csv", rules_extra="v2") == set()
    before = _tables(engine, org.id)
    changed = _import(engine, org, tmp_path, "second.csv", SECOND, force=True, rules_extra="v2")
    assert changed["customers"]["unchanged"] == 7
    assert _tables(engine, org.id) == before  # the same prints, now under the new rules
    assert _skipped(engine, org, tmp_path / "second.csv", rules_extra="v2")
    assert _skipped(engine, org, tmp_path / "second.csv") == set()


def test_a_customer_changed_by_a_racing_import_after_the_skip_is_imported_again(
    engine: Engine, tmp_path: Path
) -> None:
    """The skip is decided before the lock; a racing import that lands first is noticed."""
    racing, serial = _pair(engine, "race")
    racer = csv("C1,Alpha Racer,,EUR,en,,,,,,a@x.de,Anna,,,")
    for org in (racing, serial):
        _import(engine, org, tmp_path / org.slug, "second.csv", SECOND)
    # the reference: the racer lands, then the rerun of the file
    _import(engine, serial, tmp_path / serial.slug, "racer.csv", racer)
    expected = _import(engine, serial, tmp_path / serial.slug, "second.csv", SECOND, force=True)

    decided: list[RawPrints | None] = []

    def skip_then_race(
        engine: Engine, ctx: RunContext, raw: RawExport, allow: bool
    ) -> tuple[RawExport, RawPrints | None]:
        result = importing.skip_step(engine, ctx, raw, allow=allow)
        decided.append(result[1])
        if len(decided) == 1:  # between the decision and the lock, C1 changes
            _import(engine, racing, tmp_path / racing.slug, "racer.csv", racer)
        return result

    path = tmp_path / racing.slug / "second.csv"
    ctx = importing.new_run(
        racing, path, ImportOptions(report_dir=tmp_path / racing.slug / "reports", force=True)
    )
    steps = replace(importing.Steps(), skip=skip_then_race)
    summary = importing.run_import(engine, ctx, steps).summary.to_json_dict()

    first, second = decided
    assert first is not None and "C1" in first.skipped.get_column("erp_customer_number")
    assert second is not None and second.skipped.is_empty()
    assert summary["status"] == expected["status"]
    assert summary["customers"] == expected["customers"]
    assert summary["customers"]["updated"] == 1  # C1 back from the racer's name
    assert _tables(engine, racing.id) == _tables(engine, serial.id)


def _changes(engine: Engine, org: Organisation) -> int:
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT change_count FROM org WHERE id = :org"), {"org": org.id}
        ).scalar_one()
    return int(count)


def test_a_revert_after_the_skip_is_noticed_by_the_change_count(
    engine: Engine, tmp_path: Path
) -> None:
    """Every holder of the import lock counts a change; a revert that lands between the skip
    decision and the lock makes the load read the stored customers again and import again."""
    from flows.reverting import revert_run

    racing, serial = _pair(engine, "revert")
    racer = csv("C1,Alpha Racer,,EUR,en,,,,,,a@x.de,Anna,,,")
    racer_runs = {}
    for org in (racing, serial):
        _import(engine, org, tmp_path / org.slug, "second.csv", SECOND)
        before = _changes(engine, org)
        racer_runs[org.slug] = _import(engine, org, tmp_path / org.slug, "racer.csv", racer)
        assert _changes(engine, org) == before + 1
    # the reference: the racer is reverted, then the rerun of the file
    before = _changes(engine, serial)
    revert_run(engine, uuid.UUID(racer_runs[serial.slug]["run_id"]))
    assert _changes(engine, serial) == before + 1
    expected = _import(engine, serial, tmp_path / serial.slug, "second.csv", SECOND, force=True)

    decided: list[RawPrints | None] = []

    def skip_then_revert(
        engine: Engine, ctx: RunContext, raw: RawExport, allow: bool
    ) -> tuple[RawExport, RawPrints | None]:
        result = importing.skip_step(engine, ctx, raw, allow=allow)
        decided.append(result[1])
        if len(decided) == 1:  # between the decision and the lock, the racer is reverted
            revert_run(engine, uuid.UUID(racer_runs[racing.slug]["run_id"]))
        return result

    path = tmp_path / racing.slug / "second.csv"
    ctx = importing.new_run(
        racing, path, ImportOptions(report_dir=tmp_path / racing.slug / "reports", force=True)
    )
    steps = replace(importing.Steps(), skip=skip_then_revert)
    summary = importing.run_import(engine, ctx, steps).summary.to_json_dict()

    first, second = decided
    assert first is not None and first.skipped.height  # C6 was skipped before the revert
    assert second is not None and second.skipped.is_empty()
    assert summary["customers"] == expected["customers"]
    assert _tables(engine, racing.id) == _tables(engine, serial.id)
