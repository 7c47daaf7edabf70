"""Does `temp_buffers` (1GB, set per transaction by the load) pay? A 100k import with and without.

Each round takes a fresh database (cloned from a migrated template) on DATABASE_URL, adds an
organisation, and times `erp-sync import` of the base export (new customers: COPYed straight in,
only the keys are staged) and then of its variant (the re-sync: the changed customers and their
contacts are staged, compared and merged). "without" runs the same command with the load's
temp_buffers statement replaced by a no-op, so its temporary tables get PostgreSQL's default
(8MB). Rounds alternate with and without; medians are printed, with the temporary-file bytes
temporary tables wrote out of local buffers (pg_stat_io, the server's whole count: give the
benchmark a server of its own) during each import.

    DATABASE_URL=postgresql://... python -m benchmarks.temp_buffers \\
        --base /work/bench-data/base-100000.csv --variant /work/bench-data/variant-100000.csv
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
TEMPLATE = "erp_sync_bench_temp_buffers"
# The command as erp-sync runs it; "without" first makes the load's temp_buffers statement a no-op.
WITH = "from flows.cli import main; main()"
WITHOUT = "import loaders.staging as s; s._RESERVE_TEMP_BUFFERS = 'SELECT 1'; " + WITH


def _url(url: str, database: str, driver: str = "postgresql") -> str:
    parsed = sa.make_url(url).set(database=database, drivername=driver)
    return parsed.render_as_string(hide_password=False)


def make_template(url: str) -> None:
    """A database at the latest schema, cloned by every round."""
    from loaders.engine import create_db_engine
    from loaders.schema import upgrade

    with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    engine = create_db_engine(_url(url, TEMPLATE), poolclass=sa.pool.NullPool)
    upgrade(engine)
    engine.dispose()


def temp_bytes(url: str, database: str) -> int:
    """Bytes of temporary tables written out of their session's local buffers (the server's
    whole count: nothing else runs on it), from pg_stat_io (PostgreSQL 16 and later)."""
    with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(writes), 0) * 8192 FROM pg_stat_io WHERE object = 'temp relation'"
        ).fetchone()
    return int(row[0]) if row else 0


def timed_import(
    code: str, file: Path, url: str, database: str, env: dict[str, str]
) -> dict[str, Any]:
    """Wall seconds and temporary-file bytes of one `erp-sync import FILE --org bench`."""
    before = temp_bytes(url, database)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, "import", str(file), "--org", "bench", "--json", "--force"],
        env={**env, "DATABASE_URL": _url(url, database)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    time.sleep(0.6)  # the statistics collector flushes about every 500 ms
    if done.returncode not in (0, 1):
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    summary = json.loads(done.stdout)
    return {
        "wall_s": round(wall, 2),
        "temp_mb": round((temp_bytes(url, database) - before) / 2**20, 1),
        "updated": summary["customers"]["updated"],
    }


def one_round(
    variant: str, args: argparse.Namespace, url: str, env: dict[str, str]
) -> dict[str, Any]:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{TEMPLATE}"')
    try:
        subprocess.run(
            [sys.executable, "-c", WITH, "org", "add", "bench"],
            env={**env, "DATABASE_URL": _url(url, database)},
            check=True,
            capture_output=True,
        )
        code = WITH if variant == "with" else WITHOUT
        base = timed_import(code, args.base, url, database, env)
        resync = timed_import(code, args.variant, url, database, env)
    finally:
        with psycopg.connect(_url(url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(
        f"  {variant:7s} base {base['wall_s']:6.1f}s temp {base['temp_mb']:7.1f} MB | "
        f"re-sync {resync['wall_s']:6.1f}s temp {resync['temp_mb']:7.1f} MB "
        f"(updated {resync['updated']:,})",
        flush=True,
    )
    return {"variant": variant, "base": base, "resync": resync}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--variant", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating")
    args = parser.parse_args(argv)
    url = os.environ["DATABASE_URL"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(HERE.parent)
    make_template(url)
    rounds = []
    for _ in range(args.rounds):
        for variant in ("with", "without"):
            rounds.append(one_round(variant, args, url, env))
    result: dict[str, Any] = {
        "base": str(args.base),
        "variant": str(args.variant),
        "rounds": rounds,
    }
    print(f"medians of {args.rounds} rounds each:")
    for variant in ("with", "without"):
        mine = [r for r in rounds if r["variant"] == variant]
        medians = {
            step: {
                key: statistics.median(r[step][key] for r in mine) for key in ("wall_s", "temp_mb")
            }
            for step in ("base", "resync")
        }
        result[f"median_{variant}"] = medians
        print(
            f"  {variant:7s} base {medians['base']['wall_s']:.1f}s "
            f"(temp files {medians['base']['temp_mb']:.0f} MB), re-sync "
            f"{medians['resync']['wall_s']:.1f}s (temp files {medians['resync']['temp_mb']:.0f} MB)"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S%z")
    out = HERE / "results" / f"temp-buffers-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
