"""Change history per run, reverts, and the as-of time of exports.

Why: a run that applied a broken export (every currency EUR, half the rows lost in full mode)
could only be undone by hand, nobody could say which values a run changed, and an older export
arriving late silently overwrote newer data. This migration stores what each applied run
changed, in the run's own transaction, so that `erp-sync changes`, `history` and `revert` can
answer and undo it, and records each export's as-of time for the stale-export guard:

- change_history: one row per customer or contact a run updated, deactivated, reactivated or
  demoted (`update`: the changed fields' values before and after, as JSON objects), deleted
  (`delete`: the whole row before, so that reverting the revert can put it back) or re-inserted
  (`insert`, by a revert). The run id's foreign key is deferred: the load records its changes
  before its run row, in one transaction.
- change_field_count: per run, entity and field, how many rows changed; what the reports and
  the runs index show, and what is left of a run after `history prune`.
- customer.created_run_id, customer_contact.created_run_id: the run that inserted the row. An
  insert is recorded as one fact per run, not as a history row per inserted row: the column's
  default reads the run id that the load sets with `SET LOCAL erp_sync.run_id`, so every insert
  path (INSERT ... SELECT, COPY) records it by leaving the column out. Rows inserted before this
  migration have NULL.
- import_run.as_of (the export's as-of time), reverts (mode `revert`: the reverted run),
  reverted_by (the revert that undid the run: its bytes no longer count as applied),
  history_pruned_at (set for every run recorded before this migration: having no history,
  they cannot be reverted); mode may be `revert`.

No index on created_run_id: a revert or `changes` of a run scans the organisation's rows once
(under a second for a million), while an index would slow every first import's inserts.

Downgrade drops the history, the counts and the new columns; revert runs are deleted first (the
mode check would refuse them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import CITEXT, JSONB, UUID

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

RUN_DEFAULT = "(nullif(current_setting('erp_sync.run_id', true), ''))::uuid"


def upgrade() -> None:
    for table in ("customer", "customer_contact"):
        op.add_column(
            table,
            sa.Column("created_run_id", UUID(as_uuid=True), server_default=sa.text(RUN_DEFAULT)),
        )
    op.add_column("import_run", sa.Column("as_of", sa.DateTime(timezone=True)))
    op.add_column("import_run", sa.Column("reverts", UUID(as_uuid=True)))
    op.add_column("import_run", sa.Column("reverted_by", UUID(as_uuid=True)))
    op.add_column("import_run", sa.Column("history_pruned_at", sa.DateTime(timezone=True)))
    # Runs applied before this migration have no history: they cannot be reverted.
    op.execute("UPDATE import_run SET history_pruned_at = now()")
    op.drop_constraint("ck_import_run_mode", "import_run", type_="check")
    op.create_check_constraint(
        "ck_import_run_mode", "import_run", "mode IN ('upsert', 'full', 'revert')"
    )
    op.create_table(
        "change_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("org_id", UUID(as_uuid=True), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("erp_customer_number", sa.Text(), nullable=False),
        sa.Column("contact_email", CITEXT()),
        sa.Column("before", JSONB()),
        sa.Column("after", JSONB()),
        sa.PrimaryKeyConstraint("id", name="pk_change_history"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["import_run.id"],
            name="fk_change_history_run_id_import_run",
            ondelete="CASCADE",
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.CheckConstraint("entity IN ('customer', 'contact')", name="ck_change_history_entity"),
        sa.CheckConstraint(
            "action IN ('update', 'insert', 'delete')", name="ck_change_history_action"
        ),
    )
    op.create_index("ix_change_history_run_id", "change_history", ["run_id"])
    op.create_index(
        "ix_change_history_org_id_erp_customer_number",
        "change_history",
        ["org_id", "erp_customer_number"],
    )
    op.create_table(
        "change_field_count",
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "entity", "field", name="pk_change_field_count"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["import_run.id"],
            name="fk_change_field_count_run_id_import_run",
            ondelete="CASCADE",
            deferrable=True,
            initially="DEFERRED",
        ),
    )


def downgrade() -> None:
    op.drop_table("change_field_count")
    op.drop_table("change_history")
    op.execute("DELETE FROM import_run WHERE mode = 'revert'")
    op.drop_constraint("ck_import_run_mode", "import_run", type_="check")
    op.create_check_constraint("ck_import_run_mode", "import_run", "mode IN ('upsert', 'full')")
    for column in ("history_pruned_at", "reverted_by", "reverts", "as_of"):
        op.drop_column("import_run", column)
    for table in ("customer_contact", "customer"):
        op.drop_column(table, "created_run_id")
