"""What a benchmark ran on and which code it timed: written into every result file."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def cpu_model(fallback: str) -> str:
    """The CPU's model name from /proc/cpuinfo, or `fallback` where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return fallback


def memory_gb() -> float:
    """The machine's memory in GB (0 where /proc/meminfo cannot be read)."""
    try:
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        memory_kb = 0
    return round(memory_kb / 1024 / 1024, 1)


def machine(cpu_fallback: str | None = None, **more: Any) -> dict[str, Any]:
    """The CPU, the cores and the Python a result was measured with, then `more` keys."""
    cpu = cpu_model(platform.processor() if cpu_fallback is None else cpu_fallback)
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **more}


def commit(repo: Path) -> str | None:
    """The short hash of the checkout's HEAD, or None outside a git checkout."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or None
