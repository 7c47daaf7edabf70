"""`deploy` and `sync --work-pool` refuse in one line, exit 2, what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import settings as settings_module


def run(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main
    from flows.servers import configured_prefect_url

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings_module.get_settings.cache_clear()
    # No server named anywhere: neither a Prefect profile of this machine nor the session's test
    # server (the end-to-end tests' harness sets PREFECT_API_URL for the whole pytest session).
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert configured_prefect_url() is None
        try:
            with pytest.raises(SystemExit) as exited:
                main(args)
        finally:
            settings_module.get_settings.cache_clear()
    code = exited.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


def test_deploy_without_a_prefect_server_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["deploy", "--work-pool", "night"], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("erp-sync: error: PREFECT_API_URL is not set") and err.count("\n") == 1


def test_sync_on_a_pool_without_a_prefect_server_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["sync", str(tmp_path), "--work-pool", "night"], monkeypatch, capsys)
    assert code == 2
    assert (
        err == "erp-sync: error: --work-pool needs PREFECT_API_URL: the Prefect server "
        "the pool's workers use\n"
    )


def test_shards_without_a_pool_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["sync", str(tmp_path), "--shards", "3"], monkeypatch, capsys)
    assert (code, err) == (2, "erp-sync: error: --shards needs --work-pool\n")


def test_deploy_refuses_zero_database_slots(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["deploy", "--work-pool", "night", "--db-slots", "0"], monkeypatch, capsys)
    assert code == 2
    assert "--db-slots" in err and err.count("\n") == 1
