"""The database tables as SQLAlchemy Core metadata: the source for Alembic and for the loaders."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT, JSONB, UUID

from contract import ImportMode, RunStatus

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

RUN_STATUSES = tuple(str(status) for status in RunStatus)
IMPORT_MODES = tuple(str(mode) for mode in ImportMode)


def _uuid_pk() -> Column:
    # erp_sync_new_id(): time-ordered UUIDv7 (migration 0002), so bulk inserts append to the index.
    return Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.erp_sync_new_id())


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated_at() -> Column:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())


#: The load transaction names its run here (`SET LOCAL`); every row it inserts records it.
RUN_SETTING = "erp_sync.run_id"


def _created_run_id() -> Column:
    # The run that inserted the row: one fact per run instead of a history row per insert. A
    # default, so that every insert path of a load (INSERT ... SELECT, COPY) sets it by leaving
    # the column out; NULL for rows inserted outside a load.
    return Column(
        "created_run_id",
        UUID(as_uuid=True),
        server_default=text(f"(nullif(current_setting('{RUN_SETTING}', true), ''))::uuid"),
    )


org = Table(
    "org",
    metadata,
    _uuid_pk(),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    _created_at(),
    # The rules version the organisation's raw fingerprints were taken under (migration 0009).
    Column("raw_rules", Text),
    # One more for every transaction that held the organisation's import lock (migration 0011).
    Column("change_count", BigInteger, nullable=False, server_default=text("0")),
)

customer = Table(
    "customer",
    metadata,
    _uuid_pk(),
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id"), nullable=False),
    # Byte order (migration 0007): an identifier, compared in every join of a load.
    Column("erp_customer_number", Text(collation="C"), nullable=False),
    Column("name", Text, nullable=False),
    Column("email", CITEXT),
    Column("default_currency", CHAR(3), nullable=False),
    Column("default_language", Text, nullable=False),
    Column("billing_address", JSONB(none_as_null=True)),
    Column("shipping_address", JSONB(none_as_null=True)),
    Column("notes", Text),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _created_at(),
    _updated_at(),
    # Fingerprint of what the last applied file said about this customer (loaders/fingerprint.py).
    Column("source_hash", BigInteger),
    _created_run_id(),
    # Fingerprint of the customer's raw rows when they last validated with no issue, and the
    # contacts they gave (migration 0009); NULL otherwise.
    Column("raw_hash", BigInteger),
    Column("raw_contacts", Integer),
    # Leads with org_id, so it is also the tenant index of this table.
    UniqueConstraint("org_id", "erp_customer_number"),
)

customer_contact = Table(
    "customer_contact",
    metadata,
    _uuid_pk(),
    # No foreign key to org: the contract keys contacts by customer, and a second per-row
    # foreign-key check would double the cost of inserting contacts. The org index stays.
    Column("org_id", UUID(as_uuid=True), nullable=False, index=True),
    Column(
        "customer_id",
        UUID(as_uuid=True),
        ForeignKey("customer.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("email", CITEXT, nullable=False),
    Column("name", Text),
    Column("phone", Text),
    Column("role", Text),
    Column("is_primary", Boolean, nullable=False, server_default=text("false")),
    _created_at(),
    _updated_at(),
    _created_run_id(),
    UniqueConstraint("customer_id", "email"),
    Index(
        "uq_customer_contact_one_primary",
        "customer_id",
        unique=True,
        postgresql_where=text("is_primary"),
    ),
)

import_run = Table(
    "import_run",
    metadata,
    _uuid_pk(),
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("forced", Boolean, nullable=False, server_default=text("false")),
    Column("status", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("encoding", Text),
    Column("delimiter", Text),
    Column("rows_read", Integer, nullable=False, server_default=text("0")),
    Column("rows_valid", Integer, nullable=False, server_default=text("0")),
    Column("rows_rejected", Integer, nullable=False, server_default=text("0")),
    Column("customers_inserted", Integer, nullable=False, server_default=text("0")),
    Column("customers_updated", Integer, nullable=False, server_default=text("0")),
    Column("customers_unchanged", Integer, nullable=False, server_default=text("0")),
    Column("customers_deactivated", Integer, nullable=False, server_default=text("0")),
    Column("customers_reactivated", Integer, nullable=False, server_default=text("0")),
    Column("customers_rejected", Integer, nullable=False, server_default=text("0")),
    Column("contacts_inserted", Integer, nullable=False, server_default=text("0")),
    Column("contacts_updated", Integer, nullable=False, server_default=text("0")),
    Column("contacts_unchanged", Integer, nullable=False, server_default=text("0")),
    Column("issues_by_code", JSONB(none_as_null=True), nullable=False),
    Column("file_errors", JSONB(none_as_null=True), nullable=False),
    Column("report_dir", Text),
    Column("summary", JSONB(none_as_null=True), nullable=False),
    # The source header, as read (NULL: recorded before migration 0005 kept it).
    Column("header", ARRAY(Text)),
    # A two-file export's contacts file: its header and delimiter (NULL: one file, or before 0010).
    Column("contacts_header", ARRAY(Text)),
    Column("contacts_delimiter", Text),
    # When the report files were last written; NULL while they are missing.
    Column("reports_written_at", DateTime(timezone=True)),
    # The export's as-of time (its file name or --as-of); NULL when it has none.
    Column("as_of", DateTime(timezone=True)),
    # mode 'revert': the run it reverted.
    Column("reverts", UUID(as_uuid=True)),
    # The revert run that undid this run; NULL while its changes stand.
    Column("reverted_by", UUID(as_uuid=True)),
    # When `history prune` deleted this run's change history (it can no longer be reverted).
    Column("history_pruned_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
    CheckConstraint(f"mode IN {IMPORT_MODES!r}", name="mode"),
    Index("ix_import_run_org_id_sha256", "org_id", "sha256"),
    Index("ix_import_run_org_id_started_at", "org_id", text("started_at DESC")),
    Index(
        "ix_import_run_org_id_reports_missing",
        "org_id",
        postgresql_where=text("reports_written_at IS NULL"),
    ),
)

import_issue = Table(
    "import_issue",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "run_id",
        UUID(as_uuid=True),
        ForeignKey("import_run.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id"), nullable=False, index=True),
    Column("line", BigInteger),
    Column("erp_customer_number", Text),
    Column("column_name", Text),
    Column("value", Text),
    Column("code", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("message", Text, nullable=False),
    CheckConstraint("severity IN ('error', 'warning')", name="severity"),
)

#: The rejected rows of a run as they came, so that rejected_rows.csv can be written again.
import_rejected_row = Table(
    "import_rejected_row",
    metadata,
    Column(
        "run_id",
        UUID(as_uuid=True),
        ForeignKey("import_run.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # The row's place in the run's rejected rows (the files sort them by line, stably).
    Column("position", Integer, primary_key=True),
    Column("line", BigInteger),
    # One cell per header column: NULL for a field the row lacks, '' for an empty one.
    Column("cells", ARRAY(Text), nullable=False),
    # The fields of a row longer than the header.
    Column("extra", ARRAY(Text)),
    Column("errors", Text),
    # The contacts file's name for a row of a two-file export's contacts file (its cells: the
    # customers file's columns, then the contacts file's); NULL for the customers file's rows.
    Column("file", Text),
)

# The header of the last applied file per organisation and source profile (header drift).
source_header = Table(
    "source_header",
    metadata,
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id"), primary_key=True),
    Column("profile", Text, primary_key=True),
    Column("header", JSONB(none_as_null=True), nullable=False),
    Column("delimiter", Text),
    Column("encoding", Text),
    Column("run_id", UUID(as_uuid=True), nullable=False),
    _updated_at(),
)

#: What each applied run changed: one row per customer or contact it updated (the changed
#: fields' values before and after), deleted (the whole row before) or re-inserted by a revert.
#: Rows a run inserted are found by their created_run_id, not here.
change_history = Table(
    "change_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "run_id",
        UUID(as_uuid=True),
        # Deferred: the load records its changes before it records its run, in one transaction.
        ForeignKey("import_run.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
        nullable=False,
        index=True,
    ),
    Column("org_id", UUID(as_uuid=True), nullable=False),
    Column("entity", Text, nullable=False),
    Column("action", Text, nullable=False),
    # No foreign keys: the history outlives the rows a revert deletes.
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("contact_id", UUID(as_uuid=True)),
    Column("erp_customer_number", Text, nullable=False),
    Column("contact_email", CITEXT),
    # update: {field: value before}; delete: the whole row (to_jsonb); insert: NULL
    Column("before", JSONB(none_as_null=True)),
    # update: {field: value after}; insert: the whole row; delete: NULL
    Column("after", JSONB(none_as_null=True)),
    CheckConstraint("entity IN ('customer', 'contact')", name="entity"),
    CheckConstraint("action IN ('update', 'insert', 'delete')", name="action"),
    Index("ix_change_history_org_id_erp_customer_number", "org_id", "erp_customer_number"),
)

#: How many customers or contacts a run changed per field: what the reports and the runs index
#: show without reading the history (and what is left of a run after `history prune`).
change_field_count = Table(
    "change_field_count",
    metadata,
    Column(
        "run_id",
        UUID(as_uuid=True),
        ForeignKey("import_run.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
        primary_key=True,
    ),
    Column("entity", Text, primary_key=True),
    Column("field", Text, primary_key=True),
    Column("changes", Integer, nullable=False),
)
