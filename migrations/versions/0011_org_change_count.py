"""A count of the transactions that may have written an organisation's customers.

Why: an import decides which customers to skip from the stored customers it reads before it
takes the organisation's lock, and used to read every stored key again under the lock to check
that nothing changed meanwhile (about 2-3 s at a million customers). Every holder of the lock
(a load, a revert) now adds one to org.change_count in its transaction; an import that finds
the count it read before the lock unchanged under the lock knows the stored customers are
still what it read, and reads them only once.

Not null with a constant default: adding it rewrites no row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "org",
        sa.Column("change_count", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_column("org", "change_count")
