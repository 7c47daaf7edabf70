"""The night over a Prefect work pool, end to end: a local `prefect server start`, a process work
pool, two `prefect worker start` processes, the module's PostgreSQL database, erp-sync as
subprocesses. One server, one pool and the two workers serve every test of the module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loaders.orgs import add_org
from loaders.tables import customer, import_run, org
from tests.e2e.cli import REPO, CliEnv, Result, finish, run_cli_subprocess, start_cli_subprocess
from tests.e2e.cli import subprocess_env as cli_subprocess_env

pytestmark = pytest.mark.slow

POOL = "erp-test-pool"
STALE_SECONDS = 35  # the least the settings allow: shard runs beat every 30 s


@dataclass
class Fleet:
    api: str
    env: CliEnv
    home: Path
    reports: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, name: str) -> None:
        variables = cli_subprocess_env(self.env) | {
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        log = (self.home / f"worker-{name}.log").open("ab")
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL,
             "--name", name, "--limit", "1"],
            cwd=self.home, env=variables, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()

    def stop_workers(self) -> None:
        for worker in self.workers.values():
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers.values():
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.fixture(scope="module")
def fleet(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The Prefect server, `erp-sync deploy --db-slots 1` on a process pool, workers w1 and w2."""
    from flows.serve import local_prefect_server

    home = tmp_path_factory.mktemp("fleet")
    reports = home / "reports"
    with local_prefect_server(home, startup_timeout=300) as api:  # slow on a busy machine
        env = CliEnv(
            db_url=db_url,
            prefect_api=api,
            cwd=home,
            extra={
                "PREFECT_HOME": str(home / "client-home"),
                "ERP_SYNC_REPORT_DIR": str(reports),
                "ERP_SYNC_SHARD_STALE_SECONDS": str(STALE_SECONDS),
                "ERP_SYNC_SHARD_POLL_SECONDS": "2",
                "ERP_SYNC_SYNC_CONCURRENCY": "2",
                # the test server keeps its data in SQLite, which answers 500 ("database is
                # locked") now and then on a busy machine: clients retry those too
                "PREFECT_CLIENT_RETRY_EXTRA_CODES": "500",
            },
        )
        deployed = run_cli_subprocess(
            ["deploy", "--work-pool", POOL, "--db-slots", "1", "--inbox", str(home / "inbox"),
             "--timezone", "UTC"],
            env,
        )  # fmt: skip
        assert deployed.exit_code == 0, deployed.output
        fleet = Fleet(api, env, home, reports)
        fleet.start_worker("w1")
        fleet.start_worker("w2")
        try:
            yield fleet
        finally:
            fleet.stop_workers()


@contextlib.contextmanager
def client_of(fleet: Fleet) -> Iterator[Any]:
    """A Prefect client of the fleet's server (not the session's test harness)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: fleet.api}),
        get_client(sync_client=True) as client,
    ):
        yield client


def export(path: Path, numbers: range) -> Path:
    lines = ["erp_customer_number,name,default_currency,default_language"]
    lines += [f"C{n:06d},Customer {n},EUR,en" for n in numbers]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_inbox(engine: Engine, inbox: Path, orgs: dict[str, list[int]]) -> dict[str, list[Path]]:
    """Register the organisations and write their files (rows per file), dated in order; file k
    of an organisation holds customer numbers of its own, so applied files can be told apart."""
    files: dict[str, list[Path]] = {}
    with engine.begin() as conn:
        for slug in orgs:
            add_org(conn, slug)
    for slug, rows in orgs.items():
        start = 0
        for k, count in enumerate(rows):
            name = f"export-2026-11-{k + 1:02d}.csv"
            files.setdefault(slug, []).append(
                export(inbox / slug / name, range(start, start + count))
            )
            start += count
    return files


def applied_sources(engine: Engine, slug: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(import_run.c.source)
                .join(org, org.c.id == import_run.c.org_id)
                .where(org.c.slug == slug, import_run.c.status.in_(["succeeded", "partial"]))
                .order_by(import_run.c.started_at)
            ).scalars()
        )


def customer_numbers(engine: Engine, slug: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(customer.c.erp_customer_number)
                .join(org, org.c.id == customer.c.org_id)
                .where(org.c.slug == slug)
            ).scalars()
        )


def numbers_in(path: Path) -> set[str]:
    return {line.split(",", 1)[0] for line in path.read_text().splitlines()[1:]}


def dispatch(fleet: Fleet, inbox: Path, *args: str, timeout: float = 240) -> Result:
    return run_cli_subprocess(
        ["sync", str(inbox), "--work-pool", POOL, "--json", *args], fleet.env, timeout=timeout
    )


def shard_runs(fleet: Fleet) -> list[Any]:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with client_of(fleet) as client:
        return list(
            client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["erp-sync-shard"])), limit=200
            )
        )


def slot_events(fleet: Fleet, since: datetime) -> list[tuple[datetime, str]]:
    """(when, acquired|released) of every erp-sync-db slot since `since`, oldest first."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    from flows.fleet import read_all_events

    with client_of(fleet) as client:
        events = read_all_events(
            client,
            EventFilter(
                occurred=EventOccurredFilter.model_validate(
                    {"since": since, "until": datetime.now(since.tzinfo) + timedelta(minutes=1)}
                ),
                event=EventNameFilter(prefix=["prefect.concurrency-limit."]),
            ),
        )
    return sorted(
        (e.occurred, e.event.rsplit(".", 1)[1])
        for e in events
        if e.resource.get("prefect.resource.name") == "erp-sync-db"
    )


