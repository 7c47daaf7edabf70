"""How the command line words a failure: one line, no secrets, Prefect's console kept quiet."""

from __future__ import annotations

import pytest

from flows import settings as settings_module
from flows.cli import app
from flows.cli.common import one_line


def test_an_error_line_never_shows_an_email_or_the_database_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://erp:Hunter2-pw@db.example.com:5432/erp")
    with pytest.raises(SystemExit) as exited:
        app._fail("user anna.muster@example.com failed with password Hunter2-pw", 4)
    assert exited.value.code == 4
    err = capsys.readouterr().err
    assert "anna.muster@example.com" not in err and "Hunter2-pw" not in err
    assert err.count("\n") == 1


def test_an_unexpected_exception_is_one_line_naming_its_type_and_the_debug_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        app._exit_on_error(LookupError("first line\nsecond line"))
    assert exited.value.code == 4
    err = capsys.readouterr().err
    assert err.startswith("erp-sync: error: unexpected failure: LookupError: first line; ")
    assert "second line" not in err and "Traceback" not in err
    assert "ERP_SYNC_LOG_LEVEL=DEBUG" in err
    assert err.count("\n") == 1


def test_prefects_startup_timeout_is_recognised_also_when_wrapped() -> None:
    timeout = RuntimeError(
        "Timed out while attempting to connect to ephemeral Prefect API server. stdout: ..."
    )
    try:
        try:
            raise timeout
        except RuntimeError as exc:
            raise ValueError("while running the flow") from exc
    except ValueError as wrapped:
        assert app._is_prefect_server_timeout(wrapped)
    assert not app._is_prefect_server_timeout(RuntimeError("something else"))


@pytest.mark.parametrize(
    ("args", "level", "console"),
    [
        (["import", "x.csv", "--org", "a"], "WARNING", "CRITICAL"),
        (["import", "x.csv", "--org", "a"], "DEBUG", "WARNING"),
        (["serve"], "WARNING", "WARNING"),
    ],
)
def test_prefects_console_shows_no_run_failures_unless_debug_or_serving(
    monkeypatch: pytest.MonkeyPatch, args: list[str], level: str, console: str
) -> None:
    monkeypatch.delenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", raising=False)
    monkeypatch.setenv("ERP_SYNC_LOG_LEVEL", level)
    settings_module.get_settings.cache_clear()
    try:
        app._configure_logging(serving=app._command_of(args) == "serve")
    finally:
        settings_module.get_settings.cache_clear()
    import os

    assert os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == console


def test_a_multi_line_message_joins_into_one_line() -> None:
    error = RuntimeError("refused: merge these:\n  'A' and 'A ' would become 'A'\n  'B'")
    assert one_line(error) == "refused: merge these:"
    assert one_line(error, joined=True) == (
        "refused: merge these: 'A' and 'A ' would become 'A'; 'B'"
    )
