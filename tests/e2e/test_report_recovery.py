"""Reports that could not be written after the commit are not lost (CONTRACT.md sections 2, 3, 5).

A run's report files are written after its transaction commits, from memory; everything they
hold is also recorded in that transaction. When the folder cannot be written (read-only, not a
directory, a full disk) the command exits 5 with one line saying what to run, and
`erp-sync report RUN_ID --write` writes the files from the database, byte for byte as the import
would have. When the process is killed between the commit and the files, the next `import` or
`sync` of the organisation writes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, Result, finish, run_cli, start_cli_subprocess
from tests.e2e.helpers import kill_group, libpq

REPORT_FILES = ("summary.json", "errors.csv", "rejected_rows.csv", "report.html")

# Semicolons, quoted delimiters, quotes and newlines, a formula, a short and a long row, and
# issue codes whose counts order them otherwise than jsonb orders its keys.
EXPORT = (
    "erp_customer_number;name;email;default_currency;default_language;notes;contact_email\n"
    'A1;Alpha;a@x.de;EUR;en;"has ; semicolon";c1@x.de\n'
    "A1;Alpha;bad-email;EUR;en;=1+2;c2@x.de\n"
    'B2;Beta;;EUR;en;"quote ""here""";\n'
    'C3;;c@x.de;EUR;en;"multi\nline";\n'
    'D4;Delta;;EUR;en;;;extra1;"extra;2"\n'
    "E5;Eps;;EUR\n"
    "G7;Gamma;;QQQ;en;;\n"
    "H8;Eta;;EUR;en;\u00fcml\u00e4ut;\n"
)


# --- helpers ----------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def customer_file(path: Path, *numbers: str) -> Path:
    """A valid export of the given customer numbers."""
    lines = ["erp_customer_number,name,default_currency,default_language"]
    lines += [f"{n},Customer {n},EUR,en" for n in numbers]
    return write(path, "\n".join(lines) + "\n")


def import_json(env: CliEnv, path: Path, org: str, report_dir: Path | str) -> Result:
    return run_cli(
        ["import", str(path), "--org", org, "--json", "--report-dir", str(report_dir)], env
    )


def run_row(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.text("SELECT * FROM import_run WHERE id = :id"), {"id": run_id})
            .mappings()
            .one()
        )


def customer_numbers(engine: Engine, slug: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT c.erp_customer_number FROM customer c JOIN org o ON o.id = c.org_id "
                    "WHERE o.slug = :s ORDER BY 1"
                ),
                {"s": slug},
            ).scalars()
        )


