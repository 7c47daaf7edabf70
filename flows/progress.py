"""Progress lines for a person at a terminal; silent for pipes, files, schedulers and --json."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

_lock = threading.Lock()
_reporter: Callable[[str], None] | None = None


def enable_terminal_progress(stream: TextIO | None = None) -> None:
    """Print progress to stderr, but only when stderr is a terminal."""
    out = stream or sys.stderr
    if not getattr(out, "isatty", lambda: False)():
        return
    started = time.monotonic()

    def write(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=out, flush=True)

    set_reporter(write)


def set_reporter(reporter: Callable[[str], None] | None) -> None:
    """Send progress to reporter (None: nowhere)."""
    global _reporter
    _reporter = reporter


def progress(message: str) -> None:
    """Report a step of a long import or sync (a no-op unless a reporter is set)."""
    reporter = _reporter
    if reporter is not None:
        with _lock:
            reporter(message)
