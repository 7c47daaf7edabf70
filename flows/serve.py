"""The nightly sync as a Prefect deployment: built here, served by `erp-sync serve`.

Building is apart from serving so that a test (or a script) can register the deployment with
``build_deployment(...).apply()`` against any Prefect API without blocking.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from flows.sync_flow import sync_inbox

DEPLOYMENT_NAME = "nightly"
DEFAULT_CRON = "0 2 * * *"


def default_inbox() -> Path:
    """ERP_SYNC_INBOX, else ./inbox (made absolute when the deployment is built)."""
    from flows.settings import get_settings

    return get_settings().inbox


def local_timezone() -> str:
    """This machine's IANA time zone name: TZ, /etc/timezone, /etc/localtime's target, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name and _valid_timezone(name):
            return name
    return "UTC"


def _valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def build_deployment(
    cron: str = DEFAULT_CRON,
    timezone: str | None = None,
    inbox: Path | str | None = None,
    *,
    name: str = DEPLOYMENT_NAME,
) -> RunnerDeployment:
    """The deployment nightly-sync/<name>: the sync of inbox on cron, never two runs at once.

    Raises ValueError for a cron expression or time zone that Prefect cannot schedule.
    """
    timezone = timezone or local_timezone()
    if not _valid_timezone(timezone):
        raise ValueError(f"unknown time zone {timezone!r} (use an IANA name such as Europe/Berlin)")
    schedule = Cron(cron, timezone=timezone)  # raises ValueError for a bad expression
    inbox_path = Path(inbox) if inbox is not None else default_inbox()
    deployment = sync_inbox.to_deployment(
        name=name,
        schedules=[schedule],
        parameters={"inbox": str(inbox_path.expanduser().resolve())},
        # a run that comes due while the last one is still going is cancelled, not queued:
        # the next night picks up whatever is still new
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        description="erp-sync: import every new ERP export of the inbox (the nightly sync).",
        tags=["erp-sync"],
        # the installed package is importable from anywhere; a file path depends on the cwd
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast(RunnerDeployment, deployment)  # called from sync code: not the coroutine


@contextlib.contextmanager
def local_prefect_server(home: Path, *, startup_timeout: float = 90) -> Iterator[str]:
    """Run `prefect server start` (with its scheduler) on loopback for as long as this lasts.

    For `erp-sync serve` on a machine without a Prefect server of its own: the server keeps its
    SQLite database under home/prefect, so the deployment and its past runs survive restarts.
    """
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefect_home = home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = (prefect_home / "server.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the Prefect server exited; see {prefect_home / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Prefect server did not start in time") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def serve_deployment(deployment: RunnerDeployment) -> None:
    """Serve the deployment in this process until interrupted, one run at a time."""
    from prefect import serve

    serve(deployment, limit=1)
