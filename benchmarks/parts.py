"""Time the first import of a big file validated and loaded whole against in parts, alternating.

    python -m benchmarks.parts --file FILE [--rounds 2] [--home DIR]

Each run is a process of its own that imports FILE into an empty organisation of a fresh
database (cloned from a migrated template on the embedded server of --home) with
`importing.run_import` (no Prefect, no CLI start-up): its wall time is the import's alone, its
peak the process's resident maximum (VmHWM). With --steps, each run logs its steps (INFO) with
the resident memory at each, sampled every 50 ms, and says when the peak fell.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.temp_buffers import _url

TEMPLATE = "erp_sync_bench_parts"

RUN = r"""
import json, logging, sys, threading, time
from pathlib import Path

import validators.validate as v
from flows import importing
from loaders.engine import create_db_engine
from loaders.orgs import add_org

url, path, variant, steps = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
if variant.startswith("whole"):
    v.MIN_ROWS_FOR_PARTS = 10**12

def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0

samples = []  # (seconds, MB)
started = time.perf_counter()
stop = threading.Event()

def sample() -> None:
    while not stop.wait(0.05):
        samples.append((time.perf_counter() - started, rss()))

events = []
if steps:
    class Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append((round(time.perf_counter() - started, 1), rss(), record.getMessage()))
    logging.getLogger("loaders").addHandler(Steps())
    logging.getLogger("loaders").setLevel(logging.INFO)
    logging.getLogger("flows").addHandler(Steps())
    logging.getLogger("flows").setLevel(logging.INFO)

engine = create_db_engine(url)
with engine.begin() as conn:
    org = add_org(conn, "bench")
threading.Thread(target=sample, daemon=True).start()
options = importing.ImportOptions(report_dir=Path("/tmp/erp-sync-parts-reports"))
started = time.perf_counter()
result = importing.run_import(engine, importing.new_run(org, path, options))
wall = time.perf_counter() - started
stop.set()
peak_at, peak = max(samples, key=lambda s: s[1]) if samples else (0.0, 0)
with open("/proc/self/status") as status:
    hwm = next(int(l.split()[1]) // 1024 for l in status if l.startswith("VmHWM:"))
s = result.summary
print(json.dumps({
    "variant": variant, "wall_s": round(wall, 2), "peak_mb": hwm,
    "sampled_peak_mb": peak, "peak_at_s": round(peak_at, 1), "status": str(s.status),
    "inserted": s.customers.inserted, "contacts": s.contacts.inserted, "events": events,
}))
"""


def make_template(url: str) -> None:
    """A database at the latest schema, cloned by every run."""
    import sqlalchemy as sa

    from loaders.engine import create_db_engine
    from loaders.schema import upgrade

    with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    engine = create_db_engine(_url(url, TEMPLATE), poolclass=sa.pool.NullPool)
    upgrade(engine)
    engine.dispose()


def one_run(url: str, file: Path, variant: str, steps: bool) -> dict[str, Any]:
    """One import of `file` in a process of its own, into a fresh database."""
    database = f"parts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{TEMPLATE}"')
    try:
        target = _url(url, database, "postgresql+psycopg")
        done = subprocess.run(
            [sys.executable, "-c", RUN, target, str(file), variant, "1" if steps else "0"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **({"POLARS_MAX_THREADS": "1"} if variant.endswith("-t1") else {})},
        )
        if done.returncode:
            raise SystemExit(f"{variant} failed: {done.stderr.strip()[-800:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--home", type=Path, default=Path("/tmp/erp-sync-parts-home"))
    parser.add_argument("--variants", default="whole,parts")
    parser.add_argument("--steps", action="store_true")
    args = parser.parse_args()
    from loaders.embedded import start_embedded_server

    url = start_embedded_server(args.home)
    make_template(url)
    runs: dict[str, list[dict[str, Any]]] = {}
    for round_ in range(args.rounds):
        for variant in args.variants.split(","):
            result = one_run(url, args.file.resolve(), variant, args.steps)
            runs.setdefault(variant, []).append(result)
            events = result.pop("events")
            print(f"round {round_ + 1} {json.dumps(result)}", flush=True)
            for at, mb, message in events:
                print(f"    {at:7.1f}s {mb:6d} MB  {message}", flush=True)
    for variant, results in runs.items():
        walls = [r["wall_s"] for r in results]
        peaks = [r["peak_mb"] for r in results]
        print(
            f"{variant}: wall median {statistics.median(walls):.1f} s {walls}, "
            f"peak median {statistics.median(peaks):.0f} MB {peaks}"
        )


if __name__ == "__main__":
    main()
