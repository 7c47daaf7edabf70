"""`erp-sync revert`: undo applied runs, each as a run of its own, in one transaction.

The transaction holds the organisation's import lock (the one every import's load holds), so a
revert and an import of the same organisation never interleave. With `cascade`, the later runs
that touched the same customers are reverted first, newest first, each a revert run of its own.
A dry run does all of it and rolls it back: it records nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contract import ContactCounts, CustomerCounts, ImportMode, RunStatus, Summary
from loaders import history, runs, upsert
from loaders.history import RunInfo
from loaders.revert import RevertCounts, RevertRefusedError, later_conflicts, mark_reverted
from loaders.revert import revert_changes as revert_run_changes

__all__ = ["NotRevertibleError", "RevertRefusedError", "Reverted", "revert_run"]


class NotRevertibleError(Exception):
    """The run named cannot be reverted (not applied, already reverted, history pruned)."""


@dataclass(frozen=True)
class Reverted:
    """One revert run: its summary and what it did."""

    summary: Summary
    counts: RevertCounts


class _DryRunRollback(Exception):
    pass


def _check_revertible(run: RunInfo) -> None:
    if run.dry_run:
        raise NotRevertibleError(f"run {run.id} was a dry run: it changed nothing")
    if not run.applied:
        raise NotRevertibleError(f"run {run.id} was {run.status}: it changed nothing")
    if run.reverted_by is not None:
        raise NotRevertibleError(
            f"run {run.id} was already reverted by run {run.reverted_by} "
            f"(revert that run to apply it again)"
        )
    if run.history_pruned_at is not None:
        raise NotRevertibleError(
            f"run {run.id} has no change history any more (pruned, or recorded before "
            "erp-sync kept history): it cannot be reverted"
        )


def _revert_one(conn: sa.Connection, run: RunInfo, *, dry_run: bool) -> Reverted:
    revert_id = uuid.uuid4()
    started_at = datetime.now(UTC)
    counts = revert_run_changes(conn, run, revert_id)
    history.count_changes(conn, revert_id)
    mark_reverted(conn, run, revert_id)
    finished_at = datetime.now(UTC)
    summary = Summary(
        run_id=str(revert_id),
        org=run.org,
        source=run.source,
        sha256=None,
        mode=ImportMode.REVERT,
        dry_run=dry_run,
        status=RunStatus.SUCCEEDED,
        started_at=started_at,
        finished_at=finished_at,
        encoding=None,
        delimiter=None,
        customers=CustomerCounts(
            inserted=counts.customers_restored,
            updated=counts.customers_updated,
            deactivated=counts.customers_deactivated,
            reactivated=counts.customers_reactivated,
        ),
        contacts=ContactCounts(inserted=counts.contacts_restored, updated=counts.contacts_updated),
        reverts=str(run.id),
    )
    if not dry_run:
        import polars as pl

        from contract.frames import empty_issues

        runs.record_run(
            conn,
            run.org_id,
            summary,
            empty_issues(),
            forced=False,
            rejected_rows=pl.DataFrame(),
            reports_written_at=finished_at,  # a revert writes no report files
        )
    return Reverted(summary, counts)


def revert_run(
    engine: Engine, run_id: uuid.UUID, *, cascade: bool = False, dry_run: bool = False
) -> list[Reverted]:
    """Revert the run (and, with cascade, the later runs in its way, newest first).

    One transaction under the organisation's lock. Raises NotRevertibleError, or
    RevertRefusedError naming the later runs and customers when they are in the way.
    The reverts in the order they were done: the run's own last.
    """
    done: list[Reverted] = []
    try:
        with engine.connect() as conn, conn.begin():
            run = history.get_run_info(conn, run_id)
            if run is None:
                raise LookupError(f"no run with id {run_id}")
            upsert.lock_organisation(conn, run.org_id)
            run = history.get_run_info(conn, run_id)  # as it is now that the lock is held
            assert run is not None
            _check_revertible(run)
            conflicts = later_conflicts(conn, run)
            if conflicts and not cascade:
                raise RevertRefusedError(run.id, conflicts)
            for conflict in reversed(conflicts):
                later = history.get_run_info(conn, conflict.run_id)
                assert later is not None
                _check_revertible(later)
                done.append(_revert_one(conn, later, dry_run=dry_run))
            done.append(_revert_one(conn, run, dry_run=dry_run))
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return done
