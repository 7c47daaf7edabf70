"""The database slot: the load step of every import holds one slot of the Prefect global
concurrency limit `erp-sync-db` while its transaction is open.

`erp-sync deploy` creates the limit (its size is how many bulk transactions the fleet may have
open at once). Where it does not exist (no deploy was ever run, the shared local Prefect server),
an import takes no slot: whether it exists is asked once per process and remembered for
`CHECK_EVERY_SECONDS`, asked in the background while the file is read and validated, so the
load step does not wait for it.

Also here: whether this process runs under a Prefect worker, where an embedded database makes
no sense (each run would start its own, on the worker's machine).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterator

DB_LIMIT = "erp-sync-db"
CHECK_EVERY_SECONDS = 60.0
LEASE_SECONDS = 60.0
"""The slot's lease (Prefect's minimum); renewed while held, freed this long after a kill."""

WORKER_ENV = "ERP_SYNC_UNDER_WORKER"
"""Set to 1 by the job variables of the deployments `erp-sync deploy` registers."""

_checked: tuple[float, bool] | None = None
_checking = threading.Lock()


def limit_exists() -> bool:
    """Whether the Prefect server has the `erp-sync-db` limit (cached per process)."""
    global _checked
    with _checking:
        now = time.monotonic()
        if _checked is not None and now - _checked[0] < CHECK_EVERY_SECONDS:
            return _checked[1]
        exists = _read_limit_exists()
        _checked = (now, exists)
        return exists


def _read_limit_exists() -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(DB_LIMIT)
        except ObjectNotFound:
            return False
    return bool(limit.active)


def prefetch_limit() -> None:
    """Ask whether the limit exists in the background (an import calls this when it starts, so
    the answer is there by its load step instead of adding a round trip to it)."""
    with _checking:
        if _checked is not None and time.monotonic() - _checked[0] < CHECK_EVERY_SECONDS:
            return
    context = contextvars.copy_context()  # the run's Prefect settings and client

    def ask() -> None:
        with contextlib.suppress(Exception):  # the load step asks again, and says why
            context.run(limit_exists)

    threading.Thread(target=ask, name="erp-sync-db-limit", daemon=True).start()


def forget_limit() -> None:
    """Ask the server again at the next load (after deploy created or changed the limit)."""
    global _checked
    with _checking:
        _checked = None


@contextlib.contextmanager
def database_slot() -> Iterator[bool]:
    """Hold a slot of `erp-sync-db` for the block (True), or none when the limit does not exist."""
    if not limit_exists():
        yield False
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(DB_LIMIT, occupy=1, lease_duration=LEASE_SECONDS):
        yield True


def under_worker() -> bool:
    """Whether this process runs a flow run that a Prefect worker started from a work pool."""
    if os.environ.get(WORKER_ENV, "").strip() in {"1", "true", "yes"}:
        return True
    if "prefect.context" not in sys.modules:  # no flow run in a process without prefect
        return False
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    return bool(flow_run is not None and flow_run.work_pool_name)
