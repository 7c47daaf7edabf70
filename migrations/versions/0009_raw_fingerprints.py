"""A fingerprint of each customer's raw rows, to skip validation of unchanged customers.

Why: a nightly re-sync or a `--force` rerun of a million customers read and validated every
row (about 26 s of the 1M file) before the fingerprint of the validated rows (0003) could tell
that most customers had not changed. With a fingerprint of each customer's raw rows (every cell
as read, in file order) stored beside it, an import compares the file's raw fingerprints with
the stored ones right after reading, and a customer whose rows are byte for byte what was last
validated without any issue skips validation, staging and the merge:

- customer.raw_hash: the fingerprint of the customer's raw rows when they last validated with
  no error and no warning; NULL when they had a warning (or were never validated so), so that
  such a customer is always validated again and its warnings are reported again.
- customer.raw_contacts: how many contacts those rows gave, counted unchanged when skipped.
- org.raw_rules: the version of the rules (the validators' code, the profile, the header, the
  library versions) under which the organisation's raw fingerprints were taken. An import under
  other rules skips nothing and sets every raw_hash anew; a revert clears it.

Both customer columns are bookkeeping: they are not compared by the updated_at trigger (0003),
so writing them never moves updated_at. Nullable, no default: adding them rewrites no row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customer", sa.Column("raw_hash", sa.BigInteger, nullable=True))
    op.add_column("customer", sa.Column("raw_contacts", sa.Integer, nullable=True))
    op.add_column("org", sa.Column("raw_rules", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("org", "raw_rules")
    op.drop_column("customer", "raw_contacts")
    op.drop_column("customer", "raw_hash")
