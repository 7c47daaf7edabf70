"""Time-ordered (UUIDv7) primary keys for customers and contacts.

Why: random v4 UUIDs scatter a bulk load's inserts over the whole primary-key index, so every
insert of a million-row import touches a random index page. UUIDv7 ids grow with time, so new
rows append to the right edge of the index and a first import of a large export stays within
a few hot pages. PostgreSQL 18 has uuidv7(); older servers (15 is supported) get the same
layout from a small SQL function: 48 bits of Unix milliseconds, then random bits, with the
version and variant bits of RFC 9562.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("org", "customer", "customer_contact", "import_run")

NATIVE = """
CREATE FUNCTION erp_sync_new_id() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$ SELECT uuidv7() $$
"""

PORTABLE = """
CREATE FUNCTION erp_sync_new_id() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(
                        floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$
"""


def upgrade() -> None:
    version = op.get_bind().execute(sa.text("SHOW server_version_num")).scalar_one()
    op.execute(NATIVE if int(version) >= 180000 else PORTABLE)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT erp_sync_new_id()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT gen_random_uuid()")
    op.execute("DROP FUNCTION erp_sync_new_id()")
