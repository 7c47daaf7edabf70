"""The embedded PostgreSQL: started on demand, shared by processes, stopped when idle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from flows.cli import main; main()"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # idle after three seconds: the server outlives its commands only briefly
    return env | {"ERP_SYNC_HOME": str(home), "ERP_SYNC_SERVER_IDLE_MINUTES": "0.05"}


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Outside pytest's basetemp, which another pytest session may rotate away under a server."""
    folder = Path(tempfile.mkdtemp(prefix="erp-sync-embedded-"))
    yield folder
    subprocess.run([*CLI, "stop"], env=_env(folder / "home"), capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_processes_share_the_embedded_server_it_stops_when_idle_and_the_data_outlives_it(
    tmp_path: Path,
) -> None:
    # One home for both halves: one initdb and one migration (the costly part), not two.
    home = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [*CLI, "org", "add", slug], env=_env(home), stdout=subprocess.PIPE, text=True
        )
        for slug in ("first", "second")
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert all(len(out.strip()) == 36 for out in outs)  # each printed its organisation's id

    listed = subprocess.run(
        [*CLI, "org", "list"], env=_env(home), capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0
    assert {line.split()[0] for line in listed.stdout.splitlines()} == {"first", "second"}
    # The server outlives the commands for the idle timeout, then its watchdog stops it cleanly.
    postmaster = home / "pgdata" / "postmaster.pid"
    deadline = time.monotonic() + 60
    while postmaster.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not postmaster.exists()

    # Started again on demand: the same database, the data survived the stop, and the schema
    # is the latest with no `db upgrade` run by hand.
    again = subprocess.run(
        [*CLI, "org", "add", "first"], env=_env(home), capture_output=True, text=True, timeout=120
    )
    current = subprocess.run(
        [*CLI, "db", "current"], env=_env(home), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == current.returncode == 0
    assert again.stdout == outs[0]  # the same id as before the stop
    assert "up to date" in current.stdout
