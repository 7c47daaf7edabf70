"""Read an ERP customer export into a raw, all-text polars frame: encoding, delimiter, RFC 4180.

Physical lines are counted as an editor shows them: LF, CRLF and a lone CR each end a line, inside
quoted fields too (where they stay part of the value). Line numbers in errors and in `_line` are
those physical lines.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from validators.normalise import realign

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow (and pyarrow.compute) are imported by the functions that use them: a small file with
# LF line ends, no blank line and no over-long record never needs them (0.1 s of start-up).
_SMALL_FILE = 1 << 20
"""Files up to this many bytes are checked with Python's own UTF-8 decoder and viewed as
bytes through numpy (a copy); larger ones zero-copy through Arrow."""

__all__ = ["ExportBytes", "RawExport", "ReadError", "ReadOptions", "read_export"]

_QUOTE = 0x22
_LF = 0x0A
_CR = 0x0D
_DELIMITERS = (",", ";", "\t", "|")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_BLANK_BYTES = (0x20, 0x09, _CR)  # a blank record holds only these (the CR of a CRLF)
# The byte scan runs over slices of this size (cut just after a newline) so that its working
# set stays under about 100 MB whatever the file size.
_CHUNK_BYTES = 16 * 1024 * 1024
# Blank lines hold nothing but spaces and tabs (line ends are LF or CRLF by then).
_LEADING_BLANK_LINES = re.compile(rb"(?:[ \t]*\r?\n)*")
_BLANK_REST = re.compile(rb"[ \t\r\n]*\Z")
# Excel's directive `sep=X`, possibly quoted (`"sep=;"`) and padded with more delimiters.
_SEP_LINE = re.compile(rb'"?(?i:sep)=([^\r\n"])\1*"?\1*[ \t]*(?:\r?\n|\Z)')
# Line-break characters (Python's str.splitlines set, in UTF-8) that a header may not hold when
# no data row follows it; and the length beyond which such a header is data swallowed whole.
_LINE_BREAK = re.compile(rb"[\n\r\x0b\x0c\x1c-\x1e]|\xc2\x85|\xe2\x80[\xa8\xa9]")
_MAX_HEADER_BYTES_WITHOUT_ROWS = 64 * 1024
# A well-formed multi-byte UTF-8 sequence (RFC 3629: no overlong forms, no surrogates), for RE2
# over bytes.
_UTF8_SEQUENCE = (
    r"[\xc2-\xdf][\x80-\xbf]"
    r"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    r"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


class ReadError(Exception):
    """The file as a whole cannot be read; `code` is the file error code of the report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ReadOptions:
    """What a source profile says about its files; None and empty keep detection as it is."""

    encoding: str | None = None
    """decode with this codec (strictly) instead of detecting UTF-8, UTF-16 or Windows-1252"""
    delimiter: str | None = None
    """the field delimiter instead of detecting it from the header line"""
    skip_lines: int = 0
    """physical lines before the header that are always skipped"""
    skip_lines_starting_with: tuple[str, ...] = ()
    """lines before the header starting with one of these (after a quote) are skipped"""


_DETECT = ReadOptions()


@dataclass(frozen=True)
class RawExport:
    """An export as read: its identity, how it was decoded, its header and its raw records."""

    source: Path
    sha256: str
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    rows: pl.DataFrame
    contacts: RawExport | None = None
    """the contacts file of a two-file export, read with the same options"""
    row_prints: pl.Series | None = None
    """a hash (UInt64) of each row's record bytes, line end included, in the order of `rows`:
    the same bytes parse to the same cells (with the same header, delimiter and encoding)"""
    pending: PendingRows | None = None
    """the records whose cells are not parsed yet (`read_export(lazy=True)`): `rows` then holds
    only `_line` and `_nfields`; `parsed` parses them"""

    def parsed(self, keep: pl.Series | None = None) -> RawExport:
        """The export with its rows parsed, only those where `keep` (over `rows`) is true."""
        if self.pending is None:
            return self if keep is None else replace(self, rows=self.rows.filter(keep))
        rows = self.pending.parse(keep)
        return replace(self, rows=rows, row_prints=None, pending=None)

    def column(self, index: int) -> pl.Series:
        """Cell `index` of every row as `rows` holds it once parsed (null beyond a row's field
        count), parsing only that column of a pending export."""
        if self.pending is None:
            return self.rows.get_column(f"c{index}")
        return self.pending.column(index)


