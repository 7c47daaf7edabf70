"""The nightly sync end to end: real PostgreSQL, real Prefect flow runs, inboxes on disk.

Every test uses its own organisation slugs, so the module's one database serves them all; the
costly syncs run once in module-scoped fixtures and several tests read what they did.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import settings as settings_module
from flows.importing import ImportOptions
from loaders.orgs import add_org
from loaders.tables import customer, import_run, org

SAMPLE_INBOX = Path(__file__).resolve().parents[2] / "sample_data" / "inbox"
DATA_FILES = Path(__file__).resolve().parents[1] / "data_files"

Snapshot = dict[str, tuple[bytes, int]]


# --- helpers ----------------------------------------------------------------------------------


def snapshot(folder: Path) -> Snapshot:
    """Every file under folder: its bytes and mtime (ns), by relative path."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def register(engine: Engine, *slugs: str) -> None:
    with engine.begin() as conn:
        for slug in slugs:
            add_org(conn, slug)


def runs_of(engine: Engine, slug: str) -> list[dict[str, Any]]:
    """The import runs of an organisation, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(import_run.c.source, import_run.c.status, import_run.c.mode)
            .join(org, org.c.id == import_run.c.org_id)
            .where(org.c.slug == slug)
            .order_by(import_run.c.started_at)
        )
        return [dict(r._mapping) for r in rows]


def customers_of(engine: Engine, slug: str) -> dict[str, bool]:
    """erp_customer_number -> is_active for an organisation."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(customer.c.erp_customer_number, customer.c.is_active)
            .join(org, org.c.id == customer.c.org_id)
            .where(org.c.slug == slug)
        )
        return {r.erp_customer_number: r.is_active for r in rows}


