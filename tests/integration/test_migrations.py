"""The migration history, run for real on PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from loaders import schema
from loaders.engine import create_db_engine
from loaders.tables import metadata

TABLES = {"org", "customer", "customer_contact", "import_run", "import_issue"}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_the_migration_history_has_a_single_head() -> None:
    engine = create_db_engine("postgresql://localhost/unused")
    heads = ScriptDirectory.from_config(schema.alembic_config(engine)).get_heads()
    assert len(heads) == 1


def test_every_migration_says_why_it_exists() -> None:
    engine = create_db_engine("postgresql://localhost/unused")
    scripts = ScriptDirectory.from_config(schema.alembic_config(engine))
    for revision in scripts.walk_revisions():
        assert "Why:" in (revision.module.__doc__ or ""), revision.revision


def test_upgrade_downgrade_to_base_and_upgrade_again_work(empty_db_url: str) -> None:
    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine)
    assert _tables(engine) == TABLES
    assert schema.current_revision(engine) == schema.head_revision(engine)

    schema.downgrade(engine, "base")
    assert _tables(engine) == set()
    assert schema.current_revision(engine) is None

    schema.upgrade(engine)
    assert _tables(engine) == TABLES
    engine.dispose()


def test_the_migrated_schema_matches_the_metadata_of_loaders(empty_db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_a_schema_behind_is_refused_on_a_named_server(empty_db_url: str) -> None:
    import pytest

    from loaders.exceptions import SchemaBehindError

    engine = create_db_engine(empty_db_url)
    with pytest.raises(SchemaBehindError, match="erp-sync db upgrade"):
        schema.ensure_schema_current(engine, migrate=False)
    schema.ensure_schema_current(engine, migrate=True)
    schema.ensure_schema_current(engine, migrate=False)
    engine.dispose()
