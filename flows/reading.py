"""Read an ERP customer export into a raw, all-text polars frame: encoding, delimiter, RFC 4180."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from validators.normalise import realign

__all__ = ["RawExport", "ReadError", "read_export"]

_QUOTE = 0x22
_LF = 0x0A
_CR = 0x0D
_DELIMITERS = (",", ";", "\t", "|")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# The byte scan runs over slices of this size (cut just after a newline) so that its working
# set stays under about 100 MB whatever the file size.
_CHUNK_BYTES = 16 * 1024 * 1024
# Blank lines are empty or a lone \r (the CR of a CRLF blank line).
_LEADING_BLANK_LINES = re.compile(rb"(?:\r?\n)*")


class ReadError(Exception):
    """The file as a whole cannot be read; `code` is the file error code of the report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RawExport:
    """An export as read: its identity, how it was decoded, its header and its raw records."""

    source: Path
    sha256: str
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    rows: pl.DataFrame


def read_export(path: Path) -> RawExport:
    """Read the file at `path` into a RawExport, or raise ReadError if it cannot be read at all."""
    return _read_export(path, reparse_file=True)


def _file_identity(path: Path) -> tuple[int, ...]:
    """What changes when a file is rewritten: device, inode, size, modification time."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_export(path: Path, *, reparse_file: bool) -> RawExport:
    """Read `path`; with `reparse_file`, polars parses a UTF-8 file from disk, not from memory.

    The file's bytes are needed whole for the hash, the encoding checks and the record scan;
    the frame they turn into is about twice their size. When the text is the file's own bytes
    (UTF-8), they are dropped before polars parses the file from its path, so that the bytes
    and the frame are never in memory together. Should the file change between the two reads,
    it is read again from memory as a whole.
    """
    identity = _file_identity(path)
    raw = path.read_bytes()
    # hashlib releases the GIL: hash on a second thread while the text is scanned and parsed.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(_sha256_hex, raw)
        encoding, buf, text_start = _to_utf8(raw)
        from_file = reparse_file and buf is raw  # the text is the file's bytes, unchanged
        del raw  # when transcoded, the original bytes are dropped once hashed

        found = _find_header(buf, text_start)
        if found is None:
            return RawExport(path, digest.result(), encoding, ",", (), _empty_rows(0))
        header_start, header_end = found
        delimiter = _detect_delimiter(buf[header_start:header_end])

        records = _scan_records(buf, header_start, ord(delimiter))
        width = int(records["_nfields"][0])
        skip_lines = buf.count(b"\n", 0, header_start)
        long_records = _data_records(records).filter(pl.col("_nfields") > width)
        # the long records' own bytes (usually few), parsed after the whole file
        long_text = _long_text(buf, records, width) if long_records.height else None
        sha256 = digest.result()
    source: bytes | str = buf
    if from_file:
        del buf  # the hash thread is done with it too
        source = str(path.resolve())
    fields = _read_fields_checked(source, delimiter, width, skip_lines, records.height)
    del source
    if from_file and _file_identity(path) != identity:
        return _read_export(path, reparse_file=False)  # changed meanwhile: read it again, whole
    surplus = (
        _read_surplus(long_text, delimiter, long_records, width) if long_text is not None else None
    )
    columns = fields.get_columns()
    del fields  # `_parse_records` releases the parsed columns one by one
    header, rows = _parse_records(columns, width, records, surplus)
    return RawExport(path, sha256, encoding, delimiter, header, rows)


def _sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


# --- encoding ------------------------------------------------------------------------------


def _to_utf8(raw: bytes) -> tuple[str, bytes, int]:
    """Return (encoding name, the text as UTF-8 bytes, offset where the text starts)."""
    if raw.startswith(_UTF8_BOM):
        _reject_nul(raw)
        if not _is_utf8(raw):
            line, byte = _first_bad_byte(raw, "utf-8")
            raise ReadError(
                "encoding",
                f"line {line}: the file starts with a UTF-8 byte order mark, but byte 0x{byte:02X} "
                "is not valid UTF-8",
            )
        return "utf-8-sig", raw, len(_UTF8_BOM)
    if raw.startswith(_UTF16_BOMS):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ReadError(
                "encoding",
                f"the file starts with a UTF-16 byte order mark, but bytes at offset {exc.start} "
                f"are not valid UTF-16 ({exc.reason})",
            ) from None
        nul = text.find("\x00")
        if nul >= 0:
            raise ReadError(
                "encoding",
                f"line {text.count(chr(_LF), 0, nul) + 1}: NUL character in a UTF-16 file; "
                "the file is not text (or is UTF-32)",
            )
        return "utf-16", text.encode("utf-8"), 0
    _reject_nul(raw)
    if _is_utf8(raw):
        return "utf-8", raw, 0
    try:
        # Strict "cp1252" rejects the five bytes Windows-1252 leaves undefined (0x81 0x8D ...).
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        line, byte = _first_bad_byte(raw, "cp1252")
        raise ReadError(
            "encoding",
            f"line {line}: byte 0x{byte:02X} is neither UTF-8 nor Windows-1252; "
            "export the file as UTF-8",
        ) from None
    return "windows-1252", text.encode("utf-8"), 0


def _is_utf8(data: bytes) -> bool:
    """Validate UTF-8 without decoding: Arrow checks a zero-copy string view of the bytes."""
    offsets = pa.py_buffer(pa.array([0, len(data)], pa.int64()).buffers()[1])
    view = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        view.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _first_bad_byte(raw: bytes, codec: str) -> tuple[int, int]:
    """Return (line, byte value) of the first byte `codec` cannot decode (error path only)."""
    try:
        raw.decode(codec)
    except UnicodeDecodeError as exc:
        return _line_of(raw, exc.start), raw[exc.start]
    return 1, 0  # pragma: no cover - only called when decoding fails


def _line_of(raw: bytes, offset: int) -> int:
    """The 1-based physical line holding byte `offset`."""
    return raw.count(b"\n", 0, offset) + 1


def _reject_nul(raw: bytes) -> None:
    """A NUL byte means binary data or UTF-16 without a BOM: neither is a text export we read."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ReadError(
            "encoding",
            f"line {_line_of(raw, nul)}: NUL byte (0x00); the file is not text, "
            "or is UTF-16 without a byte order mark",
        )


