"""Customer numbers compare in byte order (COLLATE "C").

Why: every import looks customers up by (org_id, erp_customer_number): the unique index, the
merge's joins with the staging tables, the deactivation's anti-join. With the database's
default collation (en_US.UTF-8 on many servers) each of those comparisons goes through the
locale's collation rules, several times dearer than comparing bytes, and an index built in
locale order does not match the byte order in which the loader sorts what it appends. A
customer number is an identifier, not text for people to sort: equality is already byte
equality (the default collations are deterministic), so byte order changes no uniqueness and
no match, only the order of `ORDER BY erp_customer_number`, which nothing relies on. The
staging tables copy the column's type, collation included (loaders/upsert.py), so both sides
of every join compare alike. The unique index is rebuilt by the ALTER; the table is not
rewritten (same type).

Downgrade gives the column the database's default collation back (the index is rebuilt).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute('ALTER TABLE customer ALTER COLUMN erp_customer_number TYPE text COLLATE "C"')


def downgrade() -> None:
    op.execute('ALTER TABLE customer ALTER COLUMN erp_customer_number TYPE text COLLATE "default"')