class PendingRows:
    """A scanned export's records before their cells are parsed (`read_export(lazy=True)`).

    The scan knows every record's bytes, line and field count; parsing one column of every row
    (the customer key) and every column of some rows only (those not skipped as unchanged) is
    much less work than parsing the whole file.
    """

    def __init__(
        self,
        buf: bytes,
        records: pl.DataFrame,
        *,
        delimiter: str,
        width: int,
        skip_lines: int,
        path: Path | None,
        identity: tuple[int, ...],
    ) -> None:
        self._buf: bytes | None = buf
        self.records = records
        """every record: the header first, blank ones included"""
        self.delimiter = delimiter
        self.width = width
        self.skip_lines = skip_lines
        self.path = path
        """the file whose bytes `buf` is (UTF-8 as read), parsed from disk when parsed whole"""
        self.identity = identity

    def _bytes(self) -> bytes:
        if self._buf is None:
            raise RuntimeError("the rows of this export were parsed already")
        return self._buf

    def column(self, index: int) -> pl.Series:
        """Cell `index` of every data row (nulls beyond the row's field count)."""
        name = f"c{index}"
        fields = _read_fields_checked(
            self._bytes(),
            self.delimiter,
            self.width,
            self.skip_lines,
            self.records.height,
            columns=[index],
        )
        data = ~self.records["blank"]
        frame = pl.DataFrame(
            {"_nfields": self.records["_nfields"], name: fields.get_column(name)}
        ).filter(data)
        return frame.slice(1).select(_cells(index + 1)[index]).get_column(name)

    def parse(self, keep: pl.Series | None) -> pl.DataFrame:
        """The rows (as `read_export` gives them) of the data rows where `keep` is true (every
        row when None). The bytes are let go of: a pending export is parsed once."""
        buf = self._bytes()
        records = self.records
        if keep is None:
            chosen = records
            long_text = _long_text(buf, records, self.width) if self._has_long(records) else None
            self._buf = None
            source: bytes | str = buf
            if self.path is not None:
                # the text is the file's bytes: polars parses the file, the bytes can go
                del buf
                source = str(self.path.resolve())
            fields = _read_fields_checked(
                source, self.delimiter, self.width, self.skip_lines, records.height
            )
            del source
            if self.path is not None and _file_identity(self.path) != self.identity:
                raise ReadError("malformed", "the file changed while it was read; import it again")
        else:
            # the header, then the kept data rows: blank records are dropped anyway
            data = (~records["blank"]).arg_true().slice(1)
            wanted = pl.Series([True]).extend_constant(False, records.height - 1)
            wanted = wanted.scatter(data.filter(keep), True)
            chosen = records.filter(wanted)
            source = _gather(buf, records, wanted)
            long = wanted & (records["_nfields"] > self.width) & ~records["blank"]
            long_text = _gather(buf, records, long) if long.any() else None
            del buf
            self._buf = None
            fields = _read_fields_checked(source, self.delimiter, self.width, 0, chosen.height)
            del source
        long_records = _data_records(chosen).filter(pl.col("_nfields") > self.width)
        surplus = (
            _read_surplus(long_text, self.delimiter, long_records, self.width)
            if long_text is not None
            else None
        )
        columns = fields.get_columns()
        del fields
        _, rows = _parse_records(columns, self.width, chosen, surplus)
        return rows

    def _has_long(self, records: pl.DataFrame) -> bool:
        return bool((_data_records(records)["_nfields"] > self.width).any())


