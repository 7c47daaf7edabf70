"""A fingerprint of what the last applied file said about each customer.

Why: a nightly re-sync of a large organisation changes a few percent of its customers, yet
comparing every customer and contact row with the stored ones costs most of a first load. With
the fingerprint of the file's content per customer stored beside it, the loader stages and
compares only the customers whose fingerprint differs. The fingerprint is bookkeeping, not a
value of the customer, so updated_at must not move when only it changes: customer gets its own
updated_at trigger function that compares the customer's values without source_hash (a column
added to customer later must be added to that comparison too).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VALUES = (
    "org_id, erp_customer_number, name, email, default_currency, default_language, "
    "billing_address, shipping_address, notes, is_active, created_at"
)


def upgrade() -> None:
    op.add_column("customer", sa.Column("source_hash", sa.BigInteger, nullable=True))
    new = ", ".join(f"NEW.{c.strip()}" for c in VALUES.split(","))
    old = ", ".join(f"OLD.{c.strip()}" for c in VALUES.split(","))
    op.execute(
        f"""
        CREATE FUNCTION erp_sync_touch_customer_updated_at() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := OLD.updated_at;
            IF ROW({new}) IS DISTINCT FROM ROW({old}) THEN
                NEW.updated_at := now();
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("DROP TRIGGER a_touch_updated_at ON customer")
    op.execute(
        "CREATE TRIGGER a_touch_updated_at BEFORE UPDATE ON customer "
        "FOR EACH ROW EXECUTE FUNCTION erp_sync_touch_customer_updated_at()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER a_touch_updated_at ON customer")
    op.execute(
        "CREATE TRIGGER a_touch_updated_at BEFORE UPDATE ON customer "
        "FOR EACH ROW EXECUTE FUNCTION erp_sync_touch_updated_at()"
    )
    op.execute("DROP FUNCTION erp_sync_touch_customer_updated_at()")
    op.drop_column("customer", "source_hash")
