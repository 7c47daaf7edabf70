"""Run the import steps (without Prefect) on a CSV text, for integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from flows import importing
from flows.importing import ImportOptions
from loaders.orgs import Organisation, add_org


def make_org(engine: Engine, slug: str) -> Organisation:
    """Register (or fetch) an organisation."""
    with engine.begin() as conn:
        return add_org(conn, slug)


def run_import(
    engine: Engine,
    org: Organisation,
    tmp_path: Path,
    text: str,
    *,
    name: str = "export.csv",
    encoding: str = "utf-8",
    **options: Any,
) -> dict[str, Any]:
    """Write text to a file and import it the way the flow does, returning the summary."""
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    opts = ImportOptions(report_dir=tmp_path / "reports", **options)
    ctx = importing.new_run(org, path, opts)
    return importing.run_import(engine, ctx).summary.to_json_dict()