class ExportBytes:
    """A file's bytes and their sha256, taken in one pass: what the import checks (was this
    file applied?) before it reads the rows, without reading or hashing the file again.

    `read_export` takes the bytes (once): the holder lets go of them, so that they can be
    dropped while the rows are parsed.
    """

    def __init__(self, path: Path, known: tuple[str, tuple[int, ...]] | None = None) -> None:
        """Read `path`; `known` is (sha256, file identity) hashed before (the sync's plan),
        trusted while the file's identity (device, inode, size, mtime) is unchanged."""
        self.path = path
        self.identity = _file_identity(path)
        data = path.read_bytes()
        if known is not None and tuple(known[1]) == self.identity == _file_identity(path):
            self.sha256 = known[0]
        else:
            self.sha256 = _sha256_hex(data)
        self._data: bytes | None = data

    def take(self) -> bytes | None:
        """The bytes, the first time; None afterwards."""
        data, self._data = self._data, None
        return data


def read_export(
    path: Path,
    options: ReadOptions | None = None,
    loaded: ExportBytes | None = None,
    *,
    lazy: bool = False,
) -> RawExport:
    """Read the file at `path` into a RawExport, or raise ReadError if it cannot be read at all.

    `options` (a source profile's file options) fix the encoding or delimiter and skip lines
    before the header; without them everything is detected. `loaded` holds the file's bytes
    and sha256 already read (`ExportBytes`): they are used instead of reading the file again.
    With `lazy`, the records are scanned and checked but their cells are not parsed yet
    (`RawExport.pending`): `RawExport.parsed` parses all or some of them.
    """
    return _read_export(
        path, reparse_file=True, options=options or _DETECT, loaded=loaded, lazy=lazy
    )


def file_identity(path: Path) -> tuple[int, ...]:
    """What changes when a file is rewritten: device, inode, size, modification time."""
    return _file_identity(path)


