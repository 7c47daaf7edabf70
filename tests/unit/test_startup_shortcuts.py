"""What the one-row import skips at start-up does not change what it does (README, "Start-up")."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import flows.servers as servers
from flows import reading
from flows.importing import ImportMode, ImportOptions

REPO = Path(__file__).resolve().parents[2]


def test_flow_parameters_are_encoded_as_prefects_own_encoder_does() -> None:
    from prefect import Flow

    from flows.import_flow import import_file

    options = ImportOptions(
        mode=ImportMode.FULL,
        dry_run=True,
        report_dir=Path("/tmp/reports"),
        max_error_rate=0.25,
        contacts=Path("contacts.csv"),
        as_of=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
    )
    parameters = {"path": "kunden.csv", "org": "acme", "options": options}
    ours = import_file.serialize_parameters(parameters)
    assert ours == Flow.serialize_parameters(import_file, parameters)
    assert ours["options"]["mode"] == "full" and ours["options"]["report_dir"] == "/tmp/reports"


@pytest.mark.parametrize(
    "data",
    [b"", b"plain ascii\n", "Zürich, Łódź, 東京\n".encode(), b"\xff\xfe", b"caf\xe9\n",
     b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"ok\xe2\x82"],
)  # fmt: skip
def test_small_files_are_checked_for_utf8_as_arrow_checks_large_ones(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = reading._is_utf8(data)
    small_view = reading._byte_view(data).to_list()
    monkeypatch.setattr(reading, "_SMALL_FILE", -1)  # every file takes the Arrow path
    assert reading._is_utf8(data) == python
    assert reading._byte_view(data).to_list() == small_view == list(data)


def test_a_new_prefect_home_starts_from_the_template_and_an_existing_one_is_kept(
    tmp_path: Path,
) -> None:
    template = tmp_path / "cache" / "prefect-x.db"
    template.parent.mkdir()
    with sqlite3.connect(template) as db:
        db.execute("create table alembic_version (version_num text)")
    fresh, used = tmp_path / "fresh", tmp_path / "used"
    fresh.mkdir()
    used.mkdir()
    (used / "prefect.db").write_bytes(b"runs of this home")

    assert servers.seed_prefect_database(fresh, template)
    assert (fresh / "prefect.db").read_bytes() == template.read_bytes()
    assert not servers.seed_prefect_database(used, template)
    assert (used / "prefect.db").read_bytes() == b"runs of this home"
    assert not servers.seed_prefect_database(tmp_path / "other", tmp_path / "missing.db")
    assert sorted(p.name for p in fresh.iterdir()) == ["prefect.db"]  # no scratch copy left


def test_flow_heartbeats_are_dropped_only_on_the_shared_server_and_when_not_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.context import SettingsContext
    from prefect.settings import get_current_settings

    before = get_current_settings().flows.heartbeat_frequency
    assert before is not None
    for name in servers.HEARTBEAT_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    monkeypatch.setattr(servers, "_shared_prefect", False)  # PREFECT_API_URL named a server
    servers.drop_flow_heartbeats()
    assert get_current_settings().flows.heartbeat_frequency == before

    monkeypatch.setattr(servers, "_shared_prefect", True)
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")  # the user asked for them
    servers.drop_flow_heartbeats()
    assert get_current_settings().flows.heartbeat_frequency == before

    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY")
    servers.drop_flow_heartbeats()
    dropped = SettingsContext.get()
    try:
        assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().api.url == dropped.settings.api.url  # nothing else moved
    finally:
        assert dropped is not None
        dropped.__exit__(None, None, None)
    assert get_current_settings().flows.heartbeat_frequency == before


def test_the_console_script_exits_with_the_code_after_the_atexit_handlers_and_output() -> None:
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n"
        "from flows.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERP_SYNC_")}
    env["PYTHONPATH"] = str(REPO)
    for args, code in ((["--help"], 0), (["no-such-command"], 2)):
        done = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == code, done.stderr
        assert done.stdout.rstrip().endswith("atexit ran")
        assert ("Usage:" in done.stdout) == (code == 0)
        assert ("erp-sync: error:" in done.stderr) == (code == 2)
