"""CONTRACT.md section 7 through `erp-sync` as a user runs it: changes, history, revert, prune,
the stale-export guard and the sync's as-of order, on the module's real PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.e2e.cli import CliEnv, Result, finish, run_cli, start_cli_subprocess
from tests.e2e.helpers import (
    WAIT,
    checksum,
    csv_file,
    import_args,
    import_backends,
    kill_group,
    names_of,
    process_env,
    reaped,
    register,
    summary_of,
    table_held,
    two_blocked,
    wait_until,
    wait_until_gone,
    waiting_on,
)

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,"
    "billing_city,contact_email,contact_name,contact_is_primary"
)
V1 = (
    "0000123,Alpha GmbH,a@alpha.de,EUR,de,Berlin,anna@alpha.de,Anna,x\n"
    "0000123,Alpha GmbH,a@alpha.de,EUR,de,Berlin,bert@alpha.de,Bert,\n"
    "0000124,Beta AG,,CHF,de-CH,Zürich,carl@beta.ch,Carl,x\n"
    "0000125,Gamma SA,g@gamma.fr,EUR,fr,,dora@gamma.fr,Dora,x\n"
)
# Changes, a new customer, a removed contact (0000124's Carl not in the file: kept, as the
# contract says), a new primary (Bert), and 0000125 missing (deactivated in full mode).
V2 = (
    "0000123,Alpha GmbH,a@alpha.de,USD,de,Hamburg,anna@alpha.de,Anna,\n"
    "0000123,Alpha GmbH,a@alpha.de,USD,de,Hamburg,bert@alpha.de,Bert Neu,x\n"
    "0000124,Beta AG,,CHF,de-CH,Zürich,emil@beta.ch,Emil,x\n"
    "0000126,Delta BV,d@delta.nl,EUR,nl,Delft,fred@delta.nl,Fred,x\n"
)

STATE = """
    SELECT to_jsonb(c) - 'updated_at' FROM customer c JOIN org o ON o.id = c.org_id
    WHERE o.slug = :slug
    UNION ALL
    SELECT to_jsonb(cc) - 'updated_at' FROM customer_contact cc JOIN org o ON o.id = cc.org_id
    WHERE o.slug = :slug
"""


def state(engine: Engine, slug: str) -> list[str]:
    """Every column of the organisation's customers and contacts but updated_at."""
    with engine.connect() as conn:
        return sorted(str(r[0]) for r in conn.execute(sa.text(STATE), {"slug": slug}))


def write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + body, encoding="utf-8")
    return path


def imported(env: CliEnv, path: Path, org: str, *options: str) -> tuple[Result, dict[str, Any]]:
    """`import --json` of path into org: the result and its summary ({} when it printed none)."""
    result = run_cli(import_args(path, org, env, *options), env)
    return result, (summary_of(result) if result.stdout.strip() else {})


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    return process_env(db_url, prefect_api, tmp_path)


@pytest.fixture
def org(engine: Engine) -> str:
    slug = f"h-{uuid.uuid4().hex[:10]}"
    register(engine, slug)
    return slug


def test_import_v1_v2_then_revert_v2_gives_back_v1_and_reverting_the_revert_gives_back_v2(
    env: CliEnv, engine: Engine, org: str, tmp_path: Path
) -> None:
    code, v1 = imported(env, write(tmp_path / "v1.csv", V1), org)
    assert code.exit_code == 0, code
    after_v1 = state(engine, org)
    code, v2 = imported(env, write(tmp_path / "v2.csv", V2), org, "--mode", "full")
    assert code.exit_code == 0, code
    after_v2 = state(engine, org)

    changes = run_cli(["changes", v2["run_id"], "--customer", "0000123"], env)
    assert changes.exit_code == 0, changes
    assert 'default_currency: "EUR" -> "USD"' in changes.stdout
    assert "contact bert@alpha.de updated" in changes.stdout
    document = run_cli(["changes", v2["run_id"][:13], "--json"], env).json()
    actions = {c["erp_customer_number"]: c["action"] for c in document["customers"]}
    assert actions == {
        "0000123": "updated",
        "0000124": None,
        "0000125": "deactivated",
        "0000126": "inserted",
    }
    report = (env.cwd / "reports" / v2["run_id"] / "report.html").read_text(encoding="utf-8")
    assert 'id="changes"' in report and 'data-field="customer default_currency"' in report
    index = (env.cwd / "reports" / "index.html").read_text(encoding="utf-8")
    # currency, city, a deactivation; Bert's name, primary moved to Bert and to Emil (3 contacts)
    assert 'data-figure="fields_changed">7<' in index
    hist = run_cli(["history", "--org", org, "--customer", "0000123", "--json"], env).json()
    assert [r["run_id"] for r in hist["runs"]] == [v2["run_id"], v1["run_id"]]
    assert [r["action"] for r in hist["runs"]] == ["updated", "inserted"]

    reverted = run_cli(["revert", v2["run_id"], "--json"], env)
    assert reverted.exit_code == 0, reverted
    [revert] = reverted.json()
    assert revert["mode"] == "revert" and revert["status"] == "succeeded"
    assert revert["reverts"] == v2["run_id"]
    assert revert["customers"]["reactivated"] == 1  # the full-mode deactivation undone
    assert revert["deleted"] == {"customers": 1, "contacts": 2}
    assert state(engine, org) == after_v1

    runs = run_cli(["runs", "--org", org, "--json"], env).json()
    assert [r["mode"] for r in runs] == ["revert", "full", "upsert"]

    again = run_cli(["revert", revert["run_id"], "--json"], env)
    assert again.exit_code == 0, again
    assert state(engine, org) == after_v2