def _file_identity(path: Path) -> tuple[int, ...]:
    """What changes when a file is rewritten: device, inode, size, modification time."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_export(
    path: Path,
    *,
    reparse_file: bool,
    options: ReadOptions = _DETECT,
    loaded: ExportBytes | None = None,
    lazy: bool = False,
) -> RawExport:
    """Read `path`; with `reparse_file`, polars parses a UTF-8 file from disk, not from memory.

    The file's bytes are needed whole for the hash, the encoding checks and the record scan;
    the frame they turn into is about twice their size. When the text is the file's own bytes
    (UTF-8), they are dropped before polars parses the file from its path, so that the bytes
    and the frame are never in memory together. Should the file change between the two reads,
    it is read again from memory as a whole.
    """
    given = loaded.take() if loaded is not None and loaded.path == path else None
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest: Future[str]
        if given is not None and loaded is not None:
            identity, raw = loaded.identity, given
            digest = Future()
            digest.set_result(loaded.sha256)  # hashed as the bytes were read
        else:
            identity = _file_identity(path)
            raw = path.read_bytes()
            # hashlib releases the GIL: hash on a second thread while the text is scanned.
            digest = pool.submit(_sha256_hex, raw)
        del given
        if options.encoding is None:
            encoding, buf, text_start = _to_utf8(raw)
        else:
            encoding, buf, text_start = _decode_as(raw, options.encoding)
        buf, quoted_crs = _split_lines_at_lone_crs(buf)
        from_file = reparse_file and buf is raw  # the text is the file's bytes, unchanged
        del raw  # when transcoded, the original bytes are dropped once hashed

        if options.skip_lines or options.skip_lines_starting_with:
            text_start = _skip_preamble(buf, text_start, options)
        found = _find_header(buf, text_start)
        if found is None:
            return RawExport(
                path, digest.result(), encoding, options.delimiter or ",", (), _empty_rows(0)
            )
        header_start, header_end, directive = found
        delimiter = (
            options.delimiter or directive or _detect_delimiter(buf[header_start:header_end])
        )

        records = _scan_records(buf, header_start, ord(delimiter))
        if quoted_crs is not None:
            # lone CRs kept inside quoted fields still end physical lines
            records = records.with_columns(
                pl.col("_line") + quoted_crs.search_sorted(records["start"]).cast(pl.Int64)
            )
        width = int(records["_nfields"][0])
        skip_lines = buf.count(b"\n", 0, header_start)
        data_records = _data_records(records)
        if data_records.height == 0:
            _reject_swallowed_data(buf[header_start:header_end], int(records["_line"][0]))
        long_records = data_records.filter(pl.col("_nfields") > width)
        row_prints = _record_prints(buf, records)
        if lazy:
            header_end = int(records["start"][1]) if records.height > 1 else len(buf)
            header_text = buf[header_start:header_end]
            header_fields = _read_fields_checked(
                header_text if header_text.endswith(b"\n") else header_text + b"\n",
                delimiter,
                width,
                0,
                1,
            )
            header = tuple("" if v is None else str(v) for v in header_fields.row(0))
            pending = PendingRows(
                buf,
                records,
                delimiter=delimiter,
                width=width,
                skip_lines=skip_lines,
                path=path if from_file else None,
                identity=identity,
            )
            rows = data_records.select("_line", "_nfields")
            return RawExport(
                path,
                digest.result(),
                encoding,
                delimiter,
                header,
                rows,
                row_prints=row_prints,
                pending=pending,
            )
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
        return _read_export(
            path, reparse_file=False, options=options
        )  # changed meanwhile: read it again, whole
    surplus = (
        _read_surplus(long_text, delimiter, long_records, width) if long_text is not None else None
    )
    columns = fields.get_columns()
    del fields  # `_parse_records` releases the parsed columns one by one
    header, rows = _parse_records(columns, width, records, surplus)
    return RawExport(path, sha256, encoding, delimiter, header, rows, row_prints=row_prints)


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
                f"line {_line_of(text[:nul].encode(), nul)}: NUL character in a UTF-16 file; "
                "the file is not text (or is UTF-32)",
            )
        return "utf-16", text.encode("utf-8"), 0
    _reject_nul(raw)
    if _is_utf8(raw):
        return "utf-8", raw, 0
    _reject_mixed_encodings(raw)
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


def _decode_as(raw: bytes, codec: str) -> tuple[str, bytes, int]:
    """Decode with the codec a profile names (strictly); a BOM of that encoding is dropped."""
    name = codecs.lookup(codec).name
    if name in ("utf-8", "utf-8-sig"):
        _reject_nul(raw)
        if not _is_utf8(raw):
            line, byte = _first_bad_byte(raw, "utf-8")
            raise ReadError(
                "encoding",
                f"line {line}: byte 0x{byte:02X} is not valid UTF-8, the encoding the profile "
                "names",
            )
        bom = raw.startswith(_UTF8_BOM)
        return ("utf-8-sig" if bom else "utf-8"), raw, len(_UTF8_BOM) if bom else 0
    try:
        text = raw.decode(name)
    except UnicodeDecodeError as exc:
        line = 1 if name.startswith("utf-16") else _line_of(raw, exc.start)
        raise ReadError(
            "encoding",
            f"line {line}: byte 0x{raw[exc.start]:02X} is not valid {codec}, the encoding the "
            "profile names",
        ) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise ReadError("encoding", f"NUL character in a {codec} file; the file is not text")
    if name == "cp1252" and not raw.isascii() and _is_utf8(raw):
        # read as Windows-1252, UTF-8 bytes would be stored as mojibake: refuse, as detection does
        line, _ = _first_bad_byte(raw, "ascii")
        raise ReadError(
            "encoding",
            f"line {line}: the profile names windows-1252, but the file is UTF-8 (its "
            f"non-ASCII text would be stored as mojibake); export it as Windows-1252",
        )
    return ("windows-1252" if name == "cp1252" else name), text.encode("utf-8"), 0


def _skip_preamble(buf: bytes, start: int, options: ReadOptions) -> int:
    """The offset after the lines that a profile says come before the header."""
    for _ in range(options.skip_lines):
        end = buf.find(b"\n", start)
        start = len(buf) if end == -1 else end + 1
    prefixes = tuple(p.encode("utf-8") for p in options.skip_lines_starting_with)
    longest = max((len(p) for p in prefixes), default=0) + 8
    while (
        prefixes
        and start < len(buf)
        and (buf[start : start + longest].lstrip(b'" \t').startswith(prefixes))
    ):
        end = buf.find(b"\n", start)
        start = len(buf) if end == -1 else end + 1
    return start


def _is_utf8(data: bytes) -> bool:
    """Validate UTF-8 without decoding: Arrow checks a zero-copy string view of the bytes (a
    small file is decoded by Python, which accepts exactly the same bytes: strict UTF-8)."""
    if len(data) <= _SMALL_FILE:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    import pyarrow as pa

    try:
        _as_binary(data).view(pa.large_string()).validate(full=True)
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
    """The 1-based physical line holding byte `offset`: LF, CRLF and a lone CR each end a line."""
    return (
        raw.count(b"\n", 0, offset)
        + raw.count(b"\r", 0, offset)
        - raw.count(b"\r\n", 0, offset)
        + 1
    )


def _reject_mixed_encodings(raw: bytes) -> None:
    """Reject bytes that are not UTF-8 as a whole but hold UTF-8 text: the file mixes encodings.

    Called for a file that is not valid UTF-8, before reading it as Windows-1252. The rule: if the
    bytes hold any well-formed multi-byte UTF-8 sequence (a lead byte 0xC2-0xF4 followed by the
    continuation bytes 0x80-0xBF that RFC 3629 requires), the file is rejected. That covers both
    faces of one mistake: UTF-8 lines before a line that is not UTF-8 (an export appended to in
    another encoding), and UTF-8 read wrongly as Windows-1252 (mojibake: `Ã¼` for ü, `â‚¬` for
    €, `â€™` for ’, `Å‚` for ł, `Ð´` for д), since a Windows-1252 text re-encodes to exactly
    these bytes. Storing either would store mojibake.

    False positives: a genuine Windows-1252 text trips the rule only where one of `Â`-`ô`
    (0xC2-0xF4) is directly followed by the right number of the symbols 0x80-0xBF (`€ ‚ „ … ’ “
    ” • – — ™ ¡ ¢ £ ¥ § © « ® ° ± ² ³ µ ¶ · ¹ º » ¼ ½ ¾ ¿`, the no-break space, ...): `Ã` or
    `Â` before a symbol, or an upper-case accented letter or `ß` with a symbol glued to it
    (`CAFÉ”`). Such text is rare in customer master data; the file is then refused with the
    line named, and exporting it as UTF-8 reads it right. Letters followed by letters, digits,
    spaces or punctuation (`SÃO PAULO`, `été`, `« PRIMÉE »`) never trip it.
    """
    import pyarrow.compute as pc

    found = pc.find_substring_regex(_as_binary(raw), _UTF8_SEQUENCE)[0].as_py()
    if found < 0:
        return
    bad_line, bad_byte = _first_bad_byte(raw, "utf-8")
    sequence = re.compile(_UTF8_SEQUENCE.encode("latin-1")).match(raw, found)
    assert sequence is not None  # RE2 found it there
    utf8 = sequence.group().decode("utf-8")
    line = _line_of(raw, found)
    advice = "export the whole file as UTF-8"
    if line < bad_line:
        message = (
            f"line {bad_line} is not UTF-8 (byte 0x{bad_byte:02X}) while lines before it are: "
            f"the file mixes encodings (line {line} holds UTF-8 '{utf8}'); {advice}"
        )
    elif line == bad_line:
        message = (
            f"line {line} holds UTF-8 ('{utf8}') and a byte that is not UTF-8 "
            f"(0x{bad_byte:02X}): the file mixes encodings; {advice}"
        )
    else:
        mojibake = sequence.group().decode("cp1252", errors="backslashreplace")
        message = (
            f"line {line} holds UTF-8 that Windows-1252 would read as '{mojibake}' (it is "
            f"'{utf8}'), while line {bad_line} is not UTF-8 (byte 0x{bad_byte:02X}): the file "
            f"mixes encodings; {advice}"
        )
    raise ReadError("encoding", message)


def _as_binary(data: bytes) -> pa.Array:
    """A zero-copy Arrow large_binary array holding `data` as its one value."""
    import pyarrow as pa

    offsets = pa.py_buffer(pa.array([0, len(data)], pa.int64()).buffers()[1])
    return pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])


def _reject_nul(raw: bytes) -> None:
    """A NUL byte means binary data or UTF-16 without a BOM: neither is a text export we read."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ReadError(
            "encoding",
            f"line {_line_of(raw, nul)}: NUL byte (0x00); the file is not text, "
            "or is UTF-16 without a byte order mark",
        )


