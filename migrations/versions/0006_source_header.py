"""The header of the last applied file per organisation and source profile.

Why: a nightly full export that silently lost a column (the email, say) would otherwise keep the
stale values of that column forever, and a renamed column would quietly stop feeding its field.
Each applied run records the header it was read with (its column names as written, in order,
with the delimiter and encoding); the next file of the same organisation and profile is compared
with it, and every difference is reported as a `header_drift` warning, or refuses the file with
--strict-header. One row per (organisation, profile): only the last applied header matters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_header",
        sa.Column("org_id", UUID(as_uuid=True), nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("header", JSONB(none_as_null=True), nullable=False),
        sa.Column("delimiter", sa.Text),
        sa.Column("encoding", sa.Text),
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(["org_id"], ["org.id"], name="fk_source_header_org_id_org"),
        sa.PrimaryKeyConstraint("org_id", "profile", name="pk_source_header"),
    )


def downgrade() -> None:
    op.drop_table("source_header")
