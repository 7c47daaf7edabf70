"""The nightly sync fanned out over a Prefect work pool: the shard flow, the dispatch, deploy.

- `erp-sync-shard` imports the new files of some organisations of an inbox exactly as the
  one-process sync does for them (it plans them again, so a file applied meanwhile is skipped),
  and returns its per-file results as plain JSON, also kept as an artifact of its run so that a
  dispatch on any machine can read them from the Prefect server.
- `erp-sync-night` (the dispatch) plans the night, packs the organisations into shards by input
  bytes (flows/shards.py), starts one run of the deployment `erp-sync-shard/<POOL>` per shard
  with the idempotency key `<dispatch run id>:<shard key>`, waits for them all, and returns the
  night's result as `nightly-sync` does. A shard whose run crashed, failed or was cancelled, or
  whose heartbeats stopped (its worker was killed), counts its organisations' files as failed.
- `deploy()` registers both deployments on a work pool and the global concurrency limit
  `erp-sync-db`. Their entrypoints are module paths (`flows.fleet:...`), so a worker needs
  erp-sync installed, not the repository or any particular working folder.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import flow, get_run_logger, task
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import (
    ConcurrencyLimitConfig,
    ConcurrencyLimitStrategy,
    FlowRun,
    StateType,
)
from prefect.context import FlowRunContext, TaskRunContext
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron
from sqlalchemy.engine import Engine

from flows.dbslot import DB_LIMIT, WORKER_ENV, forget_limit
from flows.importing import ImportOptions, write_missing_reports
from flows.runtime import open_database
from flows.settings import get_settings
from flows.shards import Shard, pack_shards, shard_count
from flows.sync_flow import (
    SyncPlan,
    _run_batches,
    failed_file,
    plan_sync,
    prune_history_after_sync,
    reports_recovered,
    sync_exit_code,
    write_reports_index,
)

SHARD_FLOW = "erp-sync-shard"
NIGHT_FLOW = "erp-sync-night"
RESULT_ARTIFACT = "erp-sync-shard-result"
HEARTBEAT_SECONDS = 30
"""How often a shard run tells the server it is alive (Prefect's minimum)."""
DEFAULT_DB_SLOTS = 4
TERMINAL_FAILURES = {
    StateType.FAILED,
    StateType.CRASHED,
    StateType.CANCELLED,
    StateType.CANCELLING,
}


class FleetError(Exception):
    """The fleet cannot be used as asked (no server, no deployment): a one-line usage error."""


def job_variables() -> dict[str, Any]:
    """The job variables of both deployments: mark the run as on a worker, send heartbeats."""
    return {
        "env": {
            WORKER_ENV: "1",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
        }
    }


# --- the shard --------------------------------------------------------------------------------


@flow(name=SHARD_FLOW, log_prints=False)
def sync_shard(inbox: str, orgs: list[str], options: ImportOptions | None = None) -> dict[str, Any]:
    """Import the new files of these organisations' folders of INBOX, as `nightly-sync` does."""
    settings = get_settings()
    options = options or ImportOptions(report_dir=settings.report_dir)
    root = Path(inbox)
    if not root.is_dir():
        raise FileNotFoundError(f"no such inbox folder: {root}")
    engine = open_database(settings).engine
    logger = get_run_logger()
    plan = plan_sync(engine, root, options, settings.as_of_pattern, only=orgs)
    for error in plan.org_errors:
        logger.error("%s: skipped: %s", error["org"], error["message"])
    logger.info(
        "shard of %d organisation(s): %d file(s) to import",
        len(orgs),
        sum(len(b.files) for b in plan.batches),
    )
    files = _run_batches(plan.batches, settings.sync_concurrency, logger)
    result = {
        "orgs": orgs,
        "files": files,
        "org_errors": plan.org_errors,
        "skipped_already_applied": plan.skipped_already_applied,
        "exit_code": sync_exit_code(files, plan.org_errors),
    }
    Artifact(
        type=RESULT_ARTIFACT, description="erp-sync shard: per-file results", data=result
    ).create()
    return result


# --- the dispatch -----------------------------------------------------------------------------


@dataclass
class ShardRun:
    """One shard of a night and its deployment run."""

    shard: Shard
    flow_run_id: uuid.UUID
    state: str = "SCHEDULED"
    worker: str | None = None
    result: dict[str, Any] | None = None
    failure: str | None = None


def _shard_plan_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"erp-sync-night-shards-{parameters['dispatch_id']}"


@task(
    name="pack-shards",
    cache_key_fn=_shard_plan_key,
    cache_expiration=timedelta(days=2),
    persist_result=True,
    result_serializer="json",
)
def pack_night(dispatch_id: str, sizes: list[tuple[str, int]], shards: int) -> list[list[str]]:
    """The night's shards (organisation slugs), remembered per dispatch run: a retried dispatch
    gets the same shards, hence the same idempotency keys, whatever was applied meanwhile."""
    return [list(s.orgs) for s in pack_shards(sizes, shards)]


def _batch_bytes(plan: SyncPlan) -> list[tuple[str, int]]:
    def size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    return [
        (b.slug, sum(size(p) + (size(b.contacts[p]) if p in b.contacts else 0) for p in b.files))
        for b in plan.batches
    ]


@flow(name=NIGHT_FLOW, log_prints=False)
def dispatch_night(
    inbox: str,
    work_pool: str,
    options: ImportOptions | None = None,
    shards: int | None = None,
    dispatch_id: str | None = None,
) -> dict[str, Any]:
    """The night over a work pool: one run of erp-sync-shard/<work_pool> per shard, then wait."""
    settings = get_settings()
    options = options or ImportOptions(report_dir=settings.report_dir)
    options = options.model_copy(update={"report_dir": options.report_dir.expanduser().resolve()})
    root = Path(inbox).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no such inbox folder: {root}")
    if dispatch_id is None:
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        dispatch_id = str(context.flow_run.id)
    engine = open_database(settings).engine
    return _dispatch(engine, root, work_pool, options, shards, dispatch_id)


def _dispatch(
    engine: Engine,
    root: Path,
    work_pool: str,
    options: ImportOptions,
    shards: int | None,
    dispatch_id: str,
) -> dict[str, Any]:
    logger = get_run_logger()
    settings = get_settings()
    started_at = datetime.now(UTC)
    plan = plan_sync(engine, root, options, settings.as_of_pattern)
    for error in plan.org_errors:
        logger.error("%s: skipped: %s", error["org"], error["message"])
    recovered = [
        rewritten
        for org_id in plan.orgs.values()
        for rewritten in write_missing_reports(engine, org_id, options.report_dir)
    ]
    sizes = _batch_bytes(plan)
    count = shard_count(len(sizes), _online_workers(work_pool), shards)
    packed = pack_night(dispatch_id, sizes, count)
    by_org = dict(sizes)
    night = [Shard(tuple(orgs), sum(by_org.get(o, 0) for o in orgs)) for orgs in packed]
    logger.info(
        "%d organisation(s), %d file(s) to import in %d shard(s) on work pool %s",
        len(plan.batches),
        sum(len(b.files) for b in plan.batches),
        len(night),
        work_pool,
    )
    runs = _start_shards(night, root, work_pool, options, dispatch_id)
    _wait_for(runs, settings.shard_stale_seconds, settings.shard_poll_seconds)

    files: list[dict[str, Any]] = []
    org_errors = list(plan.org_errors)
    planned = {b.slug: b for b in plan.batches}
    for run in runs:
        if run.result is not None:
            files += run.result["files"]
            org_errors += [e for e in run.result["org_errors"] if e not in org_errors]
            continue
        logger.error("shard %s (%s): %s", run.shard.key, run.flow_run_id, run.failure)
        for org in run.shard.orgs:
            batch = planned.get(org)
            for path in batch.files if batch is not None else []:
                files.append(failed_file(org, path))
    pruned = prune_history_after_sync(engine, settings.history_days)
    if pruned is not None and pruned.runs:
        logger.info("pruned the change history of %d run(s)", pruned.runs)
    index = write_reports_index(engine, options.report_dir)
    exit_code = sync_exit_code(files, org_errors)
    logger.info("night finished with exit code %d; runs index %s", exit_code, index)
    return {
        "inbox": str(root),
        "work_pool": work_pool,
        "dispatch_id": dispatch_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "exit_code": exit_code,
        "files": files,
        "skipped_already_applied": plan.skipped_already_applied,
        "unknown_orgs": plan.unknown_orgs,
        "org_errors": org_errors,
        "shards": [
            {
                "key": r.shard.key,
                "orgs": list(r.shard.orgs),
                "bytes": r.shard.bytes,
                "flow_run_id": str(r.flow_run_id),
                "state": r.state,
                "worker": r.worker,
                "failure": r.failure,
            }
            for r in runs
        ],
        "reports_recovered": reports_recovered(recovered),
        "index": str(index) if index is not None else None,
    }


def _online_workers(work_pool: str) -> int:
    from prefect.client.schemas.objects import WorkerStatus

    with get_client(sync_client=True) as client:
        workers = client.read_workers_for_work_pool(work_pool)
    return sum(1 for w in workers if w.status == WorkerStatus.ONLINE)


def _start_shards(
    night: list[Shard], root: Path, work_pool: str, options: ImportOptions, dispatch_id: str
) -> list[ShardRun]:
    from prefect.deployments import run_deployment

    runs = []
    for shard in night:
        flow_run = cast(
            FlowRun,
            run_deployment(
                f"{SHARD_FLOW}/{work_pool}",
                parameters={
                    "inbox": str(root),
                    "orgs": list(shard.orgs),
                    "options": options.model_dump(mode="json"),
                },
                timeout=0,
                idempotency_key=f"{dispatch_id}:{shard.key}",
                tags=["erp-sync"],
            ),
        )
        runs.append(ShardRun(shard, flow_run.id))
    return runs


def _wait_for(runs: list[ShardRun], stale_seconds: float, poll_seconds: float) -> None:
    """Poll the shard runs until each one completed or is given up (its results read or not)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    logger = get_run_logger()
    waiting = {r.flow_run_id: r for r in runs}
    last_note = time.monotonic()
    with get_client(sync_client=True) as client:
        while waiting:
            flow_runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(waiting))),
                limit=len(waiting),
            )
            live: list[FlowRun] = []
            for flow_run in flow_runs:
                run = waiting[flow_run.id]
                state = flow_run.state
                run.state = (state.name if state is not None else None) or "?"
                worker = (flow_run.labels or {}).get("prefect.worker.name")
                run.worker = str(worker) if worker is not None else None
                kind = state.type if state is not None else None
                if kind == StateType.COMPLETED:
                    run.result = _shard_result(client, flow_run.id)
                    if run.result is None:
                        run.failure = "completed without its results artifact"
                    del waiting[flow_run.id]
                elif kind in TERMINAL_FAILURES:
                    run.failure = f"the shard run ended {run.state}"
                    del waiting[flow_run.id]
                elif kind in (StateType.RUNNING, StateType.PENDING):
                    live.append(flow_run)
            for flow_run in _stale(client, live, stale_seconds):
                run = waiting.pop(flow_run.id)
                run.failure = (
                    f"no heartbeat for {stale_seconds:g}s while {run.state} "
                    f"(worker {run.worker or '?'} gone): given up, marked Crashed"
                )
                run.state = "Crashed"
                _mark_crashed(client, flow_run.id, run.failure)
            if not waiting:
                break
            if time.monotonic() - last_note > 60:
                logger.info("waiting for %d shard run(s)", len(waiting))
                last_note = time.monotonic()
            time.sleep(poll_seconds)


def _shard_result(client: Any, flow_run_id: uuid.UUID) -> dict[str, Any] | None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterType,
        FlowRunFilter,
        FlowRunFilterId,
    )

    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=[RESULT_ARTIFACT])),
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        limit=1,
    )
    if not artifacts:
        return None
    data = artifacts[0].data
    result: dict[str, Any] = json.loads(data) if isinstance(data, str) else data
    return result


def _stale(client: Any, live: list[FlowRun], stale_seconds: float) -> list[FlowRun]:
    """The running shard runs with no heartbeat for stale_seconds (counted from their last
    heartbeat, else from when they started running), and the pending ones (a worker took them)
    that did not start running within twice that."""
    if not live:
        return []
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    now = datetime.now(UTC)
    ids = {f"prefect.flow-run.{r.id}": r for r in live}
    query = EventFilter(
        occurred=EventOccurredFilter.model_validate(
            {"since": now - timedelta(seconds=stale_seconds), "until": now}
        ),
        event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
        resource=EventResourceFilter(id=list(ids)),
    )
    alive = {event.resource.id for event in read_all_events(client, query)}
    stale = []
    for resource_id, flow_run in ids.items():
        if resource_id in alive:
            continue
        state = flow_run.state
        if state is None:
            continue
        # Pending: a worker took the run and is starting its process (slow on a busy machine)
        allowed = 2 * stale_seconds if state.type == StateType.PENDING else stale_seconds
        if (now - state.timestamp).total_seconds() > allowed:
            stale.append(flow_run)
    return stale


def read_all_events(client: Any, query: Any) -> list[Any]:
    """Every event the filter matches, page by page (the API gives at most 50 at a time)."""
    page = client.read_events(filter=query, limit=50)
    events = list(page.events)
    while page.next_page is not None and page.events:
        page = client.read_events_page(str(page.next_page))
        events += page.events
    return events


def _mark_crashed(client: Any, flow_run_id: uuid.UUID, message: str) -> None:
    from prefect.states import Crashed

    client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)


# --- deploy -----------------------------------------------------------------------------------


def _schedule(cron: str, timezone: str | None) -> Any:
    from flows.serve import local_timezone

    timezone = timezone or local_timezone()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise FleetError(
            f"unknown time zone {timezone!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    try:
        return Cron(cron, timezone=timezone)
    except ValueError as exc:
        raise FleetError(f"invalid cron expression {cron!r}: {exc}") from None


def build_deployments(
    work_pool: str,
    cron: str,
    timezone: str | None,
    inbox: Path,
    report_dir: Path,
) -> tuple[RunnerDeployment, RunnerDeployment]:
    """erp-sync-night/<POOL> (on the schedule) and erp-sync-shard/<POOL> (started by the former)."""
    schedule = _schedule(cron, timezone)
    variables = job_variables()
    night = dispatch_night.to_deployment(
        name=work_pool,
        schedules=[schedule],
        parameters={
            "inbox": str(inbox.expanduser().resolve()),
            "work_pool": work_pool,
            "options": {"report_dir": str(report_dir.expanduser().resolve())},
        },
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        description="erp-sync: the nightly sync, fanned out as shard runs on the work pool.",
        tags=["erp-sync"],
        job_variables=variables,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    shard = sync_shard.to_deployment(
        name=work_pool,
        description="erp-sync: import the new files of some organisations (one shard of a night).",
        tags=["erp-sync"],
        job_variables=variables,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast(RunnerDeployment, night), cast(RunnerDeployment, shard)


def deploy(
    work_pool: str,
    *,
    cron: str,
    timezone: str | None,
    inbox: Path,
    report_dir: Path,
    db_slots: int = DEFAULT_DB_SLOTS,
) -> list[str]:
    """Register the deployments and the erp-sync-db limit (create or update); say what was done."""
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
    )
    from prefect.exceptions import ObjectNotFound

    if db_slots < 1:
        raise FleetError("--db-slots must be at least 1")
    night, shard = build_deployments(work_pool, cron, timezone, inbox, report_dir)
    done = []
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(work_pool)
            done.append(f"work pool {work_pool} ({pool.type})")
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=work_pool, type="process"))
            done.append(f"work pool {work_pool} (process): created")
        try:
            client.read_global_concurrency_limit_by_name(DB_LIMIT)
        except ObjectNotFound:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=DB_LIMIT, limit=db_slots)
            )
        else:
            client.update_global_concurrency_limit(
                DB_LIMIT, GlobalConcurrencyLimitUpdate(limit=db_slots, active=True)
            )
        done.append(f"global concurrency limit {DB_LIMIT}: {db_slots} slot(s)")
    forget_limit()
    shard.apply(work_pool_name=work_pool)
    done.append(f"deployment {SHARD_FLOW}/{work_pool}")
    night.apply(work_pool_name=work_pool)
    done.append(f"deployment {NIGHT_FLOW}/{work_pool}: {cron} ({timezone or 'local time'})")
    return done


def check_shard_deployment(work_pool: str) -> None:
    """Raise FleetError when `erp-sync deploy --work-pool POOL` was never run on this server."""
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(f"{SHARD_FLOW}/{work_pool}")
        except ObjectNotFound:
            raise FleetError(
                f"no deployment {SHARD_FLOW}/{work_pool} on the Prefect server: "
                f"run `erp-sync deploy --work-pool {work_pool}` first"
            ) from None
