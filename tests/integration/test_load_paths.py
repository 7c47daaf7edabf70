"""The load's paths give the same rows: new customers COPYed straight in, or staged and merged."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from benchmarks.generate import generate, write_csv
from flows.reading import read_export
from loaders import upsert
from loaders.ids import time_ordered_ids
from tests.integration.helpers import make_org
from validators import Validated, resolve_header, validate_rows

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,notes,"
    "billing_street,billing_city,billing_postal_code,billing_country,"
    "shipping_street,shipping_city,shipping_postal_code,shipping_country,"
    "contact_email,contact_name,contact_phone,contact_role,contact_is_primary"
)

# Addresses with some, none or all parts; values that look like JSON; primaries; empty cells.
TRICKY = "\n".join(
    [
        HEADER,
        'A1,Ä GmbH,a@x.de,EUR,de-DE,"a, ""quoted""\nnote",Weg 1,,,DE,,,,,'
        "c1@x.de,Carl,+49 1,buyer,yes",
        'A1,Ä GmbH,a@x.de,EUR,de-DE,"a, ""quoted""\nnote",Weg 1,,,DE,,,,,c2@x.de,,,,',
        'A2,B SA,,chf,fr-ch,,,,,,"x"",""city"":null",,1000,CH,c3@x.de,Dora,,,no',
        "A3,C AB,,SEK,sv,,,,,,,,,,,,,,",
        "A4,D BV,,EUR,nl,,,Stad,,,,,,,C4@X.DE,,,,x",
        "A4,D BV,,EUR,nl,,,Stad,,,,,,,c5@x.de,,,,x",
    ]
)


def _validated(path: Path) -> Validated:
    raw = read_export(path)
    return validate_rows(raw.rows, resolve_header(raw.header))


def _load(engine: Engine, org_id: uuid.UUID, validated: Validated, *, direct: bool) -> None:
    with engine.begin() as conn:
        upsert.lock_organisation(conn, org_id)
        split = upsert.split_export(
            conn, org_id, validated.customers, validated.contacts, active_only=False
        )
        if direct:
            upsert.insert_new_customers(conn, org_id, split.new_customers, split.new_contacts)
            return
        upsert.stage_export(conn, split.new_customers, split.new_contacts, validated.keys_seen)
        upsert.apply_customers(conn, org_id, frozenset(validated.customers.columns), full=False)
        upsert.apply_contacts(conn, org_id, frozenset(validated.contacts.columns))


def _stored(engine: Engine, org_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    """Every column of the org's customers and contacts but ids and timestamps, in key order."""
    with engine.connect() as conn:
        customers = conn.execute(
            sa.text(
                "SELECT erp_customer_number, name, email, default_currency, default_language, "
                "billing_address, shipping_address, notes, is_active, source_hash "
                "FROM customer WHERE org_id = :org ORDER BY erp_customer_number"
            ),
            {"org": org_id},
        ).all()
        contacts = conn.execute(
            sa.text(
                "SELECT c.erp_customer_number, cc.org_id = c.org_id, cc.email::text, cc.name, "
                "cc.phone, cc.role, cc.is_primary FROM customer_contact cc "
                "JOIN customer c ON c.id = cc.customer_id "
                "WHERE c.org_id = :org ORDER BY 1, 3"
            ),
            {"org": org_id},
        ).all()
    return customers, contacts


@pytest.mark.parametrize("source", ["tricky", "generated"])
def test_new_customers_copied_directly_get_the_same_rows_as_through_staging(
    engine: Engine, tmp_path: Path, source: str
) -> None:
    path = tmp_path / "export.csv"
    if source == "tricky":
        path.write_text(TRICKY + "\n", encoding="utf-8")
    else:
        write_csv(generate(400, seed=11), path)
    validated = _validated(path)
    direct = make_org(engine, f"direct-{source}")
    staged = make_org(engine, f"staged-{source}")

    _load(engine, direct.id, validated, direct=True)
    _load(engine, staged.id, validated, direct=False)

    customers, contacts = _stored(engine, direct.id)
    assert customers  # the file is not all rejected
    assert (customers, contacts) == _stored(engine, staged.id)


def test_client_made_ids_are_version_7_increasing_and_distinct() -> None:
    ids = [uuid.UUID(value) for value in time_ordered_ids(5000)]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
