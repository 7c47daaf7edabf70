"""Progress lines: shown on a terminal, silent everywhere else."""

from __future__ import annotations

import io

from flows import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_printed_when_stderr_is_a_terminal() -> None:
    out = _Terminal()
    try:
        progress.enable_terminal_progress(out)
        progress.progress("acme: read 10 rows")
    finally:
        progress.set_reporter(None)
    assert "acme: read 10 rows" in out.getvalue()


def test_progress_stays_quiet_when_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    try:
        progress.enable_terminal_progress(out)
        progress.progress("acme: read 10 rows")
    finally:
        progress.set_reporter(None)
    assert out.getvalue() == ""
