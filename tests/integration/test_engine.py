"""The engine's pooled connections on real PostgreSQL: no plan outlives one use of a connection."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from loaders.engine import create_db_engine


def test_a_large_load_checks_its_foreign_keys_by_index_after_small_loads_on_the_same_connection(
    db_url: str,
) -> None:
    schema = f"plans_{uuid.uuid4().hex[:8]}"
    engine = create_db_engine(db_url, pool_size=1, max_overflow=0)  # one server session
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            conn.execute(sa.text(f"CREATE TABLE {schema}.p (id bigint PRIMARY KEY)"))
            conn.execute(
                sa.text(
                    f"CREATE TABLE {schema}.c (id bigint PRIMARY KEY, "
                    f"p_id bigint NOT NULL REFERENCES {schema}.p (id))"
                )
            )
            conn.execute(sa.text(f"INSERT INTO {schema}.p SELECT generate_series(1, 10)"))
            conn.execute(sa.text(f"ANALYZE {schema}.p"))
        for i in range(1, 9):  # small loads: the session caches the check's plan for a tiny p
            with engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO {schema}.c VALUES ({i}, {i})"))
        with engine.begin() as conn:  # then many new parents and children in one transaction
            conn.execute(sa.text(f"INSERT INTO {schema}.p SELECT generate_series(100, 2099)"))
            conn.execute(
                sa.text(f"INSERT INTO {schema}.c SELECT g, g FROM generate_series(100, 2099) g")
            )
            scans = conn.execute(
                sa.text(
                    "SELECT seq_scan FROM pg_stat_xact_user_tables "
                    "WHERE schemaname = :schema AND relname = 'p'"
                ),
                {"schema": schema},
            ).scalar_one()
        # a plan cached while p was tiny scans p once per child row: 2,009 scans without the fix
        assert scans < 100
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