def by_org(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for f in result["files"]:
        grouped.setdefault(f["org"], []).append(f)
    return grouped


def sync(inbox: Path, report_dir: Path, **options: Any) -> dict[str, Any]:
    from flows.sync_flow import sync_inbox

    result: dict[str, Any] = sync_inbox(str(inbox), ImportOptions(report_dir=report_dir, **options))
    return result


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def erp_env(db_url: str, prefect_api: str) -> Iterator[None]:
    """Point erp-sync at the module's database (and the session's Prefect API)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", db_url)
        mp.setenv("ERP_SYNC_SYNC_CONCURRENCY", "4")
        settings_module.get_settings.cache_clear()
        yield
    settings_module.get_settings.cache_clear()


@pytest.fixture(scope="module")
def samples_synced(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample inbox (three organisations) synced once, then synced a second time."""
    inbox = tmp_path_factory.mktemp("samples") / "inbox"
    shutil.copytree(SAMPLE_INBOX, inbox)
    report_dir = tmp_path_factory.mktemp("samples-reports")
    register(engine, "acme-gmbh", "bistro-lyon", "nordwind")
    before = snapshot(inbox)
    first = sync(inbox, report_dir)
    customers_after_first = {s: customers_of(engine, s) for s in ("acme-gmbh", "nordwind")}
    second = sync(inbox, report_dir)
    return {
        "inbox": inbox,
        "report_dir": report_dir,
        "before": before,
        "first": first,
        "second": second,
        "customers_after_first": customers_after_first,
    }


@pytest.fixture(scope="module")
def mixed_synced(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An inbox with a broken file, an unknown organisation and an invalid erp-sync.toml."""
    inbox = tmp_path_factory.mktemp("mixed") / "inbox"
    shutil.copytree(DATA_FILES / "inbox_mixed", inbox)
    register(engine, "mix-broken", "mix-good", "mix-badtoml")  # mix-ghost stays unknown
    result = sync(inbox, tmp_path_factory.mktemp("mixed-reports"))
    return {"inbox": inbox, "result": result}


# --- the sample inbox -------------------------------------------------------------------------


def test_a_sync_imports_each_new_file_of_every_organisation_once(
    samples_synced: dict[str, Any], engine: Engine
) -> None:
    first = samples_synced["first"]
    files = by_org(first)
    assert sorted(files) == ["acme-gmbh", "bistro-lyon", "nordwind"]
    assert {o: [f["status"] for f in fs] for o, fs in files.items()} == {
        "acme-gmbh": ["succeeded"],
        "bistro-lyon": ["partial"],  # the sample holds rows that are meant to fail
        "nordwind": ["succeeded"],
    }
    assert first["exit_code"] == 1  # the highest of the files'
    assert first["unknown_orgs"] == [] and first["skipped_already_applied"] == 0
    for slug in files:
        assert [r["status"] for r in runs_of(engine, slug)] == [files[slug][0]["status"]]
    assert len(customers_of(engine, "nordwind")) == 4


def test_each_file_of_a_sync_is_a_subflow_run_of_the_nightly_sync(
    samples_synced: dict[str, Any],
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    first = samples_synced["first"]
    with get_client(sync_client=True) as client:
        # Only the nightly-sync runs, newest first: the session's server holds the flow runs of
        # every e2e test, more than one page of an unfiltered listing.
        syncs = [
            r
            for r in client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["nightly-sync"])),
                sort=FlowRunSort.START_TIME_DESC,
            )
            if r.parameters.get("inbox") == str(samples_synced["inbox"])
        ]
        assert syncs, "the sync's flow run is not recorded"
        children = [
            run
            for parent in syncs
            for run in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
                )
            )
        ]
    assert sorted(r.parameters["path"] for r in children) == sorted(
        f["file"] for f in first["files"]
    )


def test_a_second_sync_of_the_same_inbox_changes_nothing_and_exits_0(
    samples_synced: dict[str, Any], engine: Engine
) -> None:
    second = samples_synced["second"]
    assert second["files"] == []
    assert second["skipped_already_applied"] == 3
    assert second["exit_code"] == 0
    for slug in ("acme-gmbh", "bistro-lyon", "nordwind"):
        assert len(runs_of(engine, slug)) == 1
    for slug, before in samples_synced["customers_after_first"].items():
        assert customers_of(engine, slug) == before


def test_a_sync_leaves_the_inbox_files_as_they_were(samples_synced: dict[str, Any]) -> None:
    assert snapshot(samples_synced["inbox"]) == samples_synced["before"]


def test_a_sync_regenerates_the_runs_index_with_every_run(samples_synced: dict[str, Any]) -> None:
    index = samples_synced["report_dir"] / "index.html"
    assert samples_synced["second"]["index"] == str(index)
    page = index.read_text(encoding="utf-8")
    for f in samples_synced["first"]["files"]:
        assert f'data-run-id="{f["run_id"]}"' in page
        assert (Path(f["report_dir"]) / "summary.json").is_file()


# --- broken files, unknown organisations, bad settings ----------------------------------------


def test_a_broken_file_is_rejected_with_exit_3_and_the_others_are_still_applied(
    mixed_synced: dict[str, Any], engine: Engine
) -> None:
    files = by_org(mixed_synced["result"])
    broken = files["mix-broken"]
    assert [(Path(f["file"]).name, f["status"], f["exit_code"]) for f in broken] == [
        ("01-missing-name.csv", "rejected", 3),
        ("02-customers.csv", "succeeded", 0),  # the organisation's next file still runs
    ]
    summary = json.loads((Path(broken[0]["report_dir"]) / "summary.json").read_text())
    assert [e["code"] for e in summary["file_errors"]] == ["missing_column"]
    assert [f["status"] for f in files["mix-good"]] == ["succeeded"]
    assert customers_of(engine, "mix-good") == {"K-1": True, "K-2": True}
    assert mixed_synced["result"]["exit_code"] == 3


def test_an_unknown_organisation_folder_is_reported_and_the_others_still_run(
    mixed_synced: dict[str, Any],
) -> None:
    result = mixed_synced["result"]
    assert result["unknown_orgs"] == ["mix-ghost"]
    assert "mix-ghost" not in by_org(result)
    assert {"mix-broken", "mix-good"} <= set(by_org(result))
    ghost = [e for e in result["org_errors"] if e["org"] == "mix-ghost"]
    assert (
        ghost and ghost[0]["exit_code"] == 2 and "erp-sync org add mix-ghost" in ghost[0]["message"]
    )


def test_an_invalid_erp_sync_toml_skips_its_organisation_as_a_usage_error(
    mixed_synced: dict[str, Any], engine: Engine
) -> None:
    result = mixed_synced["result"]
    errors = {e["org"]: e for e in result["org_errors"]}
    assert errors["mix-badtoml"]["code"] == "org_settings"
    assert errors["mix-badtoml"]["exit_code"] == 2
    assert "sideways" in errors["mix-badtoml"]["message"]
    assert "mix-badtoml" not in by_org(result)
    assert runs_of(engine, "mix-badtoml") == []


def test_an_unknown_organisation_alone_makes_the_sync_exit_2(
    engine: Engine, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(DATA_FILES / "inbox_mixed" / "mix-good", inbox / "lonely-ghost")
    result = sync(inbox, tmp_path / "reports")
    assert result["files"] == [] and result["unknown_orgs"] == ["lonely-ghost"]
    assert result["exit_code"] == 2


# --- a failed file stops its organisation's later files ---------------------------------------

CRASH_HEADER = "erp_customer_number,name,default_currency,default_language\n"


def test_a_failed_file_stops_its_organisations_later_files_until_the_next_sync(
    engine: Engine, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    files = {
        "crash-org/a_2026-11-20.csv": "K-1,Crash Me,EUR,de\n",
        "crash-org/b_2026-11-21.csv": "K-1,Second,EUR,de\nK-2,New,EUR,de\n",
        "crash-org/c_2026-11-22.csv": "K-1,Third,EUR,de\n",
        "crash-other/customers.csv": "K-9,Other,EUR,de\n",
    }
    for name, rows in files.items():
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_text(CRASH_HEADER + rows, encoding="utf-8")
    register(engine, "crash-org", "crash-other")
    # A real database error in the first file's load: the database refuses the name.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE customer ADD CONSTRAINT crash_me CHECK (name <> 'Crash Me') NOT VALID"
            )
        )
    try:
        first = sync(inbox, tmp_path / "reports")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE customer DROP CONSTRAINT crash_me"))

    crashed = by_org(first)["crash-org"]
    assert [(Path(f["file"]).name, f["status"], f["exit_code"]) for f in crashed] == [
        ("a_2026-11-20.csv", "failed", 4),
        ("b_2026-11-21.csv", "skipped", 0),
        ("c_2026-11-22.csv", "skipped", 0),
    ]
    for later in crashed[1:]:
        assert later["run_id"] is None
        assert "earlier file a_2026-11-20.csv failed" in later["reason"]
    assert [r["status"] for r in runs_of(engine, "crash-org")] == ["failed"]
    assert customers_of(engine, "crash-org") == {}
    assert [f["status"] for f in by_org(first)["crash-other"]] == ["succeeded"]
    assert first["exit_code"] == 4
    from flows.cli.formatting import format_sync_result

    assert "crash-org: c_2026-11-22.csv: not applied: " in format_sync_result(first)

    second = sync(inbox, tmp_path / "reports")
    assert [(Path(f["file"]).name, f["status"]) for f in second["files"]] == [
        ("a_2026-11-20.csv", "succeeded"),
        ("b_2026-11-21.csv", "succeeded"),
        ("c_2026-11-22.csv", "succeeded"),
    ]
    assert customers_of(engine, "crash-org") == {"K-1": True, "K-2": True}
    with engine.connect() as conn:
        name = conn.execute(
            sa.select(customer.c.name)
            .where(customer.c.erp_customer_number == "K-1")
            .join(org, org.c.id == customer.c.org_id)
            .where(org.c.slug == "crash-org")
        ).scalar_one()
    assert name == "Third"  # applied in as-of order


# --- renamed copies, --force, erp-sync.toml ---------------------------------------------------


def test_a_renamed_copy_of_an_applied_file_is_not_applied_again(
    engine: Engine, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    folder = inbox / "ren-org"
    folder.mkdir(parents=True)
    shutil.copy2(DATA_FILES / "inbox_mixed" / "mix-good" / "customers.csv", folder / "a.csv")
    register(engine, "ren-org")
    first = sync(inbox, tmp_path / "reports")
    assert [f["status"] for f in first["files"]] == ["succeeded"]

    shutil.copy2(folder / "a.csv", folder / "b-renamed.TXT")
    second = sync(inbox, tmp_path / "reports")
    assert second["files"] == [] and second["skipped_already_applied"] == 2
    assert second["exit_code"] == 0

    forced = sync(inbox, tmp_path / "reports", force=True)
    assert [(Path(f["file"]).name, f["status"]) for f in forced["files"]] == [
        ("a.csv", "succeeded"),
        ("b-renamed.TXT", "succeeded"),
    ]
    assert len(runs_of(engine, "ren-org")) == 3


def test_erp_sync_toml_sets_the_mode_of_its_organisation_only(
    engine: Engine, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(DATA_FILES / "inbox_org_settings", inbox)
    register(engine, "full-mode", "upsert-mode")
    result = sync(inbox, tmp_path / "reports")
    assert result["exit_code"] == 0
    # files run in name order: 01-all inserts F-3, then 02-without-f3 (full mode) deactivates it
    assert [r["mode"] for r in runs_of(engine, "full-mode")] == ["full", "full"]
    assert customers_of(engine, "full-mode") == {"F-1": True, "F-2": True, "F-3": False}
    assert [r["mode"] for r in runs_of(engine, "upsert-mode")] == ["upsert", "upsert"]
    assert customers_of(engine, "upsert-mode") == {"F-1": True, "F-2": True, "F-3": True}


def test_org_settings_reject_unknown_keys_and_rates_outside_0_to_1() -> None:
    from flows.sync_flow import OrgSettingsError, apply_org_settings

    base = ImportOptions()
    assert apply_org_settings(base, {"max_error_rate": 0}, source="t").max_error_rate == 0.0
    for bad in ({"force": True}, {"max_error_rate": 1.5}, {"max_error_rate": True}, {"mode": 1}):
        with pytest.raises(OrgSettingsError):
            apply_org_settings(base, bad, source="t")


# --- the command ------------------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from flows.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_the_sync_command_prints_a_table_and_the_index_and_exits_with_the_sync_code(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(DATA_FILES / "inbox_mixed" / "mix-good", inbox / "cli-org")
    register(engine, "cli-org")
    code, out, _ = run_cli(["sync", str(inbox), "--report-dir", str(tmp_path / "r")], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["org", "file", "status", "exit", "reports"]
    assert lines[1].split()[:4] == ["cli-org", "customers.csv", "succeeded", "0"]
    assert f"index: {tmp_path / 'r' / 'index.html'}" in out

    code, out, _ = run_cli(
        ["sync", str(inbox), "--json", "--report-dir", str(tmp_path / "r")], capsys
    )
    result = json.loads(out)
    assert code == 0 and result["files"] == [] and result["skipped_already_applied"] == 1


def test_the_sync_command_refuses_a_missing_inbox_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["sync", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert "no such inbox folder" in err


def test_every_import_publishes_its_summary_and_issues_as_prefect_artifacts(
    samples_synced: dict[str, Any],
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        summary = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["import-bistro-lyon"]))
        )
        issues = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["import-bistro-lyon-issues"])
            )
        )
    assert summary and summary[0].type == "markdown"
    assert "bistro-lyon" in str(summary[0].data)
    assert issues and issues[0].type == "table"
    assert "currency" in str(issues[0].data)