# --- the tests --------------------------------------------------------------------------------


def test_prefect_yaml_has_the_two_deployments_of_the_night_on_a_pool() -> None:
    import yaml
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    from flows.fleet import job_variables

    raw = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    model = PrefectYamlModel.model_validate(raw)  # the schema `prefect deploy` reads it with
    fleet = [d for d in model.deployments if d.entrypoint and d.entrypoint.startswith("flows.")]
    flows = {load_flow_from_entrypoint(str(d.entrypoint)).name: d for d in fleet}
    assert set(flows) == {"erp-sync-night", "erp-sync-shard"}
    for deployment in fleet:
        assert deployment.name == "erp-sync-pool"  # the dispatch starts erp-sync-shard/<pool>
        assert deployment.work_pool is not None
        assert deployment.work_pool.job_variables == job_variables()
    assert flows["erp-sync-night"].parameters["work_pool"] == "erp-sync-pool"


def test_a_night_on_two_workers_applies_every_file_once_with_loads_one_at_a_time(
    fleet: Fleet, engine: Engine
) -> None:
    inbox = fleet.home / "inbox"
    orgs = {f"pool-org-{i}": [20, 30] for i in range(6)}
    files = make_inbox(engine, inbox, orgs)
    started = datetime.now().astimezone()

    first = dispatch(fleet, inbox, "--shards", "2")

    assert first.exit_code == 0, first.output
    night = first.json()
    assert sorted((f["org"], f["status"]) for f in night["files"]) == sorted(
        (slug, "succeeded") for slug in orgs for _ in range(2)
    )
    for slug, paths in files.items():
        assert applied_sources(engine, slug) == [str(p) for p in paths]  # each once, in order
        assert customer_numbers(engine, slug) == set().union(*(numbers_in(p) for p in paths))
    shards = night["shards"]
    assert len(shards) == 2
    assert sorted(o for s in shards for o in s["orgs"]) == sorted(orgs)
    assert {s["state"] for s in shards} == {"Completed"}
    assert {s["worker"] for s in shards} == {"w1", "w2"}  # the shards ran on both workers
    assert Path(night["index"]).is_file()

    # erp-sync-db has 1 slot: every load held it, and no two held it at once. The server stores
    # events in batches after they arrive, so wait until all 24 are there before reading them.
    deadline = time.monotonic() + 60
    events = slot_events(fleet, started)
    while len(events) < 24 and time.monotonic() < deadline:
        time.sleep(1)
        events = slot_events(fleet, started)
    assert [kind for _, kind in events] == ["acquired", "released"] * 12, events

    again = dispatch(fleet, inbox)
    assert again.exit_code == 0, again.output
    assert again.json()["files"] == []
    assert again.json()["skipped_already_applied"] == 12
    assert again.json()["shards"] == []
    for slug, paths in files.items():
        assert applied_sources(engine, slug) == [str(p) for p in paths]


