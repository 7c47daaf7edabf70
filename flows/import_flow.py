"""The Prefect flow `import-file`: read, validate, load and report one ERP export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from flows import importing
from flows.importing import ImportOptions, RunState
from flows.reading import RawExport
from flows.runtime import open_database
from flows.settings import get_settings
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
def read_task(state: RunState) -> RawExport | None:
    """Decode the file and split it into raw rows."""
    raw = importing.read_step(state)
    if raw is not None:
        get_run_logger().info(
            "read %d rows (%s, delimiter %r)", raw.rows.height, raw.encoding, raw.delimiter
        )
    return raw


@task(name="validate", cache_policy=NONE, persist_result=False)
def validate_task(state: RunState, raw: RawExport) -> Validated | None:
    """Validate and normalise every row; reject the file when its header or budget fails."""
    result = importing.validate_step(state, raw)
    logger = get_run_logger()
    if result is None:
        logger.info("validation ended the run: %s", state.status)
        return None
    validated = result
    logger.info(
        "%d rows valid, %d rejected (%d customers)",
        validated.rows_valid,
        validated.rows_rejected,
        validated.customers_rejected,
    )
    return validated


@task(
    name="load",
    cache_policy=NONE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_transient,
)
def load_task(state: RunState, validated: Validated | None) -> None:
    """Apply the rows in one transaction, under the organisation's lock."""
    engine = open_database(get_settings()).engine
    importing.load_step(engine, state, validated)
    c = state.counts
    get_run_logger().info(
        "%s: customers +%d ~%d =%d, deactivated %d, reactivated %d; contacts +%d ~%d =%d",
        state.status,
        c.customers_inserted,
        c.customers_updated,
        c.customers_unchanged,
        c.customers_deactivated,
        c.customers_reactivated,
        c.contacts_inserted,
        c.contacts_updated,
        c.contacts_unchanged,
    )


@task(name="report", cache_policy=NONE, persist_result=False)
def report_task(state: RunState) -> dict[str, Any]:
    """Write the run's reports and publish its summary as Prefect artifacts."""
    summary = importing.report_step(state)
    _publish_artifacts(summary)
    return summary


def _publish_artifacts(summary: dict[str, Any]) -> None:
    rows, customers = summary["rows"], summary["customers"]
    markdown = "\n".join(
        [
            f"### {summary['org']}: {Path(summary['source']).name} — **{summary['status']}**",
            "",
            "| rows read | valid | rejected | inserted | updated | unchanged | deactivated |",
            "|---|---|---|---|---|---|---|",
            f"| {rows['read']} | {rows['valid']} | {rows['rejected']} | {customers['inserted']} "
            f"| {customers['updated']} | {customers['unchanged']} | {customers['deactivated']} |",
            "",
            f"Reports: `{summary['report_dir']}`",
        ]
    )
    key = f"import-{summary['org']}".lower().replace("_", "-")
    create_markdown_artifact(markdown=markdown, key=key, description="erp-sync import summary")
    table = [{"code": code, "count": n} for code, n in summary["issues_by_code"].items()]
    if table:
        create_table_artifact(table=table, key=f"{key}-issues", description="issues by code")


@flow(name="import-file", validate_parameters=False, log_prints=False)
def import_file(path: str, org: str, options: ImportOptions | None = None) -> dict[str, Any]:
    """Import one ERP export for one organisation: the whole file, or nothing."""
    options = options or ImportOptions()
    logger = get_run_logger()
    database = open_database(get_settings())
    with database.engine.connect() as conn:
        organisation = get_org(conn, org)
    state = importing.new_run(organisation, Path(path), options)
    summary = importing.run_steps(
        database.engine,
        state,
        read=read_task,
        validate=validate_task,
        load=load_task,
        report=report_task,
    )
    logger.info("run %s finished: %s", summary["run_id"], summary["status"])
    return summary
