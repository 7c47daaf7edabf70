"""Commands that only read the database import no data frame library and no Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("prefect", "polars", "pandera", "pandas")
PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr))
from flows.cli import main
main({args!r})
"""


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--json"],
        ["org", "list"],
        ["org", "add", "lightweight"],
        ["report", "00000000"],
        ["db", "current"],
    ],
    ids=" ".join,
)
def test_a_command_that_reads_runs_or_organisations_imports_no_prefect_polars_or_pandera(
    args: list[str], db_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERP_SYNC_", "PREFECT_"))}
    env |= {"DATABASE_URL": db_url, "PYTHONPATH": str(REPO), "ERP_SYNC_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY, args=args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 2), done.stderr  # report of an unknown run: exit 2
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


UNNEEDED = ("hypothesis", "fastapi", "pyarrow", "email_validator", "phonenumbers")


def test_a_one_row_import_imports_none_of_what_it_does_not_need(
    db_url: str, prefect_api: str, tmp_path: Path
) -> None:
    """No hypothesis (pandera's data synthesis), FastAPI (Prefect's parameter encoder), pyarrow
    (large files), email-validator or phonenumbers (files with emails or phones)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERP_SYNC_", "PREFECT_"))}
    env |= {
        "DATABASE_URL": db_url,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": str(REPO),
        "ERP_SYNC_HOME": str(tmp_path),
        "ERP_SYNC_REPORT_DIR": str(tmp_path / "reports"),
    }
    one = tmp_path / "one.csv"
    one.write_text(
        "erp_customer_number,name,default_currency,default_language\n0000000001,Tiny,EUR,en\n",
        encoding="utf-8",
    )
    for args in (["org", "add", "lean"], ["import", str(one), "--org", "lean", "--json"]):
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(heavy=UNNEEDED, args=args)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