# --- line ends -----------------------------------------------------------------------------


def _split_lines_at_lone_crs(buf: bytes) -> tuple[bytes, pl.Series | None]:
    """Turn each lone CR outside quotes into LF, so that the CSV parser ends lines there too.

    Returns the text (`buf` itself when it holds no lone CR outside quotes) and the sorted
    offsets of the lone CRs inside quoted fields (None if there are none): they stay in their
    values, and still end physical lines. A byte for a byte: offsets do not move. LF files
    cost one memchr; CRLF files one RE2 pass; only files with lone CRs are scanned for quotes.
    """
    if b"\r" not in buf or not _has_lone_cr(buf):
        return buf, None
    outside, inside = _lone_crs(buf)
    if outside.len():
        text = bytearray(buf)
        np.frombuffer(text, dtype=np.uint8)[outside.to_numpy()] = _LF
        buf = bytes(text)
        del text
    return buf, inside if inside.len() else None


def _has_lone_cr(buf: bytes) -> bool:
    """Whether `buf` holds a CR that is not followed by LF (RE2 over the bytes, no copy)."""
    import pyarrow.compute as pc

    return bool(pc.match_substring_regex(_as_binary(buf), r"\r(?:[^\n]|$)")[0].as_py())


def _lone_crs(buf: bytes) -> tuple[pl.Series, pl.Series]:
    """The offsets of the lone CRs outside quotes and of those inside quotes, in windows.

    A byte lies inside quotes when an odd number of quotes precede it (see `_scan_records`,
    whose quote checks reject files where quotes do not pair up); the count carries across
    windows, so they may be cut anywhere.
    """
    data = _byte_view(buf)
    size = len(buf)
    quotes = 0
    outside: list[pl.Series] = []
    inside: list[pl.Series] = []
    for window_start in range(0, size, _CHUNK_BYTES):
        found = (
            pl.DataFrame({"b": data.slice(window_start, _CHUNK_BYTES)})
            .lazy()
            .with_row_index("pos")
            .filter((pl.col("b") == _QUOTE) | (pl.col("b") == _CR))
            .with_columns(
                pl.col("pos").cast(pl.Int64) + window_start,
                quoted=((pl.col("b") == _QUOTE).cum_sum().cast(pl.Int64) + quotes) % 2 == 1,
            )
            .collect()
        )
        crs = found.filter(pl.col("b") == _CR)
        quotes += found.height - crs.height
        following = crs["pos"] + 1
        lone = (following >= size) | (data.gather(following.clip(upper_bound=size - 1)) != _LF)
        crs = crs.filter(lone)
        outside.append(crs.filter(~pl.col("quoted"))["pos"])
        inside.append(crs.filter(pl.col("quoted"))["pos"])
    return pl.concat(outside), pl.concat(inside)


