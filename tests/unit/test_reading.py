"""Unit tests of flows.reading: encodings, delimiters, RFC 4180 quoting, line numbers, raggedness."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from flows import reading
from flows.reading import RawExport, ReadError, read_export

FILES = Path(__file__).resolve().parent.parent / "data_files" / "reading"


def read_bytes_as_export(tmp_path: Path, data: bytes) -> RawExport:
    """Write `data` to a file and read it back."""
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    return read_export(path)


def cells(export: RawExport) -> list[tuple[object, ...]]:
    """The rows as tuples of (_line, _nfields, c0.., _extra)."""
    return export.rows.rows()


# --------------------------------------------------------------------------------------------
# Encodings


def test_a_utf8_file_is_read_with_its_header_and_text_values() -> None:
    export = read_export(FILES / "utf8_comma.csv")

    assert export.encoding == "utf-8"
    assert export.delimiter == ","
    assert export.header == ("erp_customer_number", "name", "default_currency")
    assert cells(export) == [
        (2, 3, "00042", "Müller GmbH", "EUR", None),
        (3, 3, "00043", "Café Lyon", "eur", None),
    ]


def test_the_rows_frame_has_the_documented_columns_and_types() -> None:
    rows = read_export(FILES / "utf8_comma.csv").rows

    assert dict(rows.schema) == (
        {
            "_line": pl.Int64,
            "_nfields": pl.Int32,
            "c0": pl.String,
            "c1": pl.String,
            "c2": pl.String,
            "_extra": pl.List(pl.String),
        }
    )


def test_the_sha256_is_that_of_the_file_bytes() -> None:
    path = FILES / "utf8_bom_semicolon.csv"

    assert read_export(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_export(path).source == path


def test_a_utf8_bom_is_detected_and_stripped_from_the_first_header_name() -> None:
    export = read_export(FILES / "utf8_bom_semicolon.csv")

    assert export.encoding == "utf-8-sig"
    assert export.delimiter == ";"
    assert export.header[0] == "erp_customer_number"
    assert cells(export) == [(2, 3, "00042", "Müller GmbH", "EUR", None)]


def test_a_quoted_first_header_name_after_a_utf8_bom_loses_its_quotes(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'\xef\xbb\xbf"id","name"\n1,a\n')

    assert export.header == ("id", "name")
    assert cells(export) == [(2, 2, "1", "a", None)]


@pytest.mark.parametrize(
    ("name", "delimiter"), [("utf16le_tab.csv", "\t"), ("utf16be_pipe.csv", "|")]
)
def test_utf16_with_a_bom_is_read_in_either_byte_order(name: str, delimiter: str) -> None:
    export = read_export(FILES / name)

    assert export.encoding == "utf-16"
    assert export.delimiter == delimiter
    assert export.header == ("erp_customer_number", "name", "default_currency")
    assert cells(export) == [(2, 3, "00042", "Müller € GmbH", "EUR", None)]


def test_bytes_that_are_not_utf8_are_read_as_windows_1252() -> None:
    export = read_export(FILES / "windows1252_umlauts.csv")

    assert export.encoding == "windows-1252"
    assert export.delimiter == ";"
    assert cells(export) == [(2, 3, "00042", "Müller Söhne", "Preis 5 €, Straße", None)]


def test_a_byte_undefined_in_windows_1252_rejects_the_file_naming_its_line() -> None:
    with pytest.raises(ReadError) as caught:
        read_export(FILES / "undecodable_0x81.csv")

    assert caught.value.code == "encoding"
    assert "line 3" in caught.value.message
    assert "0x81" in caught.value.message
    assert "\n" not in caught.value.message


def test_a_nul_byte_rejects_the_file_as_not_text(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"id,name\n1,a\x00b\n")

    assert caught.value.code == "encoding"
    assert "line 2" in caught.value.message


def test_utf16_without_a_bom_is_rejected_rather_than_misread(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, "id,name\n1,a\n".encode("utf-16-le"))

    assert caught.value.code == "encoding"


def test_invalid_utf8_after_a_utf8_bom_rejects_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"\xef\xbb\xbfid,name\n1,M\xfcller\n")

    assert caught.value.code == "encoding"
    assert "line 2" in caught.value.message


def test_a_utf16_file_with_an_odd_number_of_bytes_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"\xff\xfe" + "id\n1\n".encode("utf-16-le") + b"x")

    assert caught.value.code == "encoding"


# --------------------------------------------------------------------------------------------
# Delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected_from_the_header(tmp_path: Path, delimiter: str) -> None:
    data = delimiter.join(["id", "name", "notes"]) + "\n" + delimiter.join(["1", "a", "b"]) + "\n"

    export = read_bytes_as_export(tmp_path, data.encode())

    assert export.delimiter == delimiter
    assert export.header == ("id", "name", "notes")
    assert cells(export) == [(2, 3, "1", "a", "b", None)]


def test_the_delimiter_occurring_most_often_outside_quotes_wins(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'"a,b,c";"d,e";f\n1;2;3\n')

    assert export.delimiter == ";"
    assert export.header == ("a,b,c", "d,e", "f")


def test_a_tie_between_delimiters_goes_to_the_earlier_candidate(tmp_path: Path) -> None:
    assert read_bytes_as_export(tmp_path, b"a;b,c\n").delimiter == ","
    assert read_bytes_as_export(tmp_path, b"a|b\tc\n").delimiter == "\t"


def test_a_header_without_any_delimiter_is_a_one_column_file(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b"erp_customer_number\n0001\n0002,x\n")

    assert export.delimiter == ","
    assert export.header == ("erp_customer_number",)
    assert cells(export) == [(2, 1, "0001", None), (3, 2, "0002", ["x"])]


def test_header_names_are_kept_as_written_without_trimming(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b' id ,"Name ",,email\n1,2,3,4\n')

    assert export.header == (" id ", "Name ", "", "email")


# --------------------------------------------------------------------------------------------
# RFC 4180 quoting and line numbers


def test_quoted_delimiters_quotes_and_newlines_are_values_and_later_lines_stay_right() -> None:
    export = read_export(FILES / "quoted_multiline_crlf.csv")

    assert cells(export) == [
        (2, 3, "1", "Müller, Söhne", 'He said "hi"', None),
        (3, 3, "2", "Lyon", "line one\r\nline two\r\n\r\nline four", None),
        (7, 3, "3", "", "x", None),
    ]


def test_a_quoted_newline_inside_the_header_is_part_of_the_name(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,"first\nsecond"\n1,2\n')

    assert export.header == ("id", "first\nsecond")
    assert cells(export) == [(3, 2, "1", "2", None)]


def test_crlf_line_endings_leave_no_carriage_return_in_values(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,name\r\n1,a\r\n2,"b"\r\n3,\r\n')

    assert export.header == ("id", "name")
    assert cells(export) == [(2, 2, "1", "a", None), (3, 2, "2", "b", None), (4, 2, "3", "", None)]


def test_a_last_record_without_a_newline_is_read(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b"id,name\n1,a\n2,b")

    assert cells(export) == [(2, 2, "1", "a", None), (3, 2, "2", "b", None)]


def test_empty_and_quoted_empty_cells_are_empty_strings_not_nulls(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,name,notes\n1,,""\n,"",\n')

    assert cells(export) == [(2, 3, "1", "", "", None), (3, 3, "", "", "", None)]


def test_a_field_made_only_of_escaped_quotes_is_read(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,name\n1,""""\n2,"a""b,c"\n')

    assert cells(export) == [(2, 2, "1", '"', None), (3, 2, "2", 'a"b,c', None)]


