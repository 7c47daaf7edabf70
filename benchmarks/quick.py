"""Time erp-sync's start-up: what a user waits for on small commands, beside the import floor.

Measured with nothing configured (no DATABASE_URL, no PREFECT_API_URL), each command a real
subprocess, the measures interleaved (one of each per round) and the medians of the rounds
reported:

- floor: a process that only imports prefect, polars, pandera.polars, sqlalchemy and psycopg
- one-row import on a warm home (not the first command there)
- `org list`, `runs`, `report RUN_ID` after the first command
- first command on a fresh home (`org add`: the database created and migrated)
- the first import on a fresh home (the shared Prefect server is started), timed once
- a 10,000-customer import into an empty organisation (`benchmarks.generate --customers 10000
  --seed 7`)

Prints a table and writes benchmarks/results/quick-<timestamp>.json. `--compare PATH` times
another checkout too (e.g. the code before a change), the two alternating within each round.

    python -m benchmarks.quick [--rounds 3] [--repo PATH] [--compare PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import host

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FLOOR_IMPORTS = "import prefect, polars, pandera.polars, sqlalchemy, psycopg"
ONE_ROW = "erp_customer_number,name,default_currency,default_language\n{number},Tiny GmbH,EUR,en\n"

TEN_THOUSAND = "10,000-customer import, empty organisation"

#: measure -> (target in seconds, or a text; whether the target is relative to the floor)
TARGETS: dict[str, tuple[float, bool]] = {
    "one-row import, warm home": (1.0, True),
    "org list": (1.5, False),
    "runs": (1.5, False),
    "report": (1.5, False),
    "first command, fresh home (org add)": (15.0, False),
    "first import, fresh home (1 run)": (15.0, False),
    TEN_THOUSAND: (3.0, True),
}


class Bench:
    """Runs erp-sync commands of one checkout in a scratch folder and keeps their timings."""

    def __init__(self, repo: Path, work: Path) -> None:
        self.repo = repo
        self.work = work
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.homes: list[Path] = []
        self.has_stop = False
        self.failures: dict[str, list[str]] = {}

    def env(self, home: Path) -> dict[str, str]:
        drop = ("DATABASE_URL", "PREFECT_API_URL")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("ERP_")}
        return env | {
            "ERP_SYNC_HOME": str(home),
            "ERP_SYNC_REPORT_DIR": str(self.work / "reports"),
            "PYTHONPATH": str(self.repo),
            # code without a shared Prefect server starts Prefect's temporary one in every
            # command; on a busy machine its default 20 s to start is not always enough
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }

    def run(
        self, measure: str | None, args: list[str], home: Path, *, floor: bool = False
    ) -> str | None:
        """Run one command (timed under `measure` unless None) and return its stdout, or None
        when a timed command failed (counted under failures, not timed)."""
        argv = (
            [sys.executable, "-c", FLOOR_IMPORTS]
            if floor
            else [sys.executable, "-c", "from flows.cli import main; main()", *args]
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            argv, cwd=self.work, env=self.env(home), capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1):
            if measure is None:
                raise RuntimeError(f"{args} exited {done.returncode}:\n{done.stderr}")
            last = (done.stderr.strip().splitlines() or [""])[-1]
            self.failures.setdefault(measure, []).append(f"exit {done.returncode}: {last}")
            return None
        if measure is not None:
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            self.times.setdefault(measure, []).append(wall)
            self.cpu.setdefault(measure, []).append(cpu)
        return done.stdout

    def fresh_home(self) -> Path:
        home = self.work / f"home-{len(self.homes)}"
        self.homes.append(home)
        return home

    def stop(self, home: Path) -> None:
        if self.has_stop:
            self.run(None, ["stop"], home)


def one_row_file(folder: Path, number: int) -> Path:
    path = folder / f"one-{number}.csv"
    path.write_text(ONE_ROW.format(number=f"{number:010d}"), encoding="utf-8")
    return path


def ten_thousand_customers(work: Path) -> Path:
    path = work / "customers-10000.csv"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.generate", "--customers", "10000", "--seed", "7",
         str(path)],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    return path


def set_up(bench: Bench, big: Path) -> Path:
    """A home with organisation acme and one import done: the commands after it are "warm".

    That first import on the fresh home (the shared Prefect server starting, about 20 s) is
    timed, once: repeating it would take the whole run over two minutes.
    """
    home = bench.fresh_home()
    bench.has_stop = "stop" in (bench.run(None, ["--help"], home) or "")
    bench.run(None, ["org", "add", "acme"], home)
    bench.run(
        "first import, fresh home (1 run)",
        ["import", str(one_row_file(bench.work, 0)), "--org", "acme"],
        home,
    )
    return home


def one_round(bench: Bench, home: Path, big: Path, n: int) -> None:
    """Every measure once (but the first import on a fresh home: see `set_up`)."""
    work = bench.work
    bench.run("floor", [], home, floor=True)
    out = bench.run(
        "one-row import, warm home",
        ["import", str(one_row_file(work, n)), "--org", "acme", "--json"],
        home,
    )
    bench.run("org list", ["org", "list"], home)
    bench.run("runs", ["runs"], home)
    if out is not None:
        bench.run("report", ["report", json.loads(out)["run_id"]], home)
    bench.run(None, ["org", "add", f"big{n}"], home)
    bench.run(TEN_THOUSAND, ["import", str(big), "--org", f"big{n}", "--json"], home)
    fresh = bench.fresh_home()
    bench.run("first command, fresh home (org add)", ["org", "add", "acme"], fresh)
    bench.stop(fresh)


def measure(benches: list[Bench], rounds: int) -> None:
    """The rounds: every measure once per round, the checkouts alternating within a round."""
    big = ten_thousand_customers(benches[0].work)
    homes = [set_up(bench, big) for bench in benches]
    for n in range(1, rounds + 1):
        for bench, home in zip(benches, homes, strict=True):
            one_round(bench, home, big, n)


def summarise(bench: Bench) -> dict[str, Any]:
    floor = statistics.median(bench.times["floor"])
    rows = []
    for name, walls in bench.times.items():
        median = statistics.median(walls)
        target, relative = TARGETS.get(name, (None, False))
        limit = None if target is None else (floor + target if relative else target)
        rows.append(
            {
                "measure": name,
                "median_s": round(median, 2),
                "min_s": round(min(walls), 2),
                "max_s": round(max(walls), 2),
                "cpu_median_s": round(statistics.median(bench.cpu[name]), 2),
                "over_floor_s": round(median - floor, 2),
                "target": None
                if target is None
                else (f"floor + {target:g} s" if relative else f"{target:g} s"),
                "target_s": None if limit is None else round(limit, 2),
                "met": None if limit is None else median <= limit,
                "runs_s": [round(w, 2) for w in walls],
            }
        )
    return {"floor_median_s": round(floor, 2), "measures": rows, "failures": bench.failures}


def print_table(result: dict[str, Any]) -> None:
    print(f"floor (imports only): {result['floor_median_s']:.2f} s")
    header = f"{'measure':<45} {'median':>7} {'-floor':>7} {'cpu':>6} {'target':>16} {'met':>4}"
    print(header)
    print("-" * len(header))
    for row in result["measures"]:
        met = "" if row["met"] is None else ("yes" if row["met"] else "no")
        print(
            f"{row['measure']:<45} {row['median_s']:>6.2f}s {row['over_floor_s']:>6.2f}s "
            f"{row['cpu_median_s']:>5.2f}s {row['target'] or '':>16} {met:>4}"
        )
    for name, failures in result["failures"].items():
        print(f"{name}: {len(failures)} failed: {failures[0]}")


def machine() -> dict[str, Any]:
    return host.machine(
        load_average_at_start=list(os.getloadavg()),
        prefect_template_at_start=_prefect_template(),
    )


def _prefect_template() -> str | None:
    """The pre-migrated Prefect database new homes start from, if this machine has it (a
    checkout without that machinery ignores it: its first import migrates in place)."""
    try:
        from flows.servers import cache_dir, prefect_template
    except ImportError:
        return None
    template = prefect_template(cache_dir())
    return str(template) if template.is_file() else None


def main(argv: list[str] | None = None) -> None:
    """Run the rounds, print the table(s), write the JSON result."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quick",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians over them)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the erp-sync checkout to time")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="REPO",
        help="another checkout (e.g. the code before a change), timed alternately with --repo",
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC)
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="erp-sync-quick-"))
    repos = [args.repo.resolve()] + ([args.compare.resolve()] if args.compare else [])
    benches = []
    for index, repo in enumerate(repos):
        (work / str(index)).mkdir()
        benches.append(Bench(repo, work / str(index)))
    began = time.perf_counter()
    try:
        measure(benches, args.rounds)
    finally:
        for bench in benches:
            for home in bench.homes:
                bench.stop(home)
        shutil.rmtree(work, ignore_errors=True)
    info["load_average_at_end"] = list(os.getloadavg())
    result = {
        "measured_at": started_at.isoformat(timespec="seconds"),
        "rounds": args.rounds,
        "machine": info,
        "total_s": round(time.perf_counter() - began, 1),
        "checkouts": [
            {"repo": str(bench.repo), "commit": host.commit(bench.repo), **summarise(bench)}
            for bench in benches
        ],
    }
    for checkout in result["checkouts"]:
        print(f"\n{checkout['repo']} ({checkout['commit'] or 'not a git checkout'})")
        print_table(checkout)
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"quick-{started_at.strftime('%Y-%m-%dT%H%M%S%z')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{result['total_s']} s in all; written to {out}")


if __name__ == "__main__":
    main()
