"""`erp-sync demo`, the quick start, as `make demo` runs it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.e2e.cli import CliEnv, run_cli


def test_the_demo_registers_the_sample_organisations_syncs_them_and_says_where_the_reports_are(
    db_url: str, prefect_api: str, engine: Engine, tmp_path: Path
) -> None:
    env = CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=tmp_path)
    first = run_cli(["demo", "--report-dir", str(tmp_path / "reports")], env)
    assert first.exit_code == 0, first.stderr
    index = tmp_path / "reports" / "index.html"
    assert f"open the reports: {index.resolve()}" in first.stdout
    assert index.is_file()
    with engine.connect() as conn:
        slugs = set(conn.execute(sa.text("SELECT slug FROM org")).scalars())
        statuses = dict(
            conn.execute(
                sa.text("SELECT o.slug, r.status FROM import_run r JOIN org o ON o.id = r.org_id")
            ).all()
        )
    assert slugs == {"acme-gmbh", "bistro-lyon", "nordwind"}
    assert statuses == {"acme-gmbh": "succeeded", "bistro-lyon": "partial", "nordwind": "succeeded"}

    again = run_cli(["demo", "--report-dir", str(tmp_path / "reports")], env)
    assert again.exit_code == 0, again.stderr
    assert "nothing new to import" in again.stdout