# --- header and delimiter ------------------------------------------------------------------


def _find_header(buf: bytes, text_start: int) -> tuple[int, int, str | None] | None:
    """Return the byte span of the header record (the first non-blank one) and the delimiter a
    `sep=X` line before it names, or None when there is no header.

    Excel's `sep=X` directive is read on the first non-blank line (after a BOM, quoted or not,
    with any case of `sep`); the header is then the next non-blank line.
    """
    header_start = _skip_blank_lines(buf, text_start)
    directive = None
    sep = _SEP_LINE.match(buf, header_start)
    if sep is not None:
        directive = sep.group(1).decode()
        if directive not in _DELIMITERS:
            raise ReadError(
                "malformed",
                f"line {_line_of(buf, header_start)}: the line {sep.group().strip().decode()!r} "
                f"names {directive!r} as the delimiter; the delimiter must be a comma, "
                "semicolon, tab or pipe",
            )
        header_start = _skip_blank_lines(buf, sep.end())
    if _BLANK_REST.match(buf, header_start):
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
    return header_start, end, directive


def _skip_blank_lines(buf: bytes, start: int) -> int:
    """The offset of the first line from `start` on that holds more than spaces and tabs."""
    blank = _LEADING_BLANK_LINES.match(buf, start)
    assert blank is not None  # the pattern matches the empty string
    return blank.end()