# --- header and delimiter ------------------------------------------------------------------


def _find_header(buf: bytes, text_start: int) -> tuple[int, int] | None:
    """Return the byte span of the header record (the first non-blank one), or None."""
    start = _LEADING_BLANK_LINES.match(buf, text_start)
    assert start is not None  # the pattern matches the empty string
    header_start = start.end()
    rest = buf[header_start : header_start + 2]
    if rest in (b"", b"\r"):
        return None
    # The header ends at the first newline outside quotes; one step per physical header line.
    quotes = 0
    scanned = header_start
    end = buf.find(b"\n", header_start)
    while end != -1:
        quotes += buf.count(b'"', scanned, end)
        if quotes % 2 == 0:
            break
        scanned = end
        end = buf.find(b"\n", end + 1)
    if end == -1:
        end = len(buf)
    if end > header_start and buf[end - 1] == _CR:
        end -= 1
    return header_start, end


def _detect_delimiter(header: bytes) -> str:
    """Pick the candidate occurring most often outside quotes; ties go to the earlier candidate."""
    outside = b"".join(header.split(b'"')[0::2])
    counts = [outside.count(d.encode()) for d in _DELIMITERS]
    best = max(counts)
    return _DELIMITERS[counts.index(best)] if best > 0 else ","


# --- record scan ---------------------------------------------------------------------------


def _byte_view(buf: bytes) -> pl.Series:
    """A zero-copy UInt8 polars Series over `buf`."""
    array = pa.Array.from_buffers(pa.uint8(), len(buf), [None, pa.py_buffer(buf)])
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series


def _specials(chunk: pl.Series, delimiter: int) -> pl.DataFrame:
    """The quotes and newlines of `chunk`, with running counts, in one pass over its bytes.

    Columns: `pos` (offset in the chunk), `b` (the byte), `quotes` (quotes up to and including
    this byte), `newlines` (newlines up to and including it), `delims` (delimiters before it).
    """
    return (
        pl.DataFrame({"b": chunk})
        .lazy()
        .with_row_index("pos")
        .filter((pl.col("b") == _QUOTE) | (pl.col("b") == _LF) | (pl.col("b") == delimiter))
        .with_row_index("special")
        .filter(pl.col("b") != delimiter)
        # Delimiters before a row = special bytes before it - quotes and newlines before it.
        .with_row_index("kept")
        .with_columns(
            pl.col("pos").cast(pl.Int64),
            delims=pl.col("special").cast(pl.Int64) - pl.col("kept").cast(pl.Int64),
            quotes=(pl.col("b") == _QUOTE).cum_sum().cast(pl.Int64),
            newlines=(pl.col("b") == _LF).cum_sum().cast(pl.Int64),
        )
        .select("pos", "b", "delims", "quotes", "newlines")
        .collect()
    )


