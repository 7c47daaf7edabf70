"""Initial schema: organisations, customers, contacts, and the record of import runs.

Why: erp-sync keeps each organisation's ERP customer master data in PostgreSQL. Customers are
keyed by (org_id, erp_customer_number); contacts by (customer_id, email) with citext so that
emails match case-insensitively; a partial unique index lets a customer have at most one
primary contact; contacts go with their customer (ON DELETE CASCADE). Every tenant table
carries org_id with an index. updated_at moves only when a value really changed: a BEFORE
UPDATE trigger keeps the old timestamp for an update that changes nothing, and
suppress_redundant_updates_trigger then skips writing such a row at all. import_run and
import_issue record what each run did, so that a file already applied is recognised by its
sha256 and an analyst can query the history.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UUID = pg.UUID(as_uuid=True)
NOW = sa.text("now()")


def _id() -> sa.Column:
    return sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()"))


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS citext")
    op.create_table(
        "org",
        _id(),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.UniqueConstraint("slug", name="uq_org_slug"),
    )
    op.create_table(
        "customer",
        _id(),
        sa.Column(
            "org_id", UUID, sa.ForeignKey("org.id", name="fk_customer_org_id_org"), nullable=False
        ),
        sa.Column("erp_customer_number", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", pg.CITEXT),
        sa.Column("default_currency", sa.CHAR(3), nullable=False),
        sa.Column("default_language", sa.Text, nullable=False),
        sa.Column("billing_address", pg.JSONB),
        sa.Column("shipping_address", pg.JSONB),
        sa.Column("notes", sa.Text),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        *_timestamps(),
        sa.UniqueConstraint(
            "org_id", "erp_customer_number", name="uq_customer_org_id_erp_customer_number"
        ),
    )
    op.create_table(
        "customer_contact",
        _id(),
        # The org is reached through the customer; a second per-row foreign-key check on every
        # contact insert would double the cost of a bulk load for no extra guarantee.
        sa.Column("org_id", UUID, nullable=False),
        sa.Column(
            "customer_id",
            UUID,
            sa.ForeignKey(
                "customer.id", name="fk_customer_contact_customer_id_customer", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("email", pg.CITEXT, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("role", sa.Text),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.text("false")),
        *_timestamps(),
        sa.UniqueConstraint("customer_id", "email", name="uq_customer_contact_customer_id_email"),
    )
    op.create_index("ix_customer_contact_org_id", "customer_contact", ["org_id"])
    op.create_index(
        "uq_customer_contact_one_primary",
        "customer_contact",
        ["customer_id"],
        unique=True,
        postgresql_where=sa.text("is_primary"),
    )
    op.execute(
        """
        CREATE FUNCTION erp_sync_touch_updated_at() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := OLD.updated_at;
            IF NEW IS DISTINCT FROM OLD THEN
                NEW.updated_at := now();
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    for table in ("customer", "customer_contact"):
        # Triggers fire in name order: first keep or move updated_at, then drop no-op updates.
        op.execute(
            f"CREATE TRIGGER a_touch_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION erp_sync_touch_updated_at()"
        )
        op.execute(
            f"CREATE TRIGGER z_suppress_redundant_updates BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"
        )

    counts = [
        sa.Column(name, sa.Integer, nullable=False, server_default=sa.text("0"))
        for name in (
            "rows_read", "rows_valid", "rows_rejected",
            "customers_inserted", "customers_updated", "customers_unchanged",
            "customers_deactivated", "customers_reactivated", "customers_rejected",
            "contacts_inserted", "contacts_updated", "contacts_unchanged",
        )
    ]  # fmt: skip
    op.create_table(
        "import_run",
        _id(),
        sa.Column(
            "org_id", UUID, sa.ForeignKey("org.id", name="fk_import_run_org_id_org"), nullable=False
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("encoding", sa.Text),
        sa.Column("delimiter", sa.Text),
        *counts,
        sa.Column("issues_by_code", pg.JSONB, nullable=False),
        sa.Column("file_errors", pg.JSONB, nullable=False),
        sa.Column("report_dir", sa.Text),
        sa.Column("summary", pg.JSONB, nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'partial', 'skipped', 'rejected', 'failed')",
            name="ck_import_run_status",
        ),
        sa.CheckConstraint("mode IN ('upsert', 'full')", name="ck_import_run_mode"),
    )
    op.create_index("ix_import_run_org_id_sha256", "import_run", ["org_id", "sha256"])
    op.create_index(
        "ix_import_run_org_id_started_at", "import_run", ["org_id", sa.text("started_at DESC")]
    )
    op.create_table(
        "import_issue",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "run_id",
            UUID,
            sa.ForeignKey(
                "import_run.id", name="fk_import_issue_run_id_import_run", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column(
            "org_id",
            UUID,
            sa.ForeignKey("org.id", name="fk_import_issue_org_id_org"),
            nullable=False,
        ),
        sa.Column("line", sa.BigInteger),
        sa.Column("erp_customer_number", sa.Text),
        sa.Column("column_name", sa.Text),
        sa.Column("value", sa.Text),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.CheckConstraint("severity IN ('error', 'warning')", name="ck_import_issue_severity"),
    )
    op.create_index("ix_import_issue_run_id", "import_issue", ["run_id"])
    op.create_index("ix_import_issue_org_id", "import_issue", ["org_id"])


def downgrade() -> None:
    op.drop_table("import_issue")
    op.drop_table("import_run")
    op.drop_table("customer_contact")
    op.drop_table("customer")
    op.drop_table("org")
    op.execute("DROP FUNCTION IF EXISTS erp_sync_touch_updated_at()")
    # citext stays: other schemas of the database may use it.