def _reject_swallowed_data(header: bytes, line: int) -> None:
    """Refuse a header with no rows after it that looks like it swallowed the rows.

    A header followed by no data row is a valid, empty export; but if that header holds a line
    break (inside quotes, or one the reader does not split lines at, such as U+2028 or NEL) or is
    longer than 64 KiB, the rows were most likely read as part of it: line ends that are not
    line ends here, or a quote that opens the file and closes at its end. Succeeding with 0 rows
    would hide that, so the file is refused instead.
    """
    if _LINE_BREAK.search(header):
        problem = "holds a line break"
    elif len(header) > _MAX_HEADER_BYTES_WITHOUT_ROWS:
        problem = f"is {len(header):,} bytes long"
    else:
        return
    raise ReadError(
        "malformed",
        f"line {line}: the header {problem} and no data row follows it, so the rows seem to "
        "have been read as part of the header; check the file's line ends and quoting",
    )


def _detect_delimiter(header: bytes) -> str:
    """Pick the candidate occurring most often outside quotes; ties go to the earlier candidate."""
    outside = b"".join(header.split(b'"')[0::2])
    counts = [outside.count(d.encode()) for d in _DELIMITERS]
    best = max(counts)
    return _DELIMITERS[counts.index(best)] if best > 0 else ","


# --- record scan ---------------------------------------------------------------------------


def _byte_view(buf: bytes) -> pl.Series:
    """A zero-copy UInt8 polars Series over `buf` (a copy, without Arrow, for a small file)."""
    if len(buf) <= _SMALL_FILE:
        return pl.Series(np.frombuffer(buf, dtype=np.uint8))
    import pyarrow as pa

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

    Line ends are LF or CRLF here (`_split_lines_at_lone_crs` ran before), and `_line` counts
    LF bytes only: the caller adds the lone CRs kept inside quotes.

    Returns one row per record, blank ones included, in file order: `start`, `end` (byte offsets;
    `end` is the terminating newline or the end of the buffer), `_line`, `_nfields`, `blank`
    (the record holds nothing but spaces and tabs).
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
        _check_quotes(chunk, quotes, delimiter, buf, window_start)
        if at_eof and quotes.height % 2 == 1:
            line = _line_of(buf, window_start + (int(ends["pos"][-1]) + 1 if ends.height else 0))
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
    return records.with_columns(blank=_blank_records(buf, data, records))


def _blank_records(buf: bytes, data: pl.Series, records: pl.DataFrame) -> pl.Series:
    """Which records hold nothing but spaces and tabs (and the CR of a CRLF).

    Only records that are empty or start with such a byte are looked at (usually the blank lines
    alone): their text is gathered from zero-copy Arrow slices of the buffer and matched at once.
    """
    length = records["end"] - records["start"]
    first_byte = data.gather(records["start"].clip(upper_bound=len(buf) - 1))
    blank = length == 0
    candidate = (length > 0) & first_byte.is_in(_BLANK_BYTES)
    if not candidate.any():
        return blank
    import pyarrow as pa
    import pyarrow.compute as pc

    # Each record's slice runs to the next record's start: its line end is included.
    offsets = pa.array(records["start"].append(pl.Series([len(buf)])).to_arrow(), pa.int64())
    spans = pa.Array.from_buffers(
        pa.large_binary(), records.height, [None, offsets.buffers()[1], pa.py_buffer(buf)]
    )
    chosen = pc.filter(spans, pa.array(candidate.to_arrow()))
    whitespace = pl.Series(pc.match_substring_regex(chosen, r"^[ \t\r\n]*$"))
    return blank.scatter(candidate.arg_true(), whitespace)


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