def assert_applied_but_reports_not_written(result: Result, engine: Engine, org: str) -> str:
    """Exit 5, the data applied, one line naming the run and the command; returns the run id."""
    assert result.exit_code == 5, result
    assert "Traceback" not in result.output
    summary = result.json()  # summary.json still comes on stdout
    run_id = summary["run_id"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert run_id in lines[0]
    assert "the data was applied (partial)" in lines[0]
    assert f"`erp-sync report {run_id} --write`" in lines[0]
    row = run_row(engine, run_id)
    assert row["status"] == "partial"
    assert row["reports_written_at"] is None
    assert customer_numbers(engine, org) == ["B2", "H8"]
    return str(run_id)


def assert_report_write_writes_them(env: CliEnv, engine: Engine, run_id: str, dest: Path) -> None:
    """`report RUN_ID --write --report-dir DEST` writes the files there and notes it."""
    done = run_cli(["report", run_id, "--write", "--report-dir", str(dest)], env)
    assert done.exit_code == 0, done
    assert str(dest / run_id) in done.stdout
    for name in REPORT_FILES:
        assert (dest / run_id / name).is_file(), name
    assert "errors.csv" not in done.stderr
    row = run_row(engine, run_id)
    assert row["reports_written_at"] is not None
    assert row["report_dir"] == str(dest / run_id)
    shown = run_cli(["report", run_id, "--json"], env)
    assert shown.json()["report_dir"] == str(dest / run_id)


@contextlib.contextmanager
def mounted_tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A small tmpfs at `where` (skips the test when this process may not mount one)."""
    where.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small or read-only file system")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]), "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    return CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=tmp_path)


@pytest.fixture
def org(engine: Engine) -> str:
    slug = f"r-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        add_org(conn, slug, slug)
    return slug


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write(tmp_path / "kunden.csv", EXPORT)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write: chmod 0o500, or for root a read-only tmpfs."""
    where = tmp_path / "read-only"
    if os.geteuid() != 0:
        where.mkdir()
        where.chmod(0o500)
        try:
            yield where
        finally:
            where.chmod(0o700)
        return
    # root writes through chmod 0o500: only a read-only file system stops it
    with mounted_tmpfs(where, "ro") as mounted:
        yield mounted


# --- the folder cannot be written -------------------------------------------------------------


def test_a_read_only_report_folder_exits_5_with_the_data_applied_and_report_write_writes_them(
    env: CliEnv, org: str, engine: Engine, export: Path, read_only_dir: Path, tmp_path: Path
) -> None:
    result = import_json(env, export, org, read_only_dir)

    run_id = assert_applied_but_reports_not_written(result, engine, org)
    assert str(read_only_dir / run_id) in result.stderr
    assert not (read_only_dir / run_id).exists()
    assert_report_write_writes_them(env, engine, run_id, tmp_path / "elsewhere")


def test_erp_sync_report_dir_pointing_at_a_file_exits_5_and_report_write_writes_them(
    env: CliEnv, org: str, engine: Engine, export: Path, tmp_path: Path
) -> None:
    a_file = write(tmp_path / "not-a-folder", "x")
    result = run_cli(
        ["import", str(export), "--org", org, "--json"],
        env.with_vars(ERP_SYNC_REPORT_DIR=str(a_file)),
    )

    run_id = assert_applied_but_reports_not_written(result, engine, org)
    assert "Not a directory" in result.stderr
    # ERP_SYNC_REPORT_DIR, once it names a folder, is where `report --write` writes
    good = tmp_path / "reports"
    done = run_cli(["report", run_id, "--write"], env.with_vars(ERP_SYNC_REPORT_DIR=str(good)))
    assert done.exit_code == 0, done
    assert sorted(p.name for p in (good / run_id).iterdir()) == sorted(REPORT_FILES)


def test_a_full_disk_exits_5_with_the_data_applied_and_report_write_writes_them(
    env: CliEnv, org: str, engine: Engine, export: Path, tmp_path: Path
) -> None:
    with mounted_tmpfs(tmp_path / "small") as small:
        filler = small / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as handle:
            while True:
                handle.write(b"x" * 4096)
                handle.flush()
        result = import_json(env, export, org, small / "reports")

        run_id = assert_applied_but_reports_not_written(result, engine, org)
        assert "No space left on device" in result.stderr
    assert_report_write_writes_them(env, engine, run_id, tmp_path / "elsewhere")


def test_report_write_fails_again_with_exit_5_and_one_line_while_the_folder_is_unwritable(
    env: CliEnv, org: str, engine: Engine, export: Path, tmp_path: Path
) -> None:
    a_file = write(tmp_path / "not-a-folder", "x")
    run_id = import_json(env, export, org, a_file / "sub").json()["run_id"]

    again = run_cli(["report", run_id, "--write"], env)

    assert again.exit_code == 5, again
    assert "Traceback" not in again.output
    assert len(again.stderr.strip().splitlines()) == 1
    assert f"erp-sync report {run_id} --write" in again.stderr
    assert run_row(engine, run_id)["reports_written_at"] is None


def test_a_rejected_file_whose_reports_cannot_be_written_keeps_exit_3_with_the_one_line(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    a_file = write(tmp_path / "not-a-folder", "x")
    refused = write(tmp_path / "refused.csv", "erp_customer_number,name\n1,A\n")

    result = import_json(env, refused, org, a_file / "sub")

    assert result.exit_code == 3, result
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing was applied (rejected)" in lines[0]
    assert "--write" in lines[0]


def test_a_sync_whose_report_folder_cannot_be_written_exits_5_with_one_line_per_file(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    write(tmp_path / "inbox" / org / "kunden.csv", EXPORT)
    customer_file(tmp_path / "inbox" / org / "z-more.csv", "Z1")
    a_file = write(tmp_path / "not-a-folder", "x")

    result = run_cli(
        ["sync", str(tmp_path / "inbox"), "--json", "--report-dir", str(a_file / "sub")], env
    )

    assert result.exit_code == 5, result
    assert "Traceback" not in result.output
    files = result.json()["files"]
    assert [f["exit_code"] for f in files] == [5, 5]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    for file, line in zip(files, lines, strict=True):
        assert f"erp-sync report {file['run_id']} --write" in line
    assert customer_numbers(engine, org) == ["B2", "H8", "Z1"]


# --- writing them again ------------------------------------------------------------------------


def test_report_write_writes_files_byte_identical_to_those_the_import_wrote(
    env: CliEnv, org: str, engine: Engine, export: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    imported = import_json(env, export, org, reports)
    assert imported.exit_code == 1, imported
    run_id = imported.json()["run_id"]
    run_dir = reports / run_id
    written = {name: (run_dir / name).read_bytes() for name in REPORT_FILES}
    assert written["rejected_rows.csv"].count(b"\n") > 5  # the rejected rows are there
    shutil.rmtree(run_dir)

    again = run_cli(["report", run_id, "--write"], env)

    assert again.exit_code == 0, again
    assert {name: (run_dir / name).read_bytes() for name in REPORT_FILES} == written


def test_the_next_import_writes_the_missing_reports_of_the_organisations_earlier_runs(
    env: CliEnv, org: str, engine: Engine, export: Path, tmp_path: Path
) -> None:
    a_file = write(tmp_path / "not-a-folder", "x")
    first = import_json(env, export, org, a_file / "sub").json()["run_id"]
    reports = tmp_path / "reports"
    # the old run's folder cannot be made: its catch-up fails, the new import does not
    write(reports / first, "in the way")

    second = import_json(env, customer_file(tmp_path / "b.csv", "K1"), org, reports)

    assert second.exit_code == 0, second
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"erp-sync report {first} --write" in lines[0], second.stderr
    assert run_row(engine, first)["reports_written_at"] is None
    assert (reports / second.json()["run_id"] / "summary.json").is_file()
    (reports / first).unlink()

    third = import_json(env, customer_file(tmp_path / "c.csv", "K2"), org, reports)

    assert third.exit_code == 0, third
    assert third.stderr.strip().splitlines() == [
        f"erp-sync: wrote the missing reports of run {first} ({org}: kunden.csv) "
        f"to {reports / first}"
    ]
    assert sorted(p.name for p in (reports / first).iterdir()) == sorted(REPORT_FILES)
    assert run_row(engine, first)["reports_written_at"] is not None
    # once written, no later command writes them again
    fourth = import_json(env, customer_file(tmp_path / "d.csv", "K3"), org, reports)
    assert fourth.exit_code == 0 and fourth.stderr == "", fourth


# --- a kill between the commit and the files ---------------------------------------------------


def _kill_after_commit(env: CliEnv, db_url: str, org: str, path: Path, reports: Path) -> str:
    """Start an import and SIGKILL it as soon as its import_run row is visible; its run id."""
    args = ["import", str(path), "--org", org, "--json", "--report-dir", str(reports)]
    process = start_cli_subprocess(args, env)
    try:
        with psycopg.connect(libpq(db_url), autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                found = conn.execute(
                    "SELECT r.id FROM import_run r JOIN org o ON o.id = r.org_id "
                    "WHERE o.slug = %s AND r.source = %s",
                    (org, str(path)),
                ).fetchone()
                if found is not None:
                    os.killpg(process.pid, signal.SIGKILL)
                    return str(found[0])
                if process.poll() is not None:
                    pytest.fail(f"the import ended before it was seen: {finish(process, 10)}")
            pytest.fail("the import's run never became visible")
    finally:
        kill_group(process)
    raise AssertionError("unreachable")


def test_an_import_killed_after_its_commit_has_its_reports_written_by_the_next_sync(
    env: CliEnv, db_url: str, org: str, engine: Engine, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    for attempt in range(3):
        path = write(tmp_path / "inbox" / org / f"kunden-{attempt}.csv", EXPORT)
        run_id = _kill_after_commit(env, db_url, org, path, reports)
        if run_row(engine, run_id)["reports_written_at"] is None:
            break
        path.unlink()  # the reports were written before the kill landed: try again
    else:
        pytest.skip("the kill never landed between the commit and the reports in 3 tries")
    assert run_row(engine, run_id)["status"] == "partial"
    assert customer_numbers(engine, org) == ["B2", "H8"]
    assert not (reports / run_id / "rejected_rows.csv").exists()

    # the sync finds the file applied (nothing new to import) and writes the missing reports
    result = run_cli(["sync", str(tmp_path / "inbox"), "--json", "--report-dir", str(reports)], env)

    assert result.exit_code == 0, result
    assert result.json()["files"] == []
    assert f"wrote the missing reports of run {run_id}" in result.stderr
    assert sorted(p.name for p in (reports / run_id).iterdir() if not p.name.startswith(".")) == (
        sorted(REPORT_FILES)
    )
    rejected = (reports / run_id / "rejected_rows.csv").read_text(encoding="utf-8")
    assert rejected.startswith(
        "erp_customer_number;name;email;default_currency;default_language;notes;contact_email;errors"
    )
    assert run_row(engine, run_id)["reports_written_at"] is not None