def test_a_reverted_runs_file_applies_again(
    env: CliEnv, engine: Engine, org: str, tmp_path: Path
) -> None:
    imported(env, write(tmp_path / "v1.csv", V1), org)
    v2_file = write(tmp_path / "v2.csv", V2)
    _, v2 = imported(env, v2_file, org)
    assert run_cli(["revert", v2["run_id"]], env).exit_code == 0
    result, again = imported(env, v2_file, org)
    assert again["status"] == "succeeded", result


def test_a_revert_is_refused_with_exit_3_naming_the_customers_then_cascade_reverts_both(
    env: CliEnv, engine: Engine, org: str, tmp_path: Path
) -> None:
    imported(env, write(tmp_path / "v1.csv", V1), org)
    after_v1 = state(engine, org)
    _, v2 = imported(env, write(tmp_path / "v2.csv", V2), org)
    _, v3 = imported(env, write(tmp_path / "v3.csv", "0000123,Alpha Neu,,USD,de,,,,\n"), org)
    refused = run_cli(["revert", v2["run_id"]], env)
    assert refused.exit_code == 3, refused
    assert "0000123" in refused.stderr and v3["run_id"] in refused.stderr
    dry = run_cli(["revert", v2["run_id"], "--cascade", "--dry-run"], env)
    assert dry.exit_code == 0 and "nothing was changed" in dry.stdout
    cascade = run_cli(["revert", v2["run_id"], "--cascade", "--json"], env)
    assert cascade.exit_code == 0, cascade
    assert [r["reverts"] for r in cascade.json()] == [v3["run_id"], v2["run_id"]]
    assert state(engine, org) == after_v1


def test_the_stale_guard_refuses_an_older_export_by_name_or_as_of_but_not_undated_or_forced(
    env: CliEnv, engine: Engine, org: str, tmp_path: Path
) -> None:
    newer = write(tmp_path / "kunden_2026-11-21.csv", V1)
    result, first = imported(env, newer, org)
    assert first["as_of"] == "2026-11-21T00:00:00+00:00", result
    older = write(tmp_path / "export_20261120T0200.csv", V2)
    result, stale = imported(env, older, org)
    assert result.exit_code == 3, result
    assert stale["file_errors"][0]["code"] == "stale_export"
    assert "2026-11-20T02:00:00" in stale["file_errors"][0]["message"]
    assert "kunden_2026-11-21.csv" in stale["file_errors"][0]["message"]

    undated = write(tmp_path / "customers.csv", V2)
    result, _ = imported(env, undated, org, "--as-of", "2026-11-19")
    assert result.exit_code == 3, result
    result, plain = imported(env, undated, org)
    assert result.exit_code == 0 and "as_of" not in plain, result
    result, forced = imported(env, older, org, "--force")
    assert result.exit_code == 0 and forced["status"] == "succeeded", result


def test_the_sync_applies_an_organisations_files_in_as_of_order_and_refuses_the_stale_one(
    env: CliEnv, engine: Engine, org: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    # Name order would put "b_" first; as-of order applies a_ (20th) then b_ (21st).
    write(inbox / org / "b_2026-11-21.csv", "0000123,From 21st,,EUR,de,,,,\n")
    write(inbox / org / "a_2026-11-22.csv", "0000123,From 22nd,,EUR,de,,,,\n")
    result = run_cli(["sync", str(inbox), "--json", "--report-dir", str(env.cwd / "reports")], env)
    assert result.exit_code == 0, result
    assert [Path(f["file"]).name for f in result.json()["files"]] == [
        "b_2026-11-21.csv",
        "a_2026-11-22.csv",
    ]
    shutil.rmtree(inbox / org)
    write(inbox / org / "late_2026-11-20.csv", "0000123,From 20th,,EUR,de,,,,\n")
    result = run_cli(["sync", str(inbox), "--json", "--report-dir", str(env.cwd / "reports")], env)
    assert result.exit_code == 3, result
    assert [f["status"] for f in result.json()["files"]] == ["rejected"]
    assert names_of(engine, org) == {"0000123": "From 22nd"}


def test_pruning_deletes_old_history_and_keeps_the_customers(
    env: CliEnv, engine: Engine, org: str, tmp_path: Path
) -> None:
    imported(env, write(tmp_path / "v1.csv", V1), org)
    _, v2 = imported(env, write(tmp_path / "v2.csv", V2), org)
    before = state(engine, org)
    with engine.begin() as conn:  # make the runs old
        conn.execute(
            sa.text(
                "UPDATE import_run SET finished_at = finished_at - interval '100 days', "
                "started_at = started_at - interval '100 days' "
                "WHERE org_id = (SELECT id FROM org WHERE slug = :s)"
            ),
            {"s": org},
        )
    bad = run_cli(["history", "prune", "--older-than", "ninety"], env)
    assert bad.exit_code == 2, bad
    pruned = run_cli(["history", "prune", "--older-than", "90d"], env)
    assert pruned.exit_code == 0, pruned
    assert state(engine, org) == before
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT count(*) FROM change_history WHERE run_id = :r"), {"r": v2["run_id"]}
        ).scalar_one()
    assert rows == 0
    refused = run_cli(["revert", v2["run_id"]], env)
    assert refused.exit_code == 2 and "no change history" in refused.stderr, refused


