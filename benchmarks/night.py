"""The plan for a night of 10,000 organisations: measured per-file costs, then a simulation.

**Measure** (`--measure`; 49 minutes at a load average of 11-20 on 2 cores, several times less
on an idle machine): real `erp-sync import` commands (subprocesses, as `benchmarks/run.py` runs
them) on the embedded database of a fresh ERP_SYNC_HOME, on generated exports of 1k, 10k, 100k and 1M customers (`benchmarks.generate`; base seed 42 and
its re-sync variant, 10% changed and 5% new, as `make bench` makes them):

- the fixed start-up: a one-row import on a warm home (wall time of the command), and how much
  of it is the `import-file` flow run itself (the rest is the process: imports, connecting);
- per size, the first import of the base file into an empty organisation and the re-sync of
  the variant, split by the Prefect task runs of the `import-file` flow run (their start and end
  times, read back from the home's Prefect server): **read + validate** (flow start to the load
  task's start: sha256, read, validate, header drift; no database slot), **load** (the load task:
  the one transaction; the step that holds an `erp-sync-db` slot) and **report** (after it);
  1k, 10k and 100k three times each (medians), 1M once;
- the database's capacity: 2 and 4 imports of the 100k files started at once (each into its own
  organisation) against the one database, their load tasks' overlap and the rows per second
  the database sustained while they ran, against one load alone.

Saved as benchmarks/results/night-<timestamp>.json.

**Simulate** (`--from PATH`, or the newest saved night-*.json, in seconds): a seeded night of
10,000 organisations (customers per organisation log-normal, median 1,000, sigma 1.8, clipped
to 20..2,000,000), their file bytes from the measured bytes per customer, packed into shards
by bytes (`pack_shards`: largest first into the lightest shard; an organisation is never split;
twice as many shards as workers, as the dispatch does), W workers each running one shard at a
time and its organisations one after the other (a flow-run start-up per shard), S database
slots shared by every load (first come, first served), and the loads that hold slots sharing
the database's measured throughput (`Capacity`). Prints when the night would finish and where
the time goes.

    python -m benchmarks.night --measure [--files DIR] [--data DIR]
    python -m benchmarks.night [--from benchmarks/results/night-....json]
        [--workers 1,4,16,64] [--slots 4,16] [--orgs 10000] [--seed 12]
        [--workload resync|first] [--db measured|per-slot]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import host

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIZES = (1_000, 10_000, 100_000, 1_000_000)
ROUNDS = 3
CONCURRENCY = (2, 4)
ONE_ROW = (
    "erp_customer_number,name,default_currency,default_language,contact_email\n"
    "0000000001,Tiny GmbH,EUR,de-DE,tiny@example.org\n"
)
KINDS = ("first", "resync")


# --- measuring ---------------------------------------------------------------------------------


def concurrency_size(sizes: Sequence[int]) -> int:
    """The size the concurrent imports use: 100k, else the largest but one."""
    return 100_000 if 100_000 in sizes else sorted(sizes)[max(0, len(sizes) - 2)]


def export_files(size: int, sources: Sequence[Path], data: Path) -> tuple[Path, Path]:
    """The base export of `size` customers (seed 42) and its re-sync variant (seed 7: 10%
    changed, 5% new), found in one of `sources` or generated once into `data`."""
    names = (f"base-{size}.csv", f"variant-{size}.csv")
    for folder in sources:
        if all((folder / name).is_file() for name in names):
            return folder / names[0], folder / names[1]
    data.mkdir(parents=True, exist_ok=True)
    base, variant = data / names[0], data / names[1]
    generate = [sys.executable, "-m", "benchmarks.generate", "--customers", str(size)]
    if not base.exists():
        subprocess.run([*generate, str(base), "--seed", "42"], cwd=REPO, check=True)
    if not variant.exists():
        subprocess.run(
            [*generate, str(variant), "--seed", "7", "--variant-of-seed", "42",
             "--changed", "0.10", "--new", "0.05"],
            cwd=REPO, check=True,
        )  # fmt: skip
    return base, variant


@dataclass
class Command:
    """One timed import command and, once read back from Prefect, its flow's step times."""

    label: str
    kind: str  # "startup", "first" or "resync"
    size: int  # customers the generator made (1 for the one-row file)
    org: str
    file_bytes: int
    group: str = ""  # commands started together share a group ("" when alone)
    wall_s: float = 0.0
    exit_code: int = 0
    rows_read: int = 0
    started: float = 0.0  # epoch seconds, for the concurrent groups
    load_average: float = 0.0  # the machine's 1-minute load average when it started
    steps: dict[str, float] = field(default_factory=dict)


