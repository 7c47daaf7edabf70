"""The change history and revert on real PostgreSQL, through the plain import steps."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from flows.reverting import NotRevertibleError, RevertRefusedError, revert_run
from loaders import history
from tests.integration.helpers import make_org, run_import

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,"
    "billing_city,contact_email,contact_name,contact_is_primary"
)

V1 = (
    "001,Alpha GmbH,a@alpha.de,EUR,de,Berlin,anna@alpha.de,Anna,x\n"
    "001,Alpha GmbH,a@alpha.de,EUR,de,Berlin,bert@alpha.de,Bert,\n"
    "002,Beta AG,,CHF,de-CH,Zürich,carl@beta.ch,Carl,\n"
    "003,Gamma SA,g@gamma.fr,EUR,fr,,dora@gamma.fr,Dora,x\n"
)
# 001: currency and city changed, Bert becomes primary (Anna demoted); 002 unchanged;
# 003 lacks from the file (full mode: deactivated); 004 new; a new contact for 002.
V2 = (
    "001,Alpha GmbH,a@alpha.de,USD,de,Hamburg,anna@alpha.de,Anna,\n"
    "001,Alpha GmbH,a@alpha.de,USD,de,Hamburg,bert@alpha.de,Bert Neu,x\n"
    "002,Beta AG,,CHF,de-CH,Zürich,carl@beta.ch,Carl,\n"
    "002,Beta AG,,CHF,de-CH,Zürich,emil@beta.ch,Emil,\n"
    "004,Delta BV,d@delta.nl,EUR,nl,Delft,fred@delta.nl,Fred,x\n"
)

SNAPSHOT = """
    SELECT 'customer' AS t, to_jsonb(c) - 'updated_at' AS row
    FROM customer c WHERE c.org_id = :org
    UNION ALL
    SELECT 'contact', to_jsonb(cc) - 'updated_at'
    FROM customer_contact cc WHERE cc.org_id = :org
"""


def snapshot(engine: Engine, org_id: Any) -> list[str]:
    """Every column of the organisation's customers and contacts but updated_at, sorted."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(SNAPSHOT), {"org": org_id}).all()
    return sorted(f"{t} {row}" for t, row in rows)


def csv(body: str) -> str:
    return HEADER + "\n" + body


@pytest.fixture
def org(engine: Engine, request: pytest.FixtureRequest) -> Any:
    return make_org(engine, request.node.name.replace("_", "-")[:50].lower() + uuid.uuid4().hex[:6])


def _changes(engine: Engine, run_id: str) -> list[history.CustomerChanges]:
    with engine.connect() as conn:
        run = history.get_run_info(conn, uuid.UUID(run_id))
        assert run is not None
        return history.run_changes(conn, run)


def test_a_run_records_its_changes_before_and_after(engine, org, tmp_path: Path) -> None:
    run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    v2 = run_import(engine, org, tmp_path, csv(V2), name="v2.csv", mode="full")
    by_number = {c.erp_customer_number: c for c in _changes(engine, v2["run_id"])}
    assert set(by_number) == {"001", "002", "003", "004"}
    alpha = by_number["001"]
    assert alpha.action == "updated"
    assert [(f.field, f.before, f.after) for f in alpha.fields] == [
        ("billing_address", {"city": "Berlin"}, {"city": "Hamburg"}),
        ("default_currency", "EUR", "USD"),
    ]
    contacts = {c.email: c for c in alpha.contacts}
    assert [(f.field, f.before, f.after) for f in contacts["anna@alpha.de"].fields] == [
        ("is_primary", True, False)
    ]
    assert {(f.field, f.before, f.after) for f in contacts["bert@alpha.de"].fields} == {
        ("is_primary", False, True),
        ("name", "Bert", "Bert Neu"),
    }
    assert by_number["002"].action is None
    assert [(c.action, c.email) for c in by_number["002"].contacts] == [
        ("inserted", "emil@beta.ch")
    ]
    assert by_number["003"].action == "deactivated"
    assert by_number["004"].action == "inserted"
    with engine.connect() as conn:
        counts = {(e, f): n for e, f, n in history.field_counts(conn, v2["run_id"])}
    assert counts == {
        ("customer", "default_currency"): 1,
        ("customer", "billing_address"): 1,
        ("customer", "is_active"): 1,
        ("contact", "is_primary"): 2,
        ("contact", "name"): 1,
    }


def test_a_dry_run_and_a_forced_rerun_record_nothing(engine, org, tmp_path: Path) -> None:
    v1 = run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    dry = run_import(engine, org, tmp_path, csv(V2), name="v2.csv", dry_run=True)
    forced = run_import(engine, org, tmp_path, csv(V1), name="v1.csv", force=True)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT count(*) FROM change_history WHERE run_id IN (:a, :b, :c)"),
            {"a": v1["run_id"], "b": dry["run_id"], "c": forced["run_id"]},
        ).scalar_one()
    assert rows == 0
    assert forced["customers"]["unchanged"] == 3


def test_reverting_v2_gives_back_v1_and_reverting_the_revert_gives_back_v2(
    engine, org, tmp_path: Path
) -> None:
    run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    after_v1 = snapshot(engine, org.id)
    v2 = run_import(engine, org, tmp_path, csv(V2), name="v2.csv", mode="full")
    after_v2 = snapshot(engine, org.id)
    [reverted] = revert_run(engine, uuid.UUID(v2["run_id"]))
    assert snapshot(engine, org.id) == after_v1
    assert reverted.counts.customers_deleted == 1
    assert reverted.counts.customers_reactivated == 1
    [again] = revert_run(engine, uuid.UUID(reverted.summary.run_id))
    assert snapshot(engine, org.id) == after_v2
    assert again.summary.reverts == reverted.summary.run_id
    # v2 stands again: its bytes are applied, and its revert is reverted.
    rerun = run_import(engine, org, tmp_path, csv(V2), name="v2.csv", mode="full")
    assert rerun["status"] == "skipped"


