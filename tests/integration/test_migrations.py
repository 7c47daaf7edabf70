"""The migration history, run for real on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from loaders import schema
from loaders.engine import create_db_engine
from loaders.tables import metadata

TABLES = {
    "org",
    "customer",
    "customer_contact",
    "import_run",
    "import_issue",
    "import_rejected_row",
    "source_header",
    "change_history",
    "change_field_count",
}


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


def test_two_processes_upgrading_at_once_take_turns_and_leave_no_lock(empty_db_url: str) -> None:
    # Alembic's context is global to a process: two upgrades at once need two processes.
    code = (
        "import sys; from loaders.engine import create_db_engine; from loaders.schema import "
        "upgrade; upgrade(create_db_engine(sys.argv[1]))"
    )
    root = Path(__file__).resolve().parents[2]
    started = [
        subprocess.Popen(
            [sys.executable, "-c", code, empty_db_url], cwd=root, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for process in started:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    engine = create_db_engine(empty_db_url)
    assert _tables(engine) == TABLES
    assert schema.current_revision(engine) == schema.head_revision(engine)
    with engine.connect() as conn:
        locks = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert conn.execute(sa.text(locks)).scalar_one() == 0
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


# --- 0004: stored customer numbers in the imports' form ---------------------------------------


def _org_with_customers(engine: sa.Engine, slug: str, keys: list[str]) -> None:
    """An organisation and one customer per key, inserted as an older erp-sync stored them."""
    with engine.begin() as conn:
        org_id = conn.execute(
            sa.text("INSERT INTO org (slug, name) VALUES (:slug, :slug) RETURNING id"),
            {"slug": slug},
        ).scalar_one()
        for key in keys:
            conn.execute(
                sa.text(
                    "INSERT INTO customer (org_id, erp_customer_number, name, default_currency, "
                    "default_language) VALUES (:org, :key, :key, 'EUR', 'en')"
                ),
                {"org": org_id, "key": key},
            )


def _stored_keys(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (slug, key)
            for slug, key in conn.execute(
                sa.text(
                    "SELECT o.slug, c.erp_customer_number FROM customer c "
                    "JOIN org o ON o.id = c.org_id ORDER BY o.slug, c.erp_customer_number"
                )
            )
        ]


def test_stored_keys_with_invisible_characters_are_normalised_by_the_upgrade(
    empty_db_url: str,
) -> None:
    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine, "0003")
    stored = [
        "Z\u200b-1",
        "\ufeff A-7",
        "KU\u0308-1",
        "B\u00ad-2\U000e0041",
        "007",
        "K\u00dc-2",
        "\u200e\u2003C-3",
    ]
    _org_with_customers(engine, "acme", stored)
    # the normalised spelling at another organisation is no collision
    _org_with_customers(engine, "other", ["Z-1"])

    schema.upgrade(engine)

    assert schema.current_revision(engine) == schema.head_revision(engine)
    assert _stored_keys(engine) == [
        ("acme", "007"),
        ("acme", "A-7"),
        ("acme", "B-2"),
        ("acme", "C-3"),
        ("acme", "K\u00dc-1"),
        ("acme", "K\u00dc-2"),
        ("acme", "Z-1"),
        ("other", "Z-1"),
    ]
    # the stored keys are what an import now makes of the same cells
    from validators.normalise import normalise_columns

    imported = normalise_columns(pl.DataFrame({"erp_customer_number": stored}))
    assert sorted(imported.get_column("erp_customer_number").to_list()) == [
        key for slug, key in _stored_keys(engine) if slug == "acme"
    ]
    engine.dispose()


def test_keys_that_would_collide_make_the_upgrade_fail_naming_them_and_change_nothing(
    empty_db_url: str,
) -> None:
    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine, "0003")
    _org_with_customers(engine, "acme", ["Z-1", "Z\u200b-1", "A\u00ad-2", "KU\u0308-1"])
    _org_with_customers(engine, "beta", ["K\u00dc-1", "KU\u0308-1", "\u200b"])
    before = _stored_keys(engine)

    with pytest.raises(Exception, match="migration 0004 changed nothing") as caught:
        schema.upgrade(engine)

    message = str(caught.value)
    assert "organisation 'acme': 'Z-1' and 'Z\\u200b-1' would become 'Z-1'" in message
    assert "organisation 'beta': 'KU\\u0308-1' and 'K\u00dc-1' would become 'K\u00dc-1'" in message
    assert "organisation 'beta': '\\u200b' would become blank" in message
    assert "A\\xad-2" not in message  # it changes, but collides with nothing
    assert schema.current_revision(engine) == "0003"
    assert _stored_keys(engine) == before
    engine.dispose()


def test_the_downgrade_from_0004_keeps_the_normalised_keys(empty_db_url: str) -> None:
    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine, "0003")
    _org_with_customers(engine, "acme", ["Z\u200b-1"])
    schema.upgrade(engine, "0004")
    schema.downgrade(engine, "0003")
    assert schema.current_revision(engine) == "0003"
    assert _stored_keys(engine) == [("acme", "Z-1")]
    engine.dispose()


def test_a_latin1_database_with_only_ascii_keys_upgrades_without_normalising(
    pg_admin_url: str,
) -> None:
    import uuid

    import psycopg

    from tests.conftest import _with_database, drop_database

    name = f"t_latin1_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(
            f"CREATE DATABASE \"{name}\" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    url = _with_database(pg_admin_url, name)
    engine = create_db_engine(url)
    try:
        schema.upgrade(engine, "0003")
        _org_with_customers(engine, "acme", ["Z-1", "007"])
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision(engine)
        assert _stored_keys(engine) == [("acme", "007"), ("acme", "Z-1")]
    finally:
        engine.dispose()
        drop_database(pg_admin_url, url)


# --- 0005: what the report files are written from ---------------------------------------------


def test_runs_recorded_before_0005_are_marked_written_and_have_no_stored_header(
    empty_db_url: str,
) -> None:
    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine, "0004")
    with engine.begin() as conn:
        org_id = conn.execute(
            sa.text("INSERT INTO org (slug, name) VALUES ('acme', 'acme') RETURNING id")
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO import_run (org_id, source, sha256, mode, dry_run, status, "
                "started_at, finished_at, issues_by_code, file_errors, summary) VALUES "
                "(:org, 'a.csv', 'x', 'upsert', false, 'partial', now(), now(), '{}', '[]', '{}')"
            ),
            {"org": org_id},
        )

    schema.upgrade(engine)

    with engine.connect() as conn:
        written, header = conn.execute(
            sa.text("SELECT reports_written_at, header FROM import_run")
        ).one()
    assert written is not None and header is None
    schema.downgrade(engine, "0004")
    assert "import_rejected_row" not in _tables(engine)
    engine.dispose()


# --- 0007: byte-order keys ----------------------------------------------------------------


def _key_collation(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'customer' AND column_name = 'erp_customer_number'"
            )
        ).scalar_one()


def test_the_c_collation_migration_upgrades_and_downgrades_keeping_the_customers(
    empty_db_url: str,
) -> None:
    engine = create_db_engine(empty_db_url)
    schema.upgrade(engine, "0006")
    _org_with_customers(engine, "acme", ["b-2", "B-1", "ä-3"])
    before = _stored_keys(engine)
    assert _key_collation(engine) is None  # the database's default

    schema.upgrade(engine, "0007")
    assert _key_collation(engine) == "C"
    assert sorted(_stored_keys(engine)) == sorted(before)
    with engine.connect() as conn:
        in_order = conn.execute(
            sa.text("SELECT erp_customer_number FROM customer ORDER BY erp_customer_number")
        ).scalars()
        assert list(in_order) == ["B-1", "b-2", "ä-3"]  # byte order
        # the unique index was rebuilt and still refuses a second equal key
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    "INSERT INTO customer (org_id, erp_customer_number, name, "
                    "default_currency, default_language) "
                    "SELECT org_id, 'b-2', 'x', 'EUR', 'de' FROM customer LIMIT 1"
                )
            )

    schema.downgrade(engine, "0006")
    assert _key_collation(engine) is None
    assert sorted(_stored_keys(engine)) == sorted(before)
    engine.dispose()


def test_the_latest_revision_read_from_the_files_is_the_one_alembic_finds() -> None:
    # head_revision reads the revision files' identifier lines instead of loading them
    assert schema.alembic_heads(None) == [schema.head_revision()]  # type: ignore[arg-type]
