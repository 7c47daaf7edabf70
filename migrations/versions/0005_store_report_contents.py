"""Store what a run's report files are written from, and whether they were written.

Why: the report files were written only from the importer's memory, after the commit. A full
disk, an unwritable report folder or a kill between the commit and the files lost them for good:
the data was applied, the rerun of the file was `skipped`, and the rejected rows of the run were
never reported anywhere. The issues were already in import_issue; this migration adds the rest,
written in the run's own transaction, so that `erp-sync report RUN_ID --write` (and the next
import or sync of the organisation) can write the files again, byte for byte:

- import_run.header: the source header of the file, as read (NULL: recorded before this
  migration, when the header was not kept);
- import_rejected_row: one row per rejected row, in the order the run reported them: its line,
  its cells under the source header (NULL for a missing field, '' for an empty one), the surplus
  fields of a row longer than the header, and the text of its errors;
- import_run.reports_written_at: when the report files were last written; NULL while they are
  missing. A partial index finds an organisation's runs with missing reports.

Runs recorded before this migration are marked written (at their finish): their files were
written by the importer of the time or are lost, and their rejected rows cannot be rebuilt.

Downgrade drops the stored rejected rows, the header and the written marks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_run", sa.Column("header", ARRAY(sa.Text())))
    op.add_column("import_run", sa.Column("reports_written_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE import_run SET reports_written_at = coalesce(finished_at, started_at) "
        "WHERE reports_written_at IS NULL"
    )
    op.create_index(
        "ix_import_run_org_id_reports_missing",
        "import_run",
        ["org_id"],
        postgresql_where=sa.text("reports_written_at IS NULL"),
    )
    op.create_table(
        "import_rejected_row",
        sa.Column(
            "run_id",
            UUID(as_uuid=True),
            sa.ForeignKey(
                "import_run.id",
                ondelete="CASCADE",
                name="fk_import_rejected_row_run_id_import_run",
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line", sa.BigInteger()),
        sa.Column("cells", ARRAY(sa.Text()), nullable=False),
        sa.Column("extra", ARRAY(sa.Text())),
        sa.Column("errors", sa.Text()),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_import_rejected_row"),
    )


def downgrade() -> None:
    op.drop_table("import_rejected_row")
    op.drop_index("ix_import_run_org_id_reports_missing", table_name="import_run")
    op.drop_column("import_run", "reports_written_at")
    op.drop_column("import_run", "header")