def test_a_reverted_runs_bytes_apply_again(engine, org, tmp_path: Path) -> None:
    run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    v2 = run_import(engine, org, tmp_path, csv(V2), name="v2.csv")
    revert_run(engine, uuid.UUID(v2["run_id"]))
    again = run_import(engine, org, tmp_path, csv(V2), name="v2.csv")
    assert again["status"] == "succeeded"
    assert again["customers"]["inserted"] == 1


def test_a_revert_is_refused_when_a_later_run_changed_the_same_customer_unless_cascade(
    engine, org, tmp_path: Path
) -> None:
    run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    after_v1 = snapshot(engine, org.id)
    v2 = run_import(engine, org, tmp_path, csv(V2), name="v2.csv")
    v3 = run_import(
        engine, org, tmp_path, csv("001,Alpha Neu,a@alpha.de,USD,de,Hamburg,,,\n"), name="v3.csv"
    )
    with pytest.raises(RevertRefusedError, match="001") as refused:
        revert_run(engine, uuid.UUID(v2["run_id"]))
    assert [str(c.run_id) for c in refused.value.conflicts] == [v3["run_id"]]
    done = revert_run(engine, uuid.UUID(v2["run_id"]), cascade=True)
    assert [d.summary.reverts for d in done] == [v3["run_id"], v2["run_id"]]
    assert snapshot(engine, org.id) == after_v1
    with pytest.raises(NotRevertibleError, match="already reverted"):
        revert_run(engine, uuid.UUID(v2["run_id"]))


def test_a_later_run_on_other_customers_does_not_stop_a_revert(engine, org, tmp_path: Path) -> None:
    run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    v2 = run_import(
        engine, org, tmp_path, csv("001,Alpha Neu,a@alpha.de,EUR,de,Berlin,,,\n"), name="v2.csv"
    )
    run_import(engine, org, tmp_path, csv("002,Beta Neu,,CHF,de-CH,Zürich,,,\n"), name="v3.csv")
    [done] = revert_run(engine, uuid.UUID(v2["run_id"]))
    assert done.counts.customers_updated == 1


def test_a_dry_run_revert_changes_nothing(engine, org, tmp_path: Path) -> None:
    run_import(engine, org, tmp_path, csv(V1), name="v1.csv")
    v2 = run_import(engine, org, tmp_path, csv(V2), name="v2.csv")
    after_v2 = snapshot(engine, org.id)
    [done] = revert_run(engine, uuid.UUID(v2["run_id"]), dry_run=True)
    assert done.summary.dry_run
    assert snapshot(engine, org.id) == after_v2
    with engine.connect() as conn:
        run = history.get_run_info(conn, uuid.UUID(v2["run_id"]))
    assert run is not None and run.reverted_by is None


# --- the property -------------------------------------------------------------------------------

NUMBERS = ["1", "2", "3", "4"]
EMAILS = ["a@x.de", "b@x.de", "c@x.de"]

customer_rows = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["N1", "N2"]),
        "email": st.sampled_from(["", "m@x.de", "n@x.de"]),
        "currency": st.sampled_from(["EUR", "USD"]),
        "city": st.sampled_from(["", "Berlin", "Wien"]),
        "contacts": st.lists(
            st.tuples(st.sampled_from(EMAILS), st.sampled_from(["", "K", "L"]), st.booleans()),
            max_size=3,
            unique_by=lambda contact: contact[0],
        ),
    }
)
exports = st.tuples(
    st.dictionaries(st.sampled_from(NUMBERS), customer_rows, min_size=1, max_size=4),
    st.sampled_from(["upsert", "full"]),
)


def _export_text(customers: dict[str, dict[str, Any]]) -> str:
    lines = []
    for number, c in sorted(customers.items()):
        contacts = c["contacts"] or [("", "", False)]
        primary_seen = False
        for email, name, primary in contacts:
            mark = "x" if primary and email and not primary_seen else ""
            primary_seen = primary_seen or bool(mark)
            lines.append(
                f"{number},{c['name']},{c['email']},{c['currency']},de,{c['city']},"
                f"{email},{name if email else ''},{mark}"
            )
    return csv("\n".join(lines) + "\n")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(exports, min_size=1, max_size=4))
def test_reverting_the_last_run_gives_back_the_state_before_it(
    engine, tmp_path: Path, sequence: list[tuple[dict[str, dict[str, Any]], str]]
) -> None:
    org = make_org(engine, f"prop-{uuid.uuid4().hex[:10]}")
    last: dict[str, Any] | None = None
    before_last: list[str] = []
    for i, (customers, mode) in enumerate(sequence):
        before = snapshot(engine, org.id)
        summary = run_import(
            engine, org, tmp_path, _export_text(customers), name=f"e{i}.csv", mode=mode,
            force=True,
        )  # fmt: skip
        assert summary["status"] in ("succeeded", "partial"), summary
        last, before_last = summary, before
    assert last is not None
    revert_run(engine, uuid.UUID(last["run_id"]))
    assert snapshot(engine, org.id) == before_last
