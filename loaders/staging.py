"""COPY polars frames into temporary staging tables (one round trip per chunk, not per row)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import polars as pl
from sqlalchemy.engine import Connection

COPY_CHUNK_ROWS = 250_000


def copy_frame(conn: Connection, table: str, frame: pl.DataFrame, columns: Sequence[str]) -> int:
    """COPY frame[columns] into table (CSV: null is an empty field, "" an empty string).

    `table` and `columns` come from the loaders' fixed allow-lists, never from a CSV header.
    """
    if frame.height == 0:
        return 0
    cols = ", ".join(columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for offset in range(0, frame.height, COPY_CHUNK_ROWS):
            chunk = frame.slice(offset, COPY_CHUNK_ROWS).select(columns)
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False)
            copy.write(buffer.getbuffer())
    return frame.height