def _scan_records(buf: bytes, header_start: int, delimiter: int) -> pl.DataFrame:
    """Split the text from the header on into records, vectorised over the bytes.

    A newline or delimiter lies inside quotes when an odd number of quote bytes precede it
    (RFC 4180 quotes pair up, and `_check_quotes` rejects files where they do not). Records end
    at newlines outside quotes. The bytes are scanned in windows that end on a record boundary,
    so each window starts outside quotes and carries nothing over but a newline count.

    Returns one row per record, blank ones included, in file order: `start`, `end` (byte offsets;
    `end` is the terminating newline or the end of the buffer), `_line`, `_nfields`, `blank`.
    """
    data = _byte_view(buf)
    newlines = buf.count(b"\n", 0, header_start)  # newline bytes before the current window
    parts: list[pl.DataFrame] = []
    window_start = header_start
    window_size = _CHUNK_BYTES
    while window_start < len(buf):
        cut = buf.find(b"\n", window_start + window_size)
        window_end = len(buf) if cut == -1 else cut + 1
        chunk = data.slice(window_start, window_end - window_start)
        special = _specials(chunk, delimiter)
        # A newline is outside quotes when an even number of quotes precede it.
        ends = special.filter((pl.col("b") == _LF) & (pl.col("quotes") % 2 == 0))
        at_eof = window_end == len(buf)
        if not at_eof:
            if ends.height == 0:  # one record longer than the window: widen it
                window_size *= 2
                continue
            # Keep whole records only; the rest is scanned again as the start of the next window.
            size = int(ends["pos"][-1]) + 1
            chunk = chunk.slice(0, size)
            special = special.filter(pl.col("pos") < size)
        quotes = special.filter(pl.col("b") == _QUOTE)
        _check_quotes(chunk, quotes, delimiter, newlines)
        if at_eof and quotes.height % 2 == 1:
            line = newlines + (int(ends["newlines"][-1]) + 1 if ends.height else 1)
            raise ReadError(
                "malformed",
                f"line {line}: a quoted field is never closed (a quote is missing), "
                "so the rest of the file cannot be split into rows",
            )
        total = special.filter(pl.col("b") == _LF).height
        records = _count_fields(chunk, delimiter, quotes, ends, total)
        parts.append(
            records.with_columns(
                pl.col("start") + window_start,
                pl.col("end") + window_start,
                pl.col("_line") + newlines,
            )
        )
        newlines += total
        window_start += chunk.len()
        window_size = _CHUNK_BYTES

    records = pl.concat(parts)
    first_byte = data.gather(records["start"].clip(upper_bound=len(buf) - 1))
    length = records["end"] - records["start"]
    return records.with_columns(blank=(length == 0) | ((length == 1) & (first_byte == _CR)))


