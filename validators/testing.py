"""Build the reader's `rows` frame from plain Python records, for tests of any stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

Record = Mapping[str, str | None] | Sequence[str]


def make_rows(
    header: Sequence[str], records: Sequence[Record], first_line: int = 2
) -> pl.DataFrame:
    """Return rows as the reader makes them: `_line`, `_nfields`, `c0`..`c{k-1}`, `_extra`.

    A record is a dict keyed by header names as written (a name it leaves out is an empty
    cell; a `_line` key sets the line) or a list of raw fields, which may be shorter or
    longer than the header. Lines follow each other from `first_line` unless given.
    """
    width = len(header)
    lines: list[int] = []
    counts: list[int] = []
    cells: list[list[str | None]] = [[] for _ in range(width)]
    extra: list[list[str] | None] = []
    line = first_line
    for record in records:
        if isinstance(record, Mapping):
            line = int(record.get("_line") or line)
            fields: list[str] = [str(record.get(name) or "") for name in header]
            unknown = set(record) - set(header) - {"_line"}
            if unknown:
                raise KeyError(f"not in the header: {sorted(unknown)}")
        else:
            fields = list(record)
        lines.append(line)
        counts.append(len(fields))
        for index in range(width):
            cells[index].append(fields[index] if index < len(fields) else None)
        extra.append(fields[width:] or None)
        line += 1
    return pl.DataFrame(
        {
            "_line": pl.Series(lines, dtype=pl.Int64),
            "_nfields": pl.Series(counts, dtype=pl.Int32),
            **{f"c{i}": pl.Series(cells[i], dtype=pl.String) for i in range(width)},
            "_extra": pl.Series(extra, dtype=pl.List(pl.String)),
        }
    )