# --- under concurrency: real processes, the timing pinned by a table lock ------------------------


@pytest.mark.slow
def test_a_revert_and_an_import_of_one_organisation_never_interleave(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    slug = f"hc-{uuid.uuid4().hex[:8]}"
    register(engine, slug)
    numbers = [f"{i:04d}" for i in range(200)]
    v1, v2 = (
        run_cli(
            import_args(csv_file(tmp_path / f"{v}.csv", [(n, v) for n in numbers]), slug, env), env
        )
        for v in ("v1", "v2")
    )
    assert (v1.exit_code, v2.exit_code) == (0, 0), (v1, v2)
    v3 = csv_file(tmp_path / "v3.csv", [(n, "v3") for n in numbers])
    with table_held(db_url, "customer") as release:
        revert = start_cli_subprocess(["revert", summary_of(v2)["run_id"], "--json"], env)
        imp = start_cli_subprocess(import_args(v3, slug, env), env)
        with reaped(revert, imp):
            waiting = wait_until(
                "the revert and the import are both blocked",
                lambda: two_blocked(admin, database),
                [revert, imp],
            )
            # One holds the organisation's lock and waits for the table; the other waits
            # for the organisation's lock, before touching anything.
            assert sorted(target for _, target in waiting) == ["advisory", "customer"], waiting
            release()
            reverted, imported_v3 = finish(revert, WAIT), finish(imp, WAIT)
    assert imported_v3.exit_code == 0, imported_v3
    names = set(names_of(engine, slug).values())
    if reverted.exit_code == 0:  # the revert went first: v3 over v1
        assert imported_v3.json()["customers"]["updated"] == 200
    else:  # the import went first: the revert is refused, v3 stands
        assert reverted.exit_code == 3, reverted
    assert names == {"v3"}


@pytest.mark.slow
def test_a_revert_killed_in_the_middle_changes_nothing(
    env: CliEnv,
    engine: Engine,
    admin: psycopg.Connection[Any],
    database: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    slug = f"hk-{uuid.uuid4().hex[:8]}"
    register(engine, slug)
    _, v1 = imported(
        env, csv_file(tmp_path / "v1.csv", [(f"{i:04d}", "v1") for i in range(300)]), slug
    )
    result, v2 = imported(
        env, csv_file(tmp_path / "v2.csv", [(f"{i:04d}", "v2") for i in range(400)]), slug
    )
    assert (v1["status"], v2["status"]) == ("succeeded", "succeeded"), result
    before = checksum(engine, slug)
    # The revert deletes v2's new contacts, then waits to delete v2's new customers.
    with table_held(db_url, "customer") as release:
        victim = start_cli_subprocess(["revert", v2["run_id"]], env)
        with reaped(victim):
            wait_until(
                "the revert has started writing and waits for the customer table",
                lambda: waiting_on(admin, database, "customer"),
                [victim],
            )
            kill_group(victim)
        release()
    engine.dispose()
    # The orphaned backend rolls back once it finds its client gone (idle ones are this
    # process's pooled connections: they hold no transaction).
    wait_until_gone(
        "the killed revert's busy backends",
        lambda: [b for b in import_backends(admin, database) if b[1] != "idle"],
    )
    assert checksum(engine, slug) == before
    with engine.connect() as conn:
        reverted_by = conn.execute(
            sa.text("SELECT reverted_by FROM import_run WHERE id = :r"), {"r": v2["run_id"]}
        ).scalar_one()
        reverts = conn.execute(
            sa.text("SELECT count(*) FROM import_run WHERE mode = 'revert' AND reverts = :r"),
            {"r": v2["run_id"]},
        ).scalar_one()
    assert (reverted_by, reverts) == (None, 0)
    again = run_cli(["revert", v2["run_id"]], env)
    assert again.exit_code == 0, again