def _count_fields(
    chunk: pl.Series, delimiter: int, quotes: pl.DataFrame, ends: pl.DataFrame, newlines: int
) -> pl.DataFrame:
    """Per record of a window that starts outside quotes: offsets, first line, field count.

    `quotes` and `ends` are rows of `_specials`: all quotes, and the newlines outside quotes;
    `newlines` counts all newlines of the chunk.
    """
    size = chunk.len()
    end = ends["pos"]
    lines_through = ends["newlines"]  # newlines up to and including each record end
    delims = ends["delims"]  # delimiters before each record end
    pairs = ends["quotes"] // 2  # complete quoted stretches before each record end
    tail = int(end[-1]) + 1 if end.len() else 0
    if tail < size:
        # The file's last record, with no newline after it; its quotes pair up (checked before).
        in_tail = int((chunk.slice(tail) == delimiter).sum())
        end = end.append(pl.Series([size], dtype=pl.Int64))
        lines_through = lines_through.append(pl.Series([newlines], dtype=pl.Int64))
        delims = delims.append(pl.Series([(int(delims[-1]) if tail else 0) + in_tail]))
        pairs = pairs.append(pl.Series([quotes.height // 2], dtype=pl.Int64))
    zero = pl.Series([0], dtype=pl.Int64)
    starts = pl.concat([zero, end.head(-1) + 1])
    lines = pl.concat([zero, lines_through.head(-1)]) + 1

    # Subtract the delimiters inside quoted stretches: quote 2i opens a stretch and quote 2i+1
    # closes it (an escaped "" closes one stretch and opens the next, empty, one).
    counted = quotes["delims"]
    inside_each = counted.gather_every(2, offset=1) - counted.gather_every(2)
    inside_cum = pl.concat([zero, inside_each.cum_sum()])
    outside = delims - inside_cum.gather(pairs)
    nfields = outside - outside.shift(1, fill_value=0) + 1
    return pl.DataFrame(
        {"start": starts, "end": end, "_line": lines, "_nfields": nfields.cast(pl.Int32)}
    )


def _check_quotes(chunk: pl.Series, quotes: pl.DataFrame, delimiter: int, newlines: int) -> None:
    """Reject quoting that RFC 4180 does not allow, since it would misplace record boundaries.

    Quotes come in runs. Outside a quoted field an odd run opens one and must start a field; an
    even run at a field start (`""`, an empty quoted field) must also end it. Inside a quoted
    field an odd run closes it and must end the field; even runs are escaped quotes. An even run
    in the middle of an unquoted field (`ab""c`) changes nothing and is read as written.
    """
    if quotes.height == 0:
        return
    position = quotes["pos"]
    first = (position.diff().fill_null(2) != 1).arg_true()  # index of each run's first quote
    length = pl.concat([first.cast(pl.Int64), pl.Series([quotes.height], dtype=pl.Int64)]).diff()
    length = length.slice(1)
    pos = position.gather(first)
    size = chunk.len()
    before = pos - 1
    after = pos + length
    prev_byte = chunk.gather(before.clip(lower_bound=0))
    next_byte = chunk.gather(after.clip(upper_bound=size - 1))
    field_start = (before < 0) | (prev_byte == delimiter) | (prev_byte == _LF)
    field_end = (after >= size) | (next_byte == delimiter) | (next_byte == _LF) | (next_byte == _CR)
    odd = length % 2 == 1
    outside = first % 2 == 0  # the window starts outside quotes
    stray = outside & odd & ~field_start
    trailing = (~outside & odd & ~field_end) | (outside & ~odd & field_start & ~field_end)
    bad = stray | trailing
    if not bad.any():
        return
    index = int(bad.arg_true()[0])
    line = newlines + int(quotes["newlines"].gather(first)[index]) + 1
    if stray[index]:
        problem = "a quote inside an unquoted field"
    else:
        problem = "text after the closing quote of a quoted field"
    raise ReadError(
        "malformed",
        f"line {line}: {problem}; a field that holds quotes must be enclosed in quotes, with each "
        'quote inside doubled ("") as RFC 4180 requires',
    )


# --- field parsing -------------------------------------------------------------------------


def _empty_rows(width: int) -> pl.DataFrame:
    """An empty rows frame with the columns of a `width`-column header."""
    schema: dict[str, pl.DataType] = {"_line": pl.Int64(), "_nfields": pl.Int32()}
    schema.update({f"c{i}": pl.String() for i in range(width)})
    schema["_extra"] = pl.List(pl.String())
    return pl.DataFrame(schema=schema)


def _read_fields(source: bytes | str, delimiter: str, width: int, skip_lines: int) -> pl.DataFrame:
    """Parse `source` (text or a file path) with polars into `width` String columns c0..;
    surplus fields are dropped."""
    return pl.read_csv(
        source,
        has_header=False,
        separator=delimiter,
        quote_char='"',
        skip_lines=skip_lines,
        schema={f"c{i}": pl.String for i in range(width)},
        infer_schema=False,
        empty_string_is_null=False,
        truncate_ragged_lines=True,
        missing_columns="insert",
        raise_if_empty=False,
        glob=False,
    )


def _read_fields_checked(
    source: bytes | str, delimiter: str, width: int, skip_lines: int, expected: int
) -> pl.DataFrame:
    """`_read_fields`, with its failures and a record count unlike the scan's as ReadError."""
    try:
        fields = _read_fields(source, delimiter, width, skip_lines)
    except pl.exceptions.PolarsError as exc:
        raise ReadError("malformed", f"the CSV reader failed: {str(exc).splitlines()[0]}") from None
    if fields.height != expected:
        raise ReadError(
            "malformed",
            f"the CSV reader found {fields.height} records where the line scan found "
            f"{expected}; the quoting of the file is inconsistent",
        )
    return fields


def _data_records(records: pl.DataFrame) -> pl.DataFrame:
    """The scanned records after the header, blank ones left out."""
    if records["blank"].any():
        records = records.filter(~pl.col("blank"))
    return records.slice(1)


def _aligned(columns: list[pl.Series]) -> list[pl.Series]:
    """Give every column the chunk boundaries of the parsed cells (zero-copy slices).

    The parser yields a few hundred chunks per cell column, the line scan a few dozen. polars
    aligns misaligned columns by copying them whole (a String cell's view is 16 bytes: about
    650 MB for 2 M rows x 19 columns) in the first select that meets them; cutting the small
    columns at the cells' boundaries instead costs nothing.
    """
    lengths = [chunk.len() for chunk in columns[-1].get_chunks()]
    return [realign(column, lengths) for column in columns]


def _parse_records(
    fields: list[pl.Series], width: int, records: pl.DataFrame, surplus: pl.DataFrame | None
) -> tuple[tuple[str, ...], pl.DataFrame]:
    """Attach line numbers and field counts to the parsed fields; drop blank records.

    `fields` (the parsed c0.. columns) is emptied: its columns are released as they are used.
    """
    blank = records["blank"]
    columns = [records["_line"], records["_nfields"], *_drop_all(fields)]
    if blank.any():
        keep = ~blank
        # filtered one column at a time, so that the filtered copy never coexists with the
        # unfiltered frame as a whole
        columns = [columns.pop(0).filter(keep) for _ in range(len(columns))]
    header = tuple(str(value) if value is not None else "" for value in (c[0] for c in columns[2:]))
    if columns[0].len() <= 1:
        return header, _empty_rows(width)
    rows = pl.DataFrame(_aligned([c.slice(1) for c in _drop_all(columns)]))

    shortest = int(rows["_nfields"].min())  # type: ignore[arg-type]
    if shortest < width:  # only then are there cells to turn into nulls
        # one column at a time: each replaced column is released before the next is made
        for cell in _cells(width)[shortest:]:
            rows = rows.with_columns(cell)
    if surplus is None:
        # A Series, not pl.lit: broadcasting a literal would rechunk (copy) every column.
        extra = pl.Series("_extra", [None], pl.List(pl.String)).extend_constant(
            None, rows.height - 1
        )
    else:
        # Join only the line numbers, not the whole frame, to place the surplus fields.
        extra = (
            rows.select("_line")
            .join(surplus, on="_line", how="left", maintain_order="left")
            .get_column("_extra")
        )
    return header, rows.with_columns(realign(extra, [c.len() for c in rows["c0"].get_chunks()]))


def _drop_all(items: list[pl.Series]) -> list[pl.Series]:
    """Move the items out of `items` (so that the caller's list no longer holds them)."""
    out = items[:]
    items.clear()
    return out


def _cells(width: int) -> list[pl.Expr]:
    """Cells beyond a record's field count are null (missing); cells within it are text."""
    return [
        pl.when(pl.col("_nfields") > i)
        .then(pl.col(f"c{i}").fill_null(""))
        .otherwise(None)
        .alias(f"c{i}")
        for i in range(width)
    ]


def _long_text(buf: bytes, records: pl.DataFrame, width: int) -> bytes:
    """The records longer than the header, one after the other, each ending in a newline.

    They are gathered as zero-copy Arrow slices of the buffer, then one compacting filter.
    """
    offsets = pa.array(records["start"].append(pl.Series([len(buf)])).to_arrow(), pa.int64())
    spans = pa.Array.from_buffers(
        pa.large_binary(), records.height, [None, offsets.buffers()[1], pa.py_buffer(buf)]
    )
    chosen = pc.filter(spans, pa.array((records["_nfields"] > width).to_arrow()))
    chosen_offsets = pa.Array.from_buffers(
        pa.int64(), len(chosen) + 1, [None, chosen.buffers()[1]], offset=chosen.offset
    )
    first = chosen_offsets[0].as_py()
    last = chosen_offsets[len(chosen)].as_py()
    source = chosen.buffers()[2].to_pybytes()[first:last]
    if not source.endswith(b"\n"):
        source += b"\n"  # the last record of the file may lack its newline
    return source


def _read_surplus(
    source: bytes, delimiter: str, long_records: pl.DataFrame, width: int
) -> pl.DataFrame:
    """Re-parse only the records longer than the header, to collect their surplus fields.

    Parsing the whole file at the widest record's width would give every row those extra
    columns; long records are usually few, so their text (`_long_text`) is parsed on its own.
    """
    long_width = int(long_records["_nfields"].max())  # type: ignore[arg-type]
    try:
        fields = _read_fields(source, delimiter, long_width, 0)
    except pl.exceptions.PolarsError as exc:
        raise ReadError("malformed", f"the CSV reader failed: {str(exc).splitlines()[0]}") from None
    if fields.height != long_records.height:
        raise ReadError(
            "malformed",
            f"the CSV reader found {fields.height} long records where the line scan found "
            f"{long_records.height}; the quoting of the file is inconsistent",
        )
    surplus = [f"c{i}" for i in range(width, long_width)]
    return (
        pl.concat(
            [long_records.select("_line", "_nfields"), fields.select(surplus)], how="horizontal"
        )
        .with_columns(_cells(long_width)[width:])
        .select("_line", _extra=pl.concat_list(surplus).list.drop_nulls())
    )
