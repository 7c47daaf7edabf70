"""Under a Prefect worker there is no embedded database: DATABASE_URL is required at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.runtime import DatabaseUrlRequiredError, open_database
from flows.settings import Settings


def test_a_run_on_a_worker_without_database_url_fails_at_once_saying_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ERP_SYNC_UNDER_WORKER", "1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(home=tmp_path)
    with pytest.raises(DatabaseUrlRequiredError, match="DATABASE_URL is not set") as caught:
        open_database(settings)
    assert "worker" in str(caught.value)
    assert not (tmp_path / "pgdata").exists()  # no embedded server was started


def test_the_cli_on_a_worker_without_database_url_says_so_in_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows import settings as settings_module
    from flows.cli import main

    monkeypatch.setenv("ERP_SYNC_UNDER_WORKER", "1")
    monkeypatch.setenv("ERP_SYNC_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings_module.get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exited:
            main(["org", "list"])
    finally:
        settings_module.get_settings.cache_clear()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("erp-sync: error: DATABASE_URL is not set") and err.count("\n") == 1
    assert "Traceback" not in err