def _check_quotes(
    chunk: pl.Series, quotes: pl.DataFrame, delimiter: int, buf: bytes, offset: int
) -> None:
    """Reject quoting that RFC 4180 does not allow, since it would misplace record boundaries.

    Quotes come in runs. Outside a quoted field an odd run opens one and must start a field; an
    even run at a field start (`""`, an empty quoted field) must also end it. Inside a quoted
    field an odd run closes it and must end the field; even runs are escaped quotes. An even run
    in the middle of an unquoted field (`ab""c`) changes nothing and is read as written.
    `chunk` is the window of `buf` that starts at `offset`.
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
    line = _line_of(buf, offset + int(pos[index]))
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


def _read_fields(
    source: bytes | str,
    delimiter: str,
    width: int,
    skip_lines: int,
    columns: list[int] | None = None,
) -> pl.DataFrame:
    """Parse `source` (text or a file path) with polars into `width` String columns c0.. (only
    `columns` of them when given); surplus fields are dropped."""
    return pl.read_csv(
        source,
        columns=columns,
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
    source: bytes | str,
    delimiter: str,
    width: int,
    skip_lines: int,
    expected: int,
    columns: list[int] | None = None,
) -> pl.DataFrame:
    """`_read_fields`, with its failures and a record count unlike the scan's as ReadError."""
    try:
        fields = _read_fields(source, delimiter, width, skip_lines, columns)
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
    """The non-blank records longer than the header, one after the other, each ending in a
    newline."""
    return _gather(buf, records, (records["_nfields"] > width) & ~records["blank"])


def _spans(buf: bytes, records: pl.DataFrame) -> pa.Array:
    """Each record's bytes as a zero-copy Arrow slice of `buf`, up to the next record's start
    (its line end included; the last one up to the end of `buf`)."""
    import pyarrow as pa

    offsets = pa.array(records["start"].append(pl.Series([len(buf)])).to_arrow(), pa.int64())
    return pa.Array.from_buffers(
        pa.large_binary(), records.height, [None, offsets.buffers()[1], pa.py_buffer(buf)]
    )


def _gather(buf: bytes, records: pl.DataFrame, chosen: pl.Series) -> bytes:
    """The records where `chosen` is true, one after the other,
    each ending in a newline; `records` are consecutive records of `buf`, each running to the
    next one's start.

    They are gathered as zero-copy Arrow slices of the buffer, then one compacting filter.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    picked = pc.filter(_spans(buf, records), pa.array(chosen.to_arrow()))
    if not len(picked):
        return b""
    offsets = pa.Array.from_buffers(
        pa.int64(), len(picked) + 1, [None, picked.buffers()[1]], offset=picked.offset
    )
    first = offsets[0].as_py()
    last = offsets[len(picked)].as_py()
    source = picked.buffers()[2].to_pybytes()[first:last]
    if not source.endswith(b"\n"):
        source += b"\n"  # the last record of the file may lack its newline
    return source


def _record_prints(buf: bytes, records: pl.DataFrame) -> pl.Series:
    """A hash of each data row's record bytes (line end included), in the order of the rows."""
    data = ~records["blank"]
    if len(buf) <= _SMALL_FILE:
        # without Arrow: slices of the buffer as one literal
        start = pl.col("start")
        spans = records.select(
            pl.lit(buf, dtype=pl.Binary).bin.slice(
                start, start.shift(-1, fill_value=len(buf)) - start
            )
        ).to_series()
    else:
        spans = pl.Series(_spans(buf, records))
    return spans.filter(data).slice(1).hash(seed=0x52415752).alias("_print")


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