def test_a_dispatch_retried_with_the_same_key_starts_no_second_shard(
    fleet: Fleet, engine: Engine
) -> None:
    inbox = fleet.home / "inbox-retry"
    files = make_inbox(engine, inbox, {"retry-a": [10], "retry-b": [10]})
    before = {r.id for r in shard_runs(fleet)}
    dispatch_id = f"night-{uuid.uuid4().hex[:8]}"
    script = (
        "import json, sys; from flows.fleet import dispatch_night; "
        "r = dispatch_night(sys.argv[1], sys.argv[2], shards=1, dispatch_id=sys.argv[3]); "
        "print(json.dumps(r))"
    )
    results = []
    for _ in range(2):  # the second call is a retry of the same dispatch
        process = subprocess.run(
            [sys.executable, "-c", script, str(inbox), POOL, dispatch_id],
            cwd=fleet.home, env=cli_subprocess_env(fleet.env), capture_output=True, text=True,
            timeout=240,
        )  # fmt: skip
        assert process.returncode == 0, process.stderr[-3000:]
        results.append(json.loads(process.stdout.strip().splitlines()[-1]))

    new_runs = [r for r in shard_runs(fleet) if r.id not in before]
    assert len(new_runs) == 1  # the retry started no second shard run
    assert new_runs[0].idempotency_key.startswith(f"{dispatch_id}:")
    first, retry = results
    assert [s["flow_run_id"] for s in first["shards"]] == [str(new_runs[0].id)]
    assert [s["flow_run_id"] for s in retry["shards"]] == [str(new_runs[0].id)]
    assert sorted(f["org"] for f in retry["files"]) == ["retry-a", "retry-b"]
    for slug, paths in files.items():
        assert applied_sources(engine, slug) == [str(p) for p in paths]


def descendants(pid: int) -> list[int]:
    """Every process below pid (the worker's flow-run process and whatever it started)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL pid and every process below it, as a machine that dies would."""
    for victim in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def test_a_worker_killed_mid_shard_leaves_whole_files_and_the_next_night_finishes(
    fleet: Fleet, engine: Engine
) -> None:
    # Redeploying updates in place: the limit grows to 4 slots (the killed run's slot stays
    # leased for a minute), the deployments stay the ones there were.
    redeployed = run_cli_subprocess(
        ["deploy", "--work-pool", POOL, "--db-slots", "4", "--inbox", str(fleet.home / "inbox")],
        fleet.env,
    )
    assert redeployed.exit_code == 0, redeployed.output
    with client_of(fleet) as client:
        assert client.read_global_concurrency_limit_by_name("erp-sync-db").limit == 4
        deployments = client.read_deployments()
    assert sorted(d.name for d in deployments) == [POOL, POOL]

    inbox = fleet.home / "inbox-kill"
    slow = "kill-slow"
    files = make_inbox(engine, inbox, {slow: [2000] * 4, "kill-quick": [10]})
    night = start_cli_subprocess(
        ["sync", str(inbox), "--work-pool", POOL, "--shards", "2", "--json"], fleet.env
    )
    deadline = time.monotonic() + 180
    while not applied_sources(engine, slow):  # the slow shard is under way
        assert night.poll() is None, finish(night, 10).output
        assert time.monotonic() < deadline, "the slow shard never applied a file"
        time.sleep(0.2)
    running = [
        r
        for r in shard_runs(fleet)
        if r.parameters.get("orgs") == [slow] and r.state_name == "Running"
    ]
    assert len(running) == 1
    victim = running[0]
    worker_name = victim.labels["prefect.worker.name"]
    engine_pid = int(str(victim.infrastructure_pid).rsplit(":", 1)[-1])
    assert engine_pid in descendants(fleet.workers[worker_name].pid)  # the shard's process
    kill_tree(fleet.workers[worker_name].pid)
    fleet.workers[worker_name].wait(timeout=10)

    killed = finish(night, timeout=STALE_SECONDS + 120)
    assert killed.exit_code == 4, killed.output
    result = killed.json()
    (gone,) = [s for s in result["shards"] if s["orgs"] == [slow]]
    assert gone["state"] == "Crashed" and "no heartbeat" in gone["failure"]
    assert {f["status"] for f in result["files"] if f["org"] == slow} == {"failed"}

    # every file either applied (all its customers there) or untouched (none of them)
    applied = set(applied_sources(engine, slow))
    assert 1 <= len(applied) < 4
    present = customer_numbers(engine, slow)
    for path in files[slow]:
        rows = numbers_in(path)
        assert rows <= present if str(path) in applied else not rows & present, path

    fleet.start_worker(worker_name)  # the worker comes back; the next night finishes the work
    finished = dispatch(fleet, inbox)
    assert finished.exit_code == 0, finished.output
    for slug, paths in files.items():
        assert applied_sources(engine, slug) == [str(p) for p in paths]
