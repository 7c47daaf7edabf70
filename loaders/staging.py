"""Temporary tables of a load: staging tables derived from the real ones, and COPY in and out.

COPY moves a polars frame in one round trip per chunk, not one per row. Table and column names
come from SQLAlchemy Table objects, never from a CSV header; values travel as COPY data or bound
parameters.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

COPY_CHUNK_ROWS = 250_000


#: Memory for a session's temporary tables (PostgreSQL's default is 8MB): a large import's staging
#: tables stay in memory instead of spilling to temporary files. A ceiling, not an allocation.
TEMP_BUFFERS = "1GB"

# SET LOCAL, never a start-up option or a session SET: behind PgBouncer in transaction mode the
# server session is shared. PostgreSQL refuses a new temp_buffers once a session has used
# temporary tables ("cannot be changed after any temporary tables have been accessed in the
# session"), which a pooled session may have done for another client: then that session keeps
# its size. The block's exception handler is a subtransaction; on success the SET LOCAL stays.
_RESERVE_TEMP_BUFFERS = f"""
DO $erp_sync$
BEGIN
    PERFORM set_config('temp_buffers', '{TEMP_BUFFERS}', true);
EXCEPTION WHEN invalid_parameter_value THEN
    NULL;
END
$erp_sync$
"""


def reserve_temp_buffers(conn: Connection) -> None:
    """Give this transaction's temporary tables TEMP_BUFFERS of memory where the session allows
    it (before its first temporary table); call it before creating any."""
    conn.execute(sa.text(_RESERVE_TEMP_BUFFERS))


def staging_table(
    name: str, *columns: sa.Column[Any], types: Mapping[str, TypeEngine[Any]] | None = None
) -> sa.Table:
    """A temporary table (dropped at commit) with copies of real columns: the same names, their
    types unless `types` names another, nullable, without constraints or defaults."""
    types = types or {}
    return sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(column.name, types.get(column.name, column.type)) for column in columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


class CreateTempTableAs(sa.Executable, sa.ClauseElement):
    """CREATE TEMP TABLE name ON COMMIT DROP AS <select>, the select's values as bound parameters.

    SQLAlchemy's own CreateTableAs renders the select's values as literals and has no ON COMMIT
    clause; this one is a line of SQL around the compiled select.
    """

    inherit_cache = False

    def __init__(self, name: str, query: sa.Select[Any]) -> None:
        self.query = query
        # The new table's columns, for the statements that read it.
        self.table = sa.table(
            name, *(sa.column(str(column.key), column.type) for column in query.selected_columns)
        )


@compiles(CreateTempTableAs)
def _compile_create_temp_table_as(
    element: CreateTempTableAs, compiler: SQLCompiler, **kw: Any
) -> str:
    name = compiler.preparer.format_table(element.table)
    return f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {compiler.process(element.query, **kw)}"


def _names(conn: Connection, table: sa.Table, columns: Sequence[str]) -> tuple[str, str]:
    """The quoted table name and column list; a name that is not a column of table is an error."""
    preparer = conn.dialect.identifier_preparer
    cols = ", ".join(preparer.format_column(table.c[name]) for name in columns)
    return preparer.format_table(table), cols


def copy_frame(
    conn: Connection, table: sa.Table, frame: pl.DataFrame, columns: Sequence[str]
) -> int:
    """COPY frame[columns] into table (CSV: null is an empty field, "" an empty string)."""
    if frame.height == 0:
        return 0
    name, cols = _names(conn, table, columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for offset in range(0, frame.height, COPY_CHUNK_ROWS):
            chunk = frame.slice(offset, COPY_CHUNK_ROWS).select(columns)
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False)
            copy.write(buffer.getbuffer())
    return frame.height


def read_frame(
    conn: Connection, query: sa.Select[Any], schema: dict[str, pl.DataType | type[pl.DataType]]
) -> pl.DataFrame:
    """The rows of query as a frame of schema (one column per selected column, in order).

    COPY TO STDOUT instead of fetching rows: a million rows arrive as one CSV stream. COPY takes
    no server-side parameters, so psycopg binds the query's values on the client.
    """
    compiled = query.compile(dialect=conn.dialect)
    raw = conn.connection.driver_connection
    assert raw is not None
    buffer = bytearray()
    statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:
        for block in copy:
            buffer += block
    if not buffer:
        return pl.DataFrame(schema=schema)
    return pl.read_csv(bytes(buffer), has_header=False, new_columns=list(schema), schema=schema)
