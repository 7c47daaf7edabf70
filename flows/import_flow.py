"""The Prefect flow `import-file`: read, validate, load and report one ERP export.

Each task wraps one plain step of flows/importing.py and returns what the step returns; the
flow hands those results from task to task through `importing.run_import`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from sqlalchemy.engine import Engine

from contract import Summary
from contract.changes import ChangeOverview
from flows import importing
from flows.dbslot import database_slot, prefetch_limit
from flows.importing import (
    ExportInfo,
    ImportOptions,
    ImportResult,
    Loaded,
    Outcome,
    RawHolder,
    Rejected,
    RunContext,
)
from flows.prefect_flow import erp_flow
from flows.reading import ExportBytes, RawExport
from flows.runtime import open_database
from flows.settings import get_settings
from flows.skipping import RawPrints
from loaders.exceptions import LoaderError
from loaders.orgs import get_org
from validators import Validated


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only when the database went away: the transaction was all-or-nothing, so it is safe."""
    try:
        state.result()
    except sa.exc.OperationalError:
        return True
    except LoaderError as exc:
        return exc.transient
    except Exception:
        return False
    return False


# Large frames pass between tasks in memory: no input hashing, no result persistence.
@task(name="read", cache_policy=NONE, persist_result=False)
def read_task(ctx: RunContext, loaded: tuple[ExportBytes, ...] = ()) -> RawExport | Rejected:
    """Decode the file and split it into raw rows."""
    raw = importing.read_step(ctx, loaded)
    if isinstance(raw, RawExport):
        get_run_logger().info(
            "read %d rows (%s, delimiter %r)", raw.rows.height, raw.encoding, raw.delimiter
        )
    return raw


@task(name="skip", cache_policy=NONE, persist_result=False)
def skip_task(
    engine: Engine, ctx: RunContext, raw: RawExport, allow: bool = True
) -> tuple[RawExport, RawPrints | None]:
    """Drop the rows of the customers whose raw rows last validated with no issue."""
    raw, prints = importing.skip_step(engine, ctx, raw, allow=allow)
    if prints is not None:
        get_run_logger().info(
            "%d customers unchanged since they last validated (%d rows skipped)",
            prints.skipped.height,
            prints.skipped_rows,
        )
    return raw, prints


@task(name="validate", cache_policy=NONE, persist_result=False)
def validate_task(
    ctx: RunContext, raw: RawExport, prints: RawPrints | None = None
) -> Validated | Rejected:
    """Validate and normalise every row; refuse the file when its header or budget fails."""
    result = importing.validate_step(ctx, raw, prints)
    _log_checked(result)
    return result


def _log_checked(result: Validated | Rejected) -> None:
    """The run log's line for a validation: the file refused, or its rows' verdict."""
    logger = get_run_logger()
    if isinstance(result, Rejected):
        logger.info("the file is refused: %s", ", ".join(e.code for e in result.file_errors))
    else:
        logger.info(
            "%d rows valid, %d rejected (%d customers)",
            result.rows_valid,
            result.rows_rejected,
            result.customers_rejected,
        )


def _log_loaded(loaded: Loaded) -> None:
    """The run log's line for a load: its status and what it did to customers and contacts."""
    c = loaded.counts
    get_run_logger().info(
        "%s: customers +%d ~%d =%d, deactivated %d, reactivated %d; contacts +%d ~%d =%d",
        loaded.status,
        c.customers_inserted,
        c.customers_updated,
        c.customers_unchanged,
        c.customers_deactivated,
        c.customers_reactivated,
        c.contacts_inserted,
        c.contacts_updated,
        c.contacts_unchanged,
    )


@task(
    name="load",
    cache_policy=NONE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_transient,
)
def load_task(
    engine: Engine,
    ctx: RunContext,
    export: ExportInfo,
    validated: Validated,
    prints: RawPrints | None = None,
) -> Loaded:
    """Apply the rows in one transaction, under the organisation's lock, holding a slot of the
    Prefect global concurrency limit erp-sync-db (when it exists) while the transaction is open."""
    with database_slot():
        loaded = importing.load_step(engine, ctx, export, validated, prints)
    _log_loaded(loaded)
    return loaded


@task(name="validate-and-load", cache_policy=NONE, persist_result=False)
def pipeline_task(
    engine: Engine,
    ctx: RunContext,
    export: ExportInfo,
    holder: RawHolder,
    prints: RawPrints | None = None,
) -> tuple[Validated | Rejected, Loaded | None]:
    """A big file: validate it in parts and load part k while part k + 1 validates, in one
    transaction, holding a slot of erp-sync-db (when it exists) while the transaction is open.
    Not retried: the raw rows are dropped part by part as they are validated."""
    with database_slot():
        checked, loaded = importing.pipeline_step(engine, ctx, export, holder, prints)
    _log_checked(checked)
    if loaded is not None:
        _log_loaded(loaded)
    return checked, loaded


@task(name="report", cache_policy=NONE, persist_result=False)
def report_task(engine: Engine | None, outcome: Outcome) -> ImportResult:
    """Write the run's reports and publish its summary as Prefect artifacts."""
    result = importing.report_step(engine, outcome)
    if result.reports_error is not None:
        get_run_logger().info("reports not written: %s", result.reports_error.reason)
    _publish_artifacts(result.summary, importing.change_overview(engine, result.summary))
    return result


TASKS = importing.Steps(
    read=read_task,
    validate=validate_task,
    load=load_task,
    report=report_task,
    skip=skip_task,
    pipeline=pipeline_task,
)


def _publish_artifacts(summary: Summary, changes: ChangeOverview | None = None) -> None:
    rows, customers = summary.rows, summary.customers
    changed = []
    if changes is not None and changes.counts:
        changed = [
            "",
            "Changed per field (every change: `erp-sync changes " + summary.run_id + "`):",
            "",
            "| entity | field | changed |",
            "|---|---|---|",
            *(f"| {c.entity} | {c.field} | {c.changes} |" for c in changes.counts),
        ]
    markdown = "\n".join(
        [
            f"### {summary.org}: {Path(summary.source).name} — **{summary.status}**",
            "",
            "| rows read | valid | rejected | inserted | updated | unchanged | deactivated |",
            "|---|---|---|---|---|---|---|",
            f"| {rows.read} | {rows.valid} | {rows.rejected} | {customers.inserted} "
            f"| {customers.updated} | {customers.unchanged} | {customers.deactivated} |",
            *changed,
            "",
            f"Reports: `{summary.report_dir}`",
        ]
    )
    key = f"import-{summary.org}".lower().replace("_", "-")
    create_markdown_artifact(markdown=markdown, key=key, description="erp-sync import summary")
    table = [{"code": code, "count": n} for code, n in summary.issues_by_code.items()]
    if table:
        create_table_artifact(table=table, key=f"{key}-issues", description="issues by code")


@erp_flow(name="import-file", validate_parameters=False, log_prints=False)
def import_file(path: str, org: str, options: ImportOptions | None = None) -> ImportResult:
    """Import one ERP export for one organisation: the whole file, or nothing."""
    options = options or ImportOptions()
    settings = get_settings()
    prefetch_limit()  # whether erp-sync-db exists, known by the load step
    engine = open_database(settings).engine
    with engine.connect() as conn:
        organisation = get_org(conn, org)
    ctx = importing.new_run(organisation, Path(path), options, settings.as_of_pattern)
    result = importing.run_import(engine, ctx, TASKS)
    get_run_logger().info("run %s finished: %s", result.summary.run_id, result.summary.status)
    return result
