"""Keep what rejected_contacts.csv is written from, so `report --write` rebuilds it too.

Why: a two-file export (customers and contacts, e.g. `dynamics365`) writes its contacts file's
rejected rows to rejected_contacts.csv, in that file's layout. The run recorded only the
customers file's header and the customers file's cells of each rejected row (0005), so
`erp-sync report RUN_ID --write` could not write rejected_contacts.csv, and put the contacts
file's rejected rows into rejected_rows.csv as rows of empty cells. Now:

- import_run.contacts_header / contacts_delimiter: the contacts file's header and delimiter;
  NULL for a one-file export (and for runs recorded before).
- import_rejected_row.file: the contacts file's name for a row of the contacts file, whose
  `cells` then hold the customers file's columns followed by the contacts file's; NULL for a
  row of the customers file.

Nullable, no default: adding them rewrites no row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_run", sa.Column("contacts_header", ARRAY(sa.Text), nullable=True))
    op.add_column("import_run", sa.Column("contacts_delimiter", sa.Text, nullable=True))
    op.add_column("import_rejected_row", sa.Column("file", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("import_rejected_row", "file")
    op.drop_column("import_run", "contacts_delimiter")
    op.drop_column("import_run", "contacts_header")
