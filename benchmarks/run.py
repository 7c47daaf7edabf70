"""Time `erp-sync import` on the 1M-customer export: first import, re-sync, --force rerun.

The copy floor is what the first import is held against: the file's normalised rows COPYed
straight into the migrated tables (every index and foreign key in place) in one transaction,
measured in the same run (`copy_floor`).

Every figure is the wall time of the real command (a subprocess, as a user runs it) on the
embedded server, with its peak memory from wait4. The fixed start-up cost (Prefect's temporary
server, the embedded database) is measured on a one-row file in the same run and subtracted to
give the net figures. Results go to benchmarks/results/<timestamp>.json and print as a table.

    python -m benchmarks.run [--customers 1000000] [--data benchmarks/data]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import host

KEY_COLUMN = "erp_customer_number"
HERE = Path(__file__).resolve().parent
ONE_ROW = (
    "erp_customer_number,name,default_currency,default_language,contact_email\n"
    "0000000001,Tiny GmbH,EUR,de-DE,tiny@example.org\n"
)


@dataclass
class Measure:
    """One timed command."""

    name: str
    wall_s: float
    peak_rss_mb: float
    exit_code: int
    summary: dict[str, Any]


def erp_sync() -> list[str]:
    """The console script next to this interpreter (the project's .venv)."""
    script = Path(sys.executable).with_name("erp-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]


def timed_run(name: str, args: list[str], env: dict[str, str]) -> Measure:
    """Run erp-sync with args; wall time and the peak RSS of the process tree it waited for."""
    started = time.perf_counter()
    proc = subprocess.Popen([*erp_sync(), *args], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    summary = json.loads(out) if out.strip()[:1] in (b"{", b"[") else {}
    measure = Measure(
        name, round(wall, 2), round(usage.ru_maxrss / 1024, 1), proc.returncode, summary
    )
    print(
        f"  {name}: {measure.wall_s:.1f}s, peak {measure.peak_rss_mb:.0f} MB, exit {proc.returncode}"
    )
    return measure


def normalised_rows(base: Path) -> tuple[Any, Any]:
    """The file's rows as the loader would write them: last row per customer, last per
    customer and email, rejected customers left out (the validators' output)."""
    from flows.reading import read_export
    from validators import resolve_header, validate_rows

    raw = read_export(base)
    validated = validate_rows(raw.rows, resolve_header(raw.header))
    return validated.customers, validated.contacts


def copy_floor(base: Path, home: Path) -> float:
    """Seconds to COPY the file's normalised rows into the migrated tables, nothing else.

    A fresh database at the latest schema (every index, constraint and foreign key in
    place), ids made on the client beforehand; the figure is one transaction: COPY the
    customers, COPY their contacts, commit. What an import does beyond this is overhead.
    """
    import psycopg
    import sqlalchemy as sa

    from loaders.embedded import start_embedded_server
    from loaders.engine import create_db_engine
    from loaders.fingerprint import fingerprint_customers
    from loaders.orgs import add_org
    from loaders.schema import upgrade
    from loaders.staging import copy_frame
    from loaders.tables import customer, customer_contact
    from loaders.upsert import new_contact_rows, new_customer_rows

    customers, contacts = normalised_rows(base)
    customers = customers.join(fingerprint_customers(customers, contacts), on=KEY_COLUMN)
    url = start_embedded_server(home)
    admin = sa.make_url(url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS copy_floor WITH (FORCE)")
        conn.execute("CREATE DATABASE copy_floor")
    engine = create_db_engine(
        sa.make_url(url).set(database="copy_floor").render_as_string(hide_password=False)
    )
    try:
        upgrade(engine)
        with engine.begin() as conn:
            org_id = add_org(conn, "floor").id
        customer_rows = new_customer_rows(org_id, customers.drop("_line"))
        contact_rows = new_contact_rows(org_id, customer_rows, contacts.drop("_line"))
        del customers, contacts
        started = time.perf_counter()
        with engine.begin() as conn:
            copy_frame(conn, customer, customer_rows, customer_rows.columns)
            half = time.perf_counter() - started
            copy_frame(conn, customer_contact, contact_rows, contact_rows.columns)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    print(
        f"  copy floor: {customer_rows.height:,} customers and {contact_rows.height:,} "
        f"contacts in {seconds:.1f}s (customers {half:.1f}s)"
    )
    return round(seconds, 2)


def ensure_files(data: Path, customers: int) -> tuple[Path, Path]:
    """Generate the base export and its re-sync variant once (seeded: same bytes every time)."""
    data.mkdir(parents=True, exist_ok=True)
    base, variant = data / f"base-{customers}.csv", data / f"variant-{customers}.csv"
    common = [sys.executable, "-m", "benchmarks.generate"]
    if not base.exists():
        subprocess.run(
            [*common, str(base), "--customers", str(customers), "--seed", "42"], check=True
        )
    if not variant.exists():
        subprocess.run(
            [*common, str(variant), "--customers", str(customers), "--seed", "7",
             "--variant-of-seed", "42", "--changed", "0.10", "--new", "0.05"],
            check=True,
        )  # fmt: skip
    return base, variant


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return host.machine(
        "unknown", memory_gb=host.memory_gb(), load_average_at_start=os.getloadavg()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--no-revert", action="store_true", help="do not time a revert")
    args = parser.parse_args()

    base, variant = ensure_files(args.data, args.customers)
    home = args.data / "home"
    shutil.rmtree(home, ignore_errors=True)  # an empty database every time
    tiny = args.data / "one-row.csv"
    tiny.write_text(ONE_ROW)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"ERP_SYNC_HOME": str(home), "ERP_SYNC_REPORT_DIR": str(args.data / "reports")}

    print(f"benchmark on {base.name} ({base.stat().st_size / 1e6:.0f} MB)")
    subprocess.run(
        [*erp_sync(), "org", "add", "bench"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        [*erp_sync(), "org", "add", "tiny"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    startup_runs = [
        timed_run(
            f"one-row import #{i}", ["import", str(tiny), "--org", "tiny", "--force", "--json"], env
        )
        for i in (1, 2)
    ]
    startup = min(m.wall_s for m in startup_runs)
    # Most of the start-up is Prefect's temporary server; with a Prefect server already running
    # (as under `erp-sync serve` or a team's own server) a command does not pay for it.
    from flows.serve import local_prefect_server

    # a busy machine takes minutes to start a Prefect server
    with local_prefect_server(args.data / "prefect-home", startup_timeout=600) as url:
        served = timed_run(
            "one-row import, Prefect server running",
            ["import", str(tiny), "--org", "tiny", "--force", "--json"],
            env | {"PREFECT_API_URL": url},
        )
    # In a process of its own: a child forked from a parent holding the floor's frames would
    # report the parent's resident memory as its own peak (Linux keeps the high-water mark of
    # the forked memory across exec).
    from loaders.embedded import start_embedded_server

    start_embedded_server(home)  # held by this process, as the floor held it before
    floor_out = subprocess.run(
            [sys.executable, "-c", "import sys; from benchmarks.run import copy_floor; "
             "print(copy_floor(*map(__import__('pathlib').Path, sys.argv[1:])))",
             str(base), str(home)],
            env=env, check=True, stdout=subprocess.PIPE, text=True,
        ).stdout.strip().splitlines()  # fmt: skip
    print(*floor_out[:-1], sep="\n")
    floor = float(floor_out[-1])
    runs = [
        timed_run("first import of the 1M file", ["import", str(base), "--org", "bench", "--json"], env),
        timed_run("re-sync, 10% changed and 5% new", ["import", str(variant), "--org", "bench", "--json"], env),
        timed_run("--force rerun of the same file", ["import", str(variant), "--org", "bench", "--force", "--json"], env),
    ]  # fmt: skip
    resync_id = runs[1].summary.get("run_id")
    if resync_id and "--no-revert" not in sys.argv:
        # Undo the re-sync (its 5% new customers deleted, 10% changed put back).
        runs.append(timed_run("revert of the re-sync", ["revert", resync_id, "--json"], env))
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "file": {"name": base.name, "bytes": base.stat().st_size},
        "startup_s": startup,
        "copy_floor_s": floor,
        "runs": [
            asdict(m) | {"net_s": round(m.wall_s - startup, 2)}
            for m in [*startup_runs, served, *runs]
        ],
    }
    out = HERE / "results" / f"{result['measured_at'].replace(':', '')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(
        f"\n| measure | wall | net of start-up ({startup:.1f} s) | peak memory | customers ins/upd/same |"
    )
    print("|---|---|---|---|---|")
    for m in [*startup_runs, served, *runs]:
        summary = m.summary[0] if isinstance(m.summary, list) else m.summary  # revert: a list
        c = summary.get("customers", {})
        print(
            f"| {m.name} | {m.wall_s:.1f} s | {m.wall_s - startup:.1f} s | {m.peak_rss_mb:.0f} MB "
            f"| {c.get('inserted')}/{c.get('updated')}/{c.get('unchanged')} |"
        )
    first, resync, force = (m.wall_s - startup for m in runs[:3])  # a revert may follow
    print(
        f"\ncopy floor {floor:.1f} s; first import net {first:.1f} s = {first / floor:.2f} x floor "
        f"(target 1.25); re-sync net {resync:.1f} s (target 15); --force net {force:.1f} s "
        f"(target 8); peak {max(m.peak_rss_mb for m in runs):.0f} MB (target 1536)"
    )
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
