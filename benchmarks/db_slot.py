"""Time what the erp-sync-db slot adds to an import's load step, on a local Prefect server.

Timed inside a flow run (whose API client an import's load task uses too), medians of the
rounds reported (milliseconds):

- absent, first: `limit_exists()` asked of the server (once per process per minute)
- absent, cached: `database_slot()` entered and left when the limit does not exist (cached)
- held: `database_slot()` entered and left when the limit exists with free slots (acquire a
  leased slot, start the lease renewal, release)

    python -m benchmarks.db_slot [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from flows.serve import local_prefect_server

    with tempfile.TemporaryDirectory() as home, local_prefect_server(Path(home)) as api:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows import dbslot

        with temporary_settings(updates={PREFECT_API_URL: api}):
            times: dict[str, list[float]] = {"absent, first": [], "absent, cached": [], "held": []}

            def timed(name: str, action: object) -> None:
                start = time.perf_counter()
                action()  # type: ignore[operator]
                times[name].append((time.perf_counter() - start) * 1000)

            def enter_and_leave() -> None:
                with dbslot.database_slot():
                    pass

            from prefect import flow

            @flow(name="db-slot-benchmark")
            def measure(rounds: int, held: bool) -> None:
                dbslot.forget_limit()
                enter_and_leave()  # warm
                for _ in range(rounds):
                    if held:
                        timed("held", enter_and_leave)
                    else:
                        dbslot.forget_limit()
                        timed("absent, first", dbslot.limit_exists)
                        timed("absent, cached", enter_and_leave)

            measure(args.rounds, held=False)
            with get_client(sync_client=True) as client:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=dbslot.DB_LIMIT, limit=4)
                )
            measure(args.rounds, held=True)
            for name, values in times.items():
                print(
                    f"{name:16s} median {statistics.median(values):7.2f} ms  "
                    f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
                )


if __name__ == "__main__":
    main()