def test_leading_zeros_and_number_like_text_are_kept_as_written(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b"id,amount,flag,date\n000123,1.50,TRUE,2024-01-02\n")

    assert cells(export) == [(2, 4, "000123", "1.50", "TRUE", "2024-01-02", None)]
    assert all(dtype == pl.String for name, dtype in export.rows.schema.items() if name[0] == "c")


def test_values_are_not_trimmed(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b"id,name\n 1 , a \n")

    assert cells(export) == [(2, 2, " 1 ", " a ", None)]


def test_a_quote_inside_an_unquoted_field_rejects_the_file_naming_its_line(
    tmp_path: Path,
) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b'id,name\n1,a\n2,24" monitor\n3,c\n')

    assert caught.value.code == "malformed"
    assert caught.value.message.startswith("line 3: a quote inside an unquoted field")


def test_text_after_a_closing_quote_rejects_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b'id,name\n1,"a"b\n')

    assert caught.value.code == "malformed"
    assert "line 2" in caught.value.message


def test_a_quoted_field_that_never_closes_rejects_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b'id,name\n1,a\n2,"b\n3,c\n')

    assert caught.value.code == "malformed"
    assert caught.value.message.startswith("line 3: a quoted field is never closed")


def test_doubled_quotes_inside_an_unquoted_field_are_read_as_written(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,name\n1,ab""c\n')

    assert cells(export) == [(2, 2, "1", 'ab""c', None)]


# --------------------------------------------------------------------------------------------
# Blank lines, short and long rows


def test_blank_lines_before_and_between_records_are_skipped_and_lines_stay_physical() -> None:
    export = read_export(FILES / "ragged_and_blank.csv")

    assert export.header == ("id", "name", "notes")
    assert export.rows.get_column("_line").to_list() == [5, 6, 7, 9]
    assert export.rows.get_column("c0").to_list() == ["1", "2", "3", "4"]


def test_a_short_row_has_nulls_for_its_missing_fields() -> None:
    rows = read_export(FILES / "ragged_and_blank.csv").rows

    short = rows.filter(pl.col("c0") == "2").row(0, named=True)
    assert short == {"_line": 6, "_nfields": 2, "c0": "2", "c1": "a", "c2": None, "_extra": None}


def test_a_long_row_keeps_its_surplus_fields_in_extra() -> None:
    rows = read_export(FILES / "ragged_and_blank.csv").rows

    assert rows.filter(pl.col("c0") == "3").row(0) == (7, 5, "3", "a", "b", ["c", "d"])
    assert rows.filter(pl.col("c0") == "4").row(0) == (9, 4, "4", "a", "b", [""])


def test_surplus_fields_keep_their_quoting_rules_and_the_last_record_may_lack_a_newline(
    tmp_path: Path,
) -> None:
    export = read_bytes_as_export(tmp_path, b'id\n1,"x,y",""\n2\n3,"a\nb"')

    assert cells(export) == [(2, 3, "1", ["x,y", ""]), (3, 1, "2", None), (4, 2, "3", ["a\nb"])]


def test_a_line_of_spaces_is_a_record_not_a_blank_line(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b"id,name\n  \n1,a\n")

    assert cells(export) == [(2, 1, "  ", None, None), (3, 2, "1", "a", None)]


def test_a_single_empty_quoted_field_is_a_record_not_a_blank_line(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id\n""\n\n1\n')

    assert cells(export) == [(2, 1, "", None), (4, 1, "1", None)]


# --------------------------------------------------------------------------------------------
# Empty files


@pytest.mark.parametrize(
    "data", [b"", b"\xef\xbb\xbf", b"\n\r\n\n", b"\xef\xbb\xbf\r\n", b"\xff\xfe", b"\r"]
)
def test_an_empty_file_has_no_header_and_no_rows(tmp_path: Path, data: bytes) -> None:
    export = read_bytes_as_export(tmp_path, data)

    assert export.header == ()
    assert export.delimiter == ","
    assert export.rows.height == 0
    assert dict(export.rows.schema) == (
        {"_line": pl.Int64, "_nfields": pl.Int32, "_extra": pl.List(pl.String)}
    )


def test_a_header_only_file_has_an_empty_frame_with_the_cell_columns(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b"id;name\r\n\r\n")

    assert export.header == ("id", "name")
    assert export.delimiter == ";"
    assert export.rows.height == 0
    assert export.rows.columns == ["_line", "_nfields", "c0", "c1", "_extra"]


# --------------------------------------------------------------------------------------------
# The windowed scan


def test_records_and_line_numbers_are_right_across_scan_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "_CHUNK_BYTES", 16)  # many windows, records cut across them
    body = b"".join(b'%d,"multi\nline, %d",x\n\n%d,short\n' % (i, i, i) for i in range(50))
    export = read_bytes_as_export(tmp_path, b"id,notes,flag\n" + body)

    rows = export.rows
    assert rows.height == 100
    assert rows.get_column("_line").to_list()[:4] == [2, 5, 6, 9]
    assert rows.get_column("_nfields").to_list()[:4] == [3, 2, 3, 2]
    assert rows.row(2) == (6, 3, "1", "multi\nline, 1", "x", None)
    assert rows.get_column("_line")[-1] == 1 + 4 * 50


def test_a_record_longer_than_a_scan_window_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "_CHUNK_BYTES", 8)
    long_value = "\n".join(f"line {i}, with comma" for i in range(40))
    data = f'id,notes\n1,"{long_value}"\n2,b\n'.encode()

    export = read_bytes_as_export(tmp_path, data)

    assert cells(export) == [(2, 2, "1", long_value, None), (42, 2, "2", "b", None)]