class Bench:
    """erp-sync commands of this checkout on one fresh home (its embedded PostgreSQL and its
    shared Prefect server), the way a user runs them."""

    def __init__(self, work: Path, progress: Path | None = None) -> None:
        self.work = work
        self.home = work / "home"
        self.orgs = 0
        self.commands: list[Command] = []
        self.progress = progress  # the records so far, rewritten after every command

    def done(self, commands: list[Command]) -> None:
        """Read back the step times of commands that finished and save what is measured."""
        read_steps(self.home, commands)
        if self.progress is not None:
            records = {"commands": [asdict(c) for c in self.commands]}
            self.progress.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")

    def env(self) -> dict[str, str]:
        drop = ("DATABASE_URL", "PREFECT_API_URL")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("ERP_")}
        return env | {
            "ERP_SYNC_HOME": str(self.home),
            "ERP_SYNC_REPORT_DIR": str(self.work / "reports"),
            "PYTHONPATH": str(REPO),
        }

    def argv(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-c", "from flows.cli import main; main()", *args]

    def untimed(self, *args: str) -> str:
        done = subprocess.run(
            self.argv(args), cwd=self.work, env=self.env(), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"erp-sync {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def new_org(self) -> str:
        self.orgs += 1
        slug = f"night{self.orgs:03d}"
        self.untimed("org", "add", slug)
        return slug

    def start(self, command: Command, path: Path) -> subprocess.Popen[str]:
        command.started = time.time()
        command.load_average = round(os.getloadavg()[0], 2)
        return subprocess.Popen(
            self.argv(["import", str(path), "--org", command.org, "--json"]),
            cwd=self.work,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, command: Command, proc: subprocess.Popen[str]) -> None:
        out, err = proc.communicate()
        command.wall_s = round(time.time() - command.started, 3)
        command.exit_code = proc.returncode
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{command.label} exited {proc.returncode}: {err[-2000:]}")
        command.rows_read = int(json.loads(out)["rows"]["read"])
        self.commands.append(command)
        print(f"  {command.label}: {command.wall_s:.1f} s", flush=True)

    def timed(self, command: Command, path: Path) -> Command:
        self.finish(command, self.start(command, path))
        self.done([command])
        return command

    def together(self, commands: list[Command], paths: list[Path]) -> None:
        """Start the imports at once and wait for them all."""
        procs = [self.start(c, p) for c, p in zip(commands, paths, strict=True)]
        for command, proc in zip(commands, procs, strict=True):
            self.finish(command, proc)
        self.done(commands)

    def stop(self) -> None:
        subprocess.run(self.argv(["stop"]), cwd=self.work, env=self.env(), capture_output=True)


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _all(api: str, what: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record of a Prefect /filter endpoint, page by page."""
    found: list[dict[str, Any]] = []
    while True:
        page = _post(f"{api}/{what}/filter", {**body, "limit": 200, "offset": len(found)})
        found += page
        if len(page) < 200:
            return found


def step_times(
    commands: Sequence[Command], flow_runs: list[dict[str, Any]], task_runs: list[dict[str, Any]]
) -> list[Command]:
    """Fill each command's steps from its `import-file` flow run: the run of its organisation
    that started while the command ran. Returns the commands whose runs are not complete yet."""
    tasks: dict[str, dict[str, tuple[float, float]]] = {}
    for task in task_runs:
        if task.get("start_time") and task.get("end_time"):
            step = str(task["name"]).rsplit("-", 1)[0]
            span = (_epoch(task["start_time"]), _epoch(task["end_time"]))
            tasks.setdefault(str(task["flow_run_id"]), {})[step] = span
    missing = []
    for command in commands:
        runs = [
            r
            for r in flow_runs
            if (r.get("parameters") or {}).get("org") == command.org
            and r.get("start_time")
            and r.get("end_time")
            and command.started - 1 <= _epoch(r["start_time"]) <= command.started + command.wall_s
        ]
        run = min(runs, key=lambda r: _epoch(r["start_time"]), default=None)
        t = tasks.get(str(run["id"]), {}) if run is not None else {}
        if "validate-and-load" in t:
            # a big file, validated and loaded in parts in one task (which holds the slot)
            t = {**t, "validate": t["validate-and-load"], "load": t["validate-and-load"]}
        if run is None or not {"read", "validate", "load", "report"} <= set(t):
            missing.append(command)
            continue
        start, end = _epoch(run["start_time"]), _epoch(run["end_time"])
        command.steps = {
            "flow_s": round(end - start, 3),
            "read_validate_s": round(t["load"][0] - start, 3),  # no slot
            "load_s": round(t["load"][1] - t["load"][0], 3),  # the slot
            "report_s": round(end - t["load"][1], 3),
            "read_s": round(t["read"][1] - t["read"][0], 3),
            "validate_s": round(t["validate"][1] - t["validate"][0], 3),
            "load_start": t["load"][0],
            "load_end": t["load"][1],
        }
    return missing


def read_steps(home: Path, commands: list[Command], patience_s: float = 60.0) -> None:
    """Fill the commands' steps from the task runs on the home's Prefect server (a run's last
    task runs may arrive a moment after its command exited: wait up to patience_s)."""
    state = json.loads((home / "servers" / "prefect.json").read_text())
    api = str(state["url"]).rstrip("/")
    orgs = [c.org for c in commands]
    deadline = time.monotonic() + patience_s
    while True:
        flow_runs = [
            r for r in _all(api, "flow_runs", {}) if (r.get("parameters") or {}).get("org") in orgs
        ]
        task_runs = _all(
            api, "task_runs", {"flow_runs": {"id": {"any_": [r["id"] for r in flow_runs]}}}
        )
        missing = step_times(commands, flow_runs, task_runs)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    for command in missing:
        print(f"  no complete task runs for {command.label} ({command.org})", file=sys.stderr)


def measure(
    sources: Sequence[Path],
    data: Path,
    work: Path,
    sizes: Sequence[int] = SIZES,
    rounds: int = ROUNDS,
    progress: Path | None = None,
) -> dict[str, Any]:
    """Run every measured command and return the raw records (see the module's docstring):
    the smaller sizes `rounds` times (interleaved), the largest once, and the concurrent
    imports on the 100k files (the largest but one size when there is no 100k)."""
    together = concurrency_size(sizes)
    files = {size: export_files(size, sources, data) for size in sizes}
    bench = Bench(work, progress)
    one_row = work / "one-row.csv"
    one_row.write_text(ONE_ROW, encoding="utf-8")
    print("set-up: the home's database and Prefect server (untimed)", flush=True)
    bench.untimed("import", str(one_row), "--org", bench.new_org(), "--json")
    began = time.perf_counter()
    try:
        for n in range(1, rounds + 1):
            bench.timed(Command(f"one-row import #{n}", "startup", 1, bench.new_org(),
                                one_row.stat().st_size), one_row)  # fmt: skip
            for size in sizes[:-1]:
                org = bench.new_org()
                for kind, path in zip(KINDS, files[size], strict=True):
                    label = f"{kind} {size:,} #{n}"
                    bench.timed(Command(label, kind, size, org, path.stat().st_size), path)
        size = sizes[-1]
        org = bench.new_org()
        for kind, path in zip(KINDS, files[size], strict=True):
            bench.timed(Command(f"{kind} {size:,}", kind, size, org, path.stat().st_size), path)
        for k in CONCURRENCY:
            orgs = [bench.new_org() for _ in range(k)]
            for kind, path in zip(KINDS, files[together], strict=True):
                group = f"{k} x {kind} {together:,}"
                commands = [
                    Command(f"{group} [{i}]", kind, together, org, path.stat().st_size, group)
                    for i, org in enumerate(orgs)
                ]
                bench.together(commands, [path] * k)
    finally:
        bench.stop()
    return {
        "measure_s": round(time.perf_counter() - began, 1),
        "sizes": list(sizes),
        "concurrency_size": together,
        "files": {
            str(size): {
                kind: {"name": p.name, "bytes": p.stat().st_size}
                for kind, p in zip(KINDS, files[size], strict=True)
            }
            for size in sizes
        },
        "commands": [asdict(c) for c in bench.commands],
    }


# --- what the measurements say -----------------------------------------------------------------


@dataclass(frozen=True)
class Affine:
    """A step's seconds for x units (bytes, rows): fixed_s + x / rate."""

    fixed_s: float
    rate: float

    def seconds(self, x: float) -> float:
        return self.fixed_s + x / self.rate


def fit(points: Sequence[tuple[float, float]]) -> Affine:
    """The line through (units, seconds) that minimises the squared *relative* errors (so a
    1k file weighs as much as a 1M one); the fixed part is never negative."""
    weights = [1 / (t * t) for _, t in points]
    sw = sum(weights)
    sx = sum(w * x for w, (x, _) in zip(weights, points, strict=True))
    st = sum(w * t for w, (_, t) in zip(weights, points, strict=True))
    sxx = sum(w * x * x for w, (x, _) in zip(weights, points, strict=True))
    sxt = sum(w * x * t for w, (x, t) in zip(weights, points, strict=True))
    det = sw * sxx - sx * sx
    slope = (sw * sxt - sx * st) / det if det else 0.0
    fixed = (st - slope * sx) / sw if det else 0.0
    if fixed < 0 or slope <= 0:
        fixed, slope = 0.0, sxt / sxx
    return Affine(round(fixed, 4), round(1 / slope, 1))


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def _union_s(intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the intervals."""
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    """The per-file costs, the fitted model and the database's capacity, from the raw records."""
    commands = [c for c in raw["commands"] if c["steps"]]
    together = raw.get("concurrency_size", 100_000)
    alone = [c for c in commands if not c["group"]]
    one_row = [c for c in alone if c["kind"] == "startup"]
    walls = [c["wall_s"] for c in one_row]
    flows = [c["steps"]["flow_s"] for c in one_row]
    summary: dict[str, Any] = {
        "startup": {
            "one_row_wall_s": _median(walls),
            "one_row_flow_s": _median(flows),
            "process_s": _median([w - f for w, f in zip(walls, flows, strict=True)]),
            "runs": len(one_row),
        }
    }
    for kind in KINDS:
        sizes = []
        for size in raw.get("sizes", SIZES):
            runs = [c for c in alone if c["kind"] == kind and c["size"] == size]
            if not runs:
                continue
            med = {
                step: _median([c["steps"][step] for c in runs])
                for step in (
                    "flow_s",
                    "read_validate_s",
                    "load_s",
                    "report_s",
                    "read_s",
                    "validate_s",
                )
            }
            file_bytes, rows = runs[0]["file_bytes"], runs[0]["rows_read"]
            sizes.append(
                {
                    "customers": size,
                    "bytes": file_bytes,
                    "rows": rows,
                    "runs": len(runs),
                    "wall_s": _median([c["wall_s"] for c in runs]),
                    **med,
                    "read_validate_mb_per_s": round(file_bytes / 1e6 / med["read_validate_s"], 2),
                    "load_rows_per_s": round(rows / med["load_s"]),
                    "load_customers_per_s": round(size / med["load_s"]),
                }
            )
        largest = sizes[-1]
        capacity = [{"loads": 1, "rows_per_s": None, "multiplier": 1.0}]
        single = [c for c in alone if c["kind"] == kind and c["size"] == together]
        if single:
            one = single[0]["rows_read"] / statistics.median(c["steps"]["load_s"] for c in single)
            capacity[0]["rows_per_s"] = round(one)
            for k in CONCURRENCY:
                group = [c for c in commands if c["group"] == f"{k} x {kind} {together:,}"]
                if len(group) != k:
                    continue
                spans = [(c["steps"]["load_start"], c["steps"]["load_end"]) for c in group]
                union = _union_s(spans)
                rows = sum(c["rows_read"] for c in group)
                capacity.append(
                    {
                        "loads": k,
                        "rows_per_s": round(rows / union),
                        "multiplier": round(rows / union / one, 3),
                        "load_s_each": [round(b - a, 2) for a, b in spans],
                        "busy_s": round(union, 2),
                        "mean_overlap": round(sum(b - a for a, b in spans) / union, 2),
                        "wall_s_each": [c["wall_s"] for c in group],
                    }
                )
        summary[kind] = {
            "sizes": sizes,
            "bytes_per_customer": round(largest["bytes"] / largest["customers"], 1),
            "rows_per_customer": round(largest["rows"] / largest["customers"], 4),
            "fit": {
                "read_validate_bytes": asdict(
                    fit([(s["bytes"], s["read_validate_s"]) for s in sizes])
                ),
                "load_rows": asdict(fit([(s["rows"], s["load_s"]) for s in sizes])),
                "report_rows": asdict(fit([(s["rows"], s["report_s"]) for s in sizes])),
            },
            "capacity": capacity,
            "capacity_customers_each": together,
        }
    return summary


# --- the model of a night (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """The database's throughput with k loads at once, as a multiple of one load alone:
    measured points (k, multiple), linear between them, flat after the last one (a database
    on this machine's two cores does not get faster with more loads)."""

    points: tuple[tuple[int, float], ...] = ((1, 1.0),)

    def multiplier(self, k: int) -> float:
        points = sorted(self.points)
        if k <= points[0][0]:
            return points[0][1] * k / points[0][0]
        for (k0, m0), (k1, m1) in itertools.pairwise(points):
            if k <= k1:
                return m0 + (m1 - m0) * (k - k0) / (k1 - k0)
        return points[-1][1]


PER_SLOT = "per-slot"
"""A database with a core per slot (not this machine's): every load keeps its single speed."""


@dataclass(frozen=True)
class Model:
    """What one import costs, from the measurements (seconds; rates per second)."""

    startup_s: float  # a worker's flow-run process, once per shard
    read_validate: Affine  # of the file's bytes; holds no slot
    load: Affine  # of its rows; holds a slot; the work of one load alone
    report: Affine  # of its rows; holds no slot
    bytes_per_customer: float
    rows_per_customer: float
    capacity: Capacity | None = None  # None: per-slot (every load at its single speed)

    def multiplier(self, k: int) -> float:
        if self.capacity is None:
            return float(k)
        return min(float(k), self.capacity.multiplier(k))  # never faster than k loads alone

    def costs(self, customers: int) -> tuple[float, float, float]:
        """(read + validate, load alone, report) seconds of one organisation's file."""
        size = customers * self.bytes_per_customer
        rows = customers * self.rows_per_customer
        return self.read_validate.seconds(size), self.load.seconds(rows), self.report.seconds(rows)


def model_from(summary: dict[str, Any], workload: str, db: str) -> Model:
    part = summary[workload]
    points = tuple((c["loads"], c["multiplier"]) for c in part["capacity"])
    return Model(
        startup_s=summary["startup"]["process_s"],
        read_validate=Affine(**part["fit"]["read_validate_bytes"]),
        load=Affine(**part["fit"]["load_rows"]),
        report=Affine(**part["fit"]["report_rows"]),
        bytes_per_customer=part["bytes_per_customer"],
        rows_per_customer=part["rows_per_customer"],
        capacity=None if db == PER_SLOT else Capacity(points),
    )


@dataclass(frozen=True)
class Distribution:
    """Customers per organisation: log-normal around `median`, clipped to [low, high]."""

    median: int = 1_000
    sigma: float = 1.8
    low: int = 20
    high: int = 2_000_000

    def sample(self, orgs: int, seed: int) -> list[int]:
        rng = random.Random(seed)
        mu = math.log(self.median)
        return [
            min(self.high, max(self.low, round(rng.lognormvariate(mu, self.sigma))))
            for _ in range(orgs)
        ]


def pack_shards(sizes: Sequence[int], shards: int) -> list[list[int]]:
    """Organisations (their sizes, by index) packed into at most `shards` shards of about equal
    total size: largest first, each into the lightest shard so far (LPT). An organisation is
    never split; one larger than a fair share ends up alone. Returns lists of indexes, the
    heaviest shard first (the order a dispatch hands them out: the long ones start first)."""
    if shards < 1:
        raise ValueError("at least one shard")
    count = min(shards, len(sizes))
    heap = [(0, i) for i in range(count)]
    members: list[list[int]] = [[] for _ in range(count)]
    totals = [0] * count
    for org in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        total, index = heapq.heappop(heap)
        members[index].append(org)
        totals[index] = total + sizes[org]
        heapq.heappush(heap, (totals[index], index))
    order = sorted(range(count), key=lambda i: (-totals[i], i))
    return [members[i] for i in order if members[i]]


@dataclass
class Night:
    """What a simulated night did (seconds)."""

    workers: int
    slots: int
    shards: int
    finish_s: float
    startup_s: float = 0.0  # worker-seconds in flow-run start-up
    no_slot_s: float = 0.0  # worker-seconds reading, validating, reporting
    slot_wait_s: float = 0.0  # worker-seconds waiting for a database slot
    load_s: float = 0.0  # worker-seconds loading (holding a slot)
    idle_s: float = 0.0  # worker-seconds with no shard left to take
    db_busy_s: float = 0.0  # seconds with at least one load running
    db_load_slot_s: float = 0.0  # slot-seconds held (sum over loads)
    max_waiting: int = 0  # most loads waiting for a slot at once
    largest_customers: int = 0
    largest_alone_s: float = 0.0  # the largest organisation's own time: a floor for the night
    largest_done_s: float = 0.0  # when its load finished
    db_floor_s: float = 0.0  # all loads at the database's best throughput with S slots
    worker_floor_s: float = 0.0  # all work spread perfectly over W workers, loads alone

    @property
    def bottleneck(self) -> str:
        floors = {
            "the largest organisation": self.largest_alone_s,
            "the database slots": self.db_floor_s,
            "the workers": self.worker_floor_s,
        }
        return max(floors, key=floors.__getitem__)


def simulate(model: Model, customers: Sequence[int], workers: int, slots: int,
             shards_per_worker: int = 2) -> Night:  # fmt: skip
    """A discrete-event simulation of one night: shards handed to free workers heaviest first;
    a worker starts a flow run per shard (model.startup_s), then imports the shard's
    organisations one after the other: read + validate (no slot), wait for a slot (first come,
    first served), load (the k loads holding slots share the database: each progresses at
    multiplier(k) / k of its speed alone, processor sharing), report, next organisation."""
    if workers < 1 or slots < 1:
        raise ValueError("at least one worker and one slot")
    costs = [model.costs(c) for c in customers]
    sizes = [round(c * model.bytes_per_customer) for c in customers]
    shards = deque(pack_shards(sizes, workers * shards_per_worker))
    night = Night(workers, slots, len(shards), 0.0)
    events: list[tuple[float, int, int, str]] = []  # (time, seq, worker, what)
    seq = 0

    def at(when: float, worker: int, what: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, worker, what))

    queue: deque[int] = deque()  # organisations (by worker) waiting for a slot
    asked: dict[int, float] = {}  # worker -> when it asked for a slot
    active: list[tuple[float, int]] = []  # (virtual finish, worker) of the running loads
    virtual = 0.0  # work (seconds of a load alone) every running load has received so far
    current: dict[int, deque[int]] = {w: deque() for w in range(workers)}
    doing: dict[int, int] = {}  # worker -> organisation
    largest = max(range(len(customers)), key=customers.__getitem__, default=-1)
    now = 0.0

    def start_load(worker: int) -> None:
        org = doing[worker]
        night.slot_wait_s += now - asked.pop(worker)
        heapq.heappush(active, (virtual + costs[org][1], worker))

    for worker in range(workers):
        at(0.0, worker, "free")
    while events or active:
        speed = model.multiplier(len(active)) / len(active) if active else 0.0
        next_load = now + (active[0][0] - virtual) / speed if active else math.inf
        next_event = events[0][0] if events else math.inf
        if active:
            night.db_busy_s += min(next_load, next_event) - now
            night.db_load_slot_s += (min(next_load, next_event) - now) * len(active)
        if next_load <= next_event:
            virtual, worker = heapq.heappop(active)
            now = next_load
            if doing[worker] == largest:
                night.largest_done_s = now
            if queue:
                start_load(queue.popleft())
            at(now + costs[doing[worker]][2], worker, "next")
            continue
        virtual += (next_event - now) * speed
        now, _, worker, what = heapq.heappop(events)
        if what == "free":
            if not shards:
                continue
            current[worker] = deque(shards.popleft())
            at(now + model.startup_s, worker, "next")
        elif what == "next":
            if not current[worker]:
                at(now, worker, "free")
                continue
            org = current[worker].popleft()
            doing[worker] = org
            at(now + costs[org][0], worker, "slot")
        elif what == "slot":
            asked[worker] = now
            if len(active) < slots:
                start_load(worker)
            else:
                queue.append(worker)
                night.max_waiting = max(night.max_waiting, len(queue))
    night.finish_s = now
    night.startup_s = night.shards * model.startup_s
    night.no_slot_s = sum(c[0] + c[2] for c in costs)
    night.load_s = night.db_load_slot_s
    night.idle_s = max(
        0.0,
        workers * now - night.startup_s - night.no_slot_s - night.slot_wait_s - night.load_s,
    )
    best = max(model.multiplier(k) for k in range(1, slots + 1))
    work = sum(c[1] for c in costs)
    night.db_floor_s = work / best
    night.worker_floor_s = (night.startup_s + night.no_slot_s + work) / workers
    if largest >= 0:
        night.largest_customers = customers[largest]
        night.largest_alone_s = model.startup_s + sum(costs[largest])
    return night


# --- the command -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return host.machine(load_average=[round(x, 2) for x in os.getloadavg()])


def _clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}"


def print_costs(summary: dict[str, Any]) -> None:
    s = summary["startup"]
    print(
        f"\nstart-up: one-row import {s['one_row_wall_s']:.2f} s (its flow run "
        f"{s['one_row_flow_s']:.2f} s, the process {s['process_s']:.2f} s), median of {s['runs']}"
    )
    for kind in KINDS:
        part = summary[kind]
        print(
            f"\n{kind} import | wall | read+validate (no slot) | load (slot) | report | MB/s r+v | rows/s load"
        )
        for z in part["sizes"]:
            print(
                f"{z['customers']:>9,} customers ({z['bytes'] / 1e6:.1f} MB, {z['rows']:,} rows, "
                f"x{z['runs']}) | {z['wall_s']:.2f} s | {z['read_validate_s']:.2f} s | "
                f"{z['load_s']:.2f} s | {z['report_s']:.2f} s | "
                f"{z['read_validate_mb_per_s']:.2f} | {z['load_rows_per_s']:,}"
            )
        f = part["fit"]
        print(
            "fit: read+validate {0[fixed_s]:.2f} s + bytes / {1:.2f} MB/s; load {2[fixed_s]:.2f} s "
            "+ rows / {2[rate]:,.0f}/s; report {3[fixed_s]:.2f} s + rows / {3[rate]:,.0f}/s".format(
                f["read_validate_bytes"], f["read_validate_bytes"]["rate"] / 1e6, f["load_rows"],
                f["report_rows"],
            )
        )  # fmt: skip
        for c in part["capacity"][1:]:
            print(
                f"{c['loads']} loads at once ({part['capacity_customers_each']:,} customers each): "
                f"{c['rows_per_s']:,} rows/s together = {c['multiplier']:.2f} x one load alone "
                f"({part['capacity'][0]['rows_per_s']:,} rows/s); loads {c['load_s_each']} s, "
                f"mean overlap {c['mean_overlap']}"
            )


def print_night(model: Model, customers: list[int], workers: list[int], slots: list[int],
                db: str) -> list[Night]:  # fmt: skip
    ordered = sorted(customers)
    total = sum(customers)

    def pct(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    print(
        f"\n{len(customers):,} organisations, {total:,} customers "
        f"({total * model.bytes_per_customer / 1e9:.1f} GB): median {pct(0.5):,}, "
        f"p90 {pct(0.9):,}, p99 {pct(0.99):,}, largest {ordered[-1]:,}; "
        f"{sum(c >= 100_000 for c in customers)} with 100k or more"
    )
    print(f"database: {'a core per slot (modelled)' if db == PER_SLOT else 'as measured here'}")
    print(
        "| workers | slots | shards | night ends | bottleneck | floors: largest org / DB / "
        "workers | DB busy | workers' time: r+v+report / load / waiting for a slot / start-up "
        "/ idle |"
    )
    print("|---|---|---|---|---|---|---|---|")
    nights = []
    for s in slots:
        for w in workers:
            night = simulate(model, customers, w, s)
            nights.append(night)
            whole = w * night.finish_s or 1.0
            print(
                f"| {w} | {s} | {night.shards} | {_clock(night.finish_s)} | {night.bottleneck} | "
                f"{_clock(night.largest_alone_s)} / {_clock(night.db_floor_s)} / "
                f"{_clock(night.worker_floor_s)} | {night.db_busy_s / (night.finish_s or 1):.0%} | "
                f"{night.no_slot_s / whole:.0%} / {night.load_s / whole:.0%} / "
                f"{night.slot_wait_s / whole:.0%} / {night.startup_s / whole:.0%} / "
                f"{night.idle_s / whole:.0%} |"
            )
    return nights


def newest_result() -> Path | None:
    found = sorted((HERE / "results").glob("night-*.json"))
    return found[-1] if found else None


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.night",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--measure",
        action="store_true",
        help="measure this build (49 min on a busy 2-core machine)",
    )
    source.add_argument("--from", dest="source", type=Path, metavar="JSON",
                        help="a saved night-*.json (default: the newest in benchmarks/results)")  # fmt: skip
    parser.add_argument("--files", type=Path, action="append", default=[],
                        help="a folder with base-N.csv and variant-N.csv to use (repeatable)")  # fmt: skip
    parser.add_argument(
        "--data", type=Path, default=HERE / "data", help="where missing files are generated"
    )
    parser.add_argument("--sizes", type=_ints, default=list(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=_ints, default=[1, 4, 16, 64])
    parser.add_argument("--slots", type=_ints, default=[4, 16])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workload", choices=KINDS, default="resync",
                        help="each organisation's file is a re-sync (default) or a first import")  # fmt: skip
    parser.add_argument("--db", choices=("measured", PER_SLOT), default="measured",
                        help="the database's capacity as measured here, or a core per slot")  # fmt: skip
    args = parser.parse_args(argv)

    if args.measure:
        started = datetime.now(UTC)
        info = machine()
        commit = host.commit(REPO)  # the code that runs, before any later commit
        work = Path(tempfile.mkdtemp(prefix="erp-sync-night-"))
        try:
            raw = measure(
                [*args.files, args.data],
                args.data,
                work,
                args.sizes,
                args.rounds,
                HERE / "results" / f"night-{started.strftime('%Y-%m-%dT%H%M%S%z')}.json.tmp",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result = {
            "measured_at": started.isoformat(timespec="seconds"),
            "commit": commit,
            "machine": info,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            **raw,
        }
        out = HERE / "results" / f"night-{started.strftime('%Y-%m-%dT%H%M%S%z')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")  # raw, first
        out.with_name(out.name + ".tmp").unlink(missing_ok=True)
        result["summary"] = summarise(result)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nmeasured in {raw['measure_s']} s; written to {out}")
    else:
        path = args.source or newest_result()
        if path is None or not path.is_file():
            print("no measurements: run `python -m benchmarks.night --measure` first, or pass "
                  "--from benchmarks/results/night-....json", file=sys.stderr)  # fmt: skip
            return 2
        result = json.loads(path.read_text(encoding="utf-8"))
        result["summary"] = summarise(result)
        print(
            f"measurements of {result.get('measured_at')} (commit {result.get('commit')}): {path}"
        )
    print_costs(result["summary"])
    model = model_from(result["summary"], args.workload, args.db)
    customers = Distribution().sample(args.orgs, args.seed)
    print_night(model, customers, args.workers, args.slots, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
