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


def test_lines_of_spaces_or_tabs_are_blank_anywhere_and_lines_stay_physical() -> None:
    export = read_export(FILES / "whitespace_lines.csv")

    assert export.header == ("id", "name")
    assert cells(export) == [(4, 2, "1", "a", None), (7, 2, "2", "b", None), (9, 2, "3", "c", None)]


def test_a_line_of_tabs_in_a_tab_separated_file_is_blank_not_a_long_record(
    tmp_path: Path,
) -> None:
    export = read_bytes_as_export(tmp_path, b"id\tname\n\t\t\t\n1\ta\n \t\n")

    assert cells(export) == [(3, 2, "1", "a", None)]


def test_a_line_of_spaces_inside_a_quoted_field_is_part_of_the_value(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,notes\n1,"a\n   \n\tb"\n')

    assert cells(export) == [(2, 2, "1", "a\n   \n\tb", None)]


def test_a_single_empty_quoted_field_is_a_record_not_a_blank_line(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id\n""\n\n1\n')

    assert cells(export) == [(2, 1, "", None), (4, 1, "1", None)]


# --------------------------------------------------------------------------------------------
# Empty files


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xef\xbb\xbf",
        b"\n\r\n\n",
        b"\xef\xbb\xbf\r\n",
        b"\xff\xfe",
        b"\r",
        b"\r\r\r",
        b"   ",
        b" \t\n\t\t\r\n  \r \n",
        b"\xef\xbb\xbf  \t",
        "\ufeff \t\r\n".encode("utf-16-le"),
        b"sep=;\n",
        b"sep=;\r\n  \n",
    ],
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


# --------------------------------------------------------------------------------------------
# Line ends: LF, CRLF and a lone CR each end a line


def test_a_file_with_cr_only_line_endings_reads_every_row() -> None:
    export = read_export(FILES / "cr_only.csv")

    assert export.header == (
        "erp_customer_number",
        "name",
        "default_currency",
        "default_language",
        "notes",
    )
    assert cells(export) == [
        (2, 5, "K1", "Anna", "EUR", "de", "a@b.de", None),
        (3, 5, "K2", "Ben", "EUR", "de", "", None),
    ]


def test_mixed_line_ends_split_where_an_editor_does_and_quoted_ones_stay_in_the_value() -> None:
    export = read_export(FILES / "mixed_line_endings.csv")

    assert export.header == ("id", "name", "notes")
    assert cells(export) == [
        (2, 3, "1", "a", "x", None),
        (3, 3, "2", "b", "one\rtwo\nthree\r\nfour", None),
        (7, 3, "3", "c", "y", None),
        (9, 3, "4", "d", "z", None),
        (10, 3, "5", "e", "w", None),
    ]


def test_a_quoted_lone_cr_in_an_lf_file_counts_as_a_line_for_later_rows(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id,notes\n1,"a\rb"\n2,c\n')

    assert cells(export) == [(2, 2, "1", "a\rb", None), (4, 2, "2", "c", None)]


def test_a_cr_only_header_with_a_quoted_cr_ends_at_the_cr_outside_quotes(tmp_path: Path) -> None:
    export = read_bytes_as_export(tmp_path, b'id;"first\rsecond"\r1;2\r')

    assert export.delimiter == ";"
    assert export.header == ("id", "first\rsecond")
    assert cells(export) == [(3, 2, "1", "2", None)]


def test_a_cr_only_windows_1252_file_names_the_physical_line_of_a_bad_byte(
    tmp_path: Path,
) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"id,name\r1,M\xfcller\r2,\x81\r")

    assert caught.value.code == "encoding"
    assert caught.value.message.startswith("line 3:")


def test_a_malformed_quote_in_a_cr_only_file_names_its_physical_line(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b'id,name\r1,"a\rb"\r2,24" monitor\r')

    assert caught.value.code == "malformed"
    assert caught.value.message.startswith("line 4: a quote inside an unquoted field")


def test_cr_only_records_and_lines_are_right_across_scan_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "_CHUNK_BYTES", 16)  # many windows, records cut across them
    body = b"".join(b'%d,"multi\rline, %d",x\r\r%d,short\r' % (i, i, i) for i in range(50))
    export = read_bytes_as_export(tmp_path, b"id,notes,flag\r" + body)

    rows = export.rows
    assert rows.height == 100
    assert rows.get_column("_line").to_list()[:4] == [2, 5, 6, 9]
    assert rows.row(2) == (6, 3, "1", "multi\rline, 1", "x", None)
    assert rows.get_column("_line")[-1] == 1 + 4 * 50


# --------------------------------------------------------------------------------------------
# A header that swallowed the data is a file error, not an empty success


def test_a_header_holding_a_line_break_with_no_rows_after_it_is_rejected(
    tmp_path: Path,
) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b'"erp_customer_number,name\nK1,Anna"\n')

    assert caught.value.code == "malformed"
    assert caught.value.message.startswith("line 1: the header")
    assert "\n" not in caught.value.message


def test_a_file_split_by_unicode_line_separators_is_rejected_not_read_as_a_header(
    tmp_path: Path,
) -> None:
    data = "erp_customer_number,name\u2028K1,Anna\u2028K2,Ben\u2028".encode()

    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, data)

    assert caught.value.code == "malformed"


def test_an_absurdly_long_header_with_no_rows_is_rejected(tmp_path: Path) -> None:
    header = ",".join(f"column_{i}" for i in range(10_000))

    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, header.encode() + b"\n")

    assert caught.value.code == "malformed"


# --------------------------------------------------------------------------------------------
# Mixed encodings and mojibake


def test_utf8_lines_followed_by_a_windows_1252_line_reject_the_file_naming_that_line() -> None:
    with pytest.raises(ReadError) as caught:
        read_export(FILES / "mixed_utf8_then_1252.csv")

    assert caught.value.code == "encoding"
    assert caught.value.message.startswith(
        "line 3 is not UTF-8 (byte 0xFC) while lines before it are: the file mixes encodings"
    )


def test_utf8_in_a_windows_1252_file_is_mojibake_and_rejects_the_file_naming_its_line() -> None:
    with pytest.raises(ReadError) as caught:
        read_export(FILES / "mojibake_in_1252.csv")

    assert caught.value.code == "encoding"
    assert caught.value.message.startswith("line 3 holds UTF-8")
    assert "'Ã¶'" in caught.value.message
    assert "line 2" in caught.value.message
    assert "0xFC" in caught.value.message


@pytest.mark.parametrize(
    ("utf8", "mojibake"),
    [
        ("ü", "Ã¼"),
        ("ß", "ÃŸ"),
        ("é", "Ã©"),
        ("€", "â‚¬"),
        ("’", "â€™"),
        ("ł", "Å‚"),
        ("д", "Ð´"),
        ("日", "æ—¥"),
        ("😀", "ðŸ˜€"),
    ],
)
def test_any_utf8_character_in_a_windows_1252_file_is_recognised_as_mojibake(
    tmp_path: Path, utf8: str, mojibake: str
) -> None:
    data = b"id,name\n1,M\xfcller\n2,x" + utf8.encode() + b"x\n"

    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, data)

    assert caught.value.code == "encoding"
    assert caught.value.message.startswith("line 3 holds UTF-8")
    assert f"'{mojibake}'" in caught.value.message


def test_utf8_and_windows_1252_on_one_line_reject_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"id,name\n1,M\xc3\xbcller M\xfcller\n")

    assert caught.value.code == "encoding"
    assert caught.value.message.startswith("line 2 ")
    assert "mixes encodings" in caught.value.message


def test_letters_that_open_utf8_sequences_in_genuine_windows_1252_text_are_read() -> None:
    export = read_export(FILES / "windows1252_lead_bytes_in_text.csv")

    assert export.encoding == "windows-1252"
    assert cells(export) == [
        (2, 3, "K1", "SÃO PAULO LTDA", "Â la carte été", None),
        (3, 3, "K2", "ÉCOLE « PRIMÉE »", "café “crème”", None),
    ]


def test_a_cr_only_utf8_file_then_a_windows_1252_line_names_the_physical_line(
    tmp_path: Path,
) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"id,name\r1,M\xc3\xbcller\r2,M\xfcller\r")

    assert caught.value.message.startswith("line 3 is not UTF-8 (byte 0xFC)")


# --------------------------------------------------------------------------------------------
# Excel's sep= directive


def test_a_sep_first_line_sets_the_delimiter_and_is_skipped_but_counted() -> None:
    export = read_export(FILES / "sep_semicolon.csv")

    assert export.delimiter == ";"
    assert export.header == ("id", "name")
    assert cells(export) == [(3, 2, "1", "Müller, Hans", None)]


def test_a_quoted_sep_line_after_a_utf8_bom_sets_the_delimiter_over_detection() -> None:
    export = read_export(FILES / "sep_quoted_pipe_utf8_bom.csv")

    assert export.encoding == "utf-8-sig"
    assert export.delimiter == "|"
    assert export.header == ("id", "name, with comma")
    assert cells(export) == [(4, 2, "1", "a", None)]


@pytest.mark.parametrize(
    ("directive", "delimiter"),
    [(b"sep=,", ","), (b"SEP=;", ";"), (b"sep=\t", "\t"), (b'"sep=|"', "|"), (b"sep=;;;", ";")],
)
def test_each_delimiter_may_be_named_by_a_sep_line(
    tmp_path: Path, directive: bytes, delimiter: str
) -> None:
    data = directive + b"\r" + delimiter.join(["id", "name"]).encode() + b"\r1" + b"\r"

    export = read_bytes_as_export(tmp_path, data)

    assert export.delimiter == delimiter
    assert export.header == ("id", "name")
    assert cells(export) == [(3, 1, "1", None, None)]


def test_a_sep_line_in_utf16_sets_the_delimiter(tmp_path: Path) -> None:
    data = "\ufeffsep=;\r\nid;name\r\n1;a\r\n".encode("utf-16-le")

    export = read_bytes_as_export(tmp_path, data)

    assert (export.delimiter, export.header) == (";", ("id", "name"))
    assert cells(export) == [(3, 2, "1", "a", None)]


def test_a_sep_line_naming_an_unsupported_delimiter_rejects_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as caught:
        read_bytes_as_export(tmp_path, b"sep=:\nid:name\n1:a\n")

    assert caught.value.code == "malformed"
    assert caught.value.message.startswith("line 1: ")


# --------------------------------------------------------------------------------------------
# Lazy reading: the key column of every row, every column of some rows


LAZY_CASES = {
    "quoted line breaks, blank lines, CRLF": (
        b'k,name,note\r\n1,"A\r\nB",x\r\n\r\n2,B,"q ""x"""\r\n  \r\n3,C,\r\n1,A2,y'
    ),
    "short and long records, a lone CR in quotes": (
        b'k;name;note\n1;"a\rb"\n2;b;c;surplus;more\n\n3;c;d\n4\n2;b2;c2;s2\n'
    ),
    "a Windows-1252 file with a preamble": "sep=;\nk;name\n1;Müller\n2;Ärger\n".encode("cp1252"),
}


@pytest.mark.parametrize("data", LAZY_CASES.values(), ids=list(LAZY_CASES))
def test_a_lazy_read_parses_any_subset_of_rows_as_the_full_read_does(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    full = read_export(path)
    lazy = read_export(path, lazy=True)
    assert lazy.pending is not None and full.pending is None
    assert (lazy.header, lazy.encoding, lazy.delimiter) == (
        full.header,
        full.encoding,
        full.delimiter,
    )
    assert lazy.rows.equals(full.rows.select("_line", "_nfields"))
    assert lazy.row_prints is not None and full.row_prints is not None
    assert lazy.row_prints.equals(full.row_prints)
    for index in range(len(full.header)):
        assert lazy.column(index).equals(full.rows.get_column(f"c{index}"))
    height = full.rows.height
    masks = [
        [True] * height,
        [False] * height,
        [i % 2 == 0 for i in range(height)],
        [i % 2 == 1 for i in range(height)],
    ]
    for mask in masks:
        keep = pl.Series(mask, dtype=pl.Boolean)
        again = read_export(path, lazy=True)
        assert again.parsed(keep).rows.equals(full.rows.filter(keep)), mask
    assert read_export(path, lazy=True).parsed().rows.equals(full.rows)


def test_a_row_print_changes_with_the_record_bytes_only(tmp_path: Path) -> None:
    """The same record anywhere in a file has the same print; another spelling another."""
    first = read_bytes_as_export(tmp_path, b'k,name\n1,A\n2,B\n"1",A\n')
    second = read_bytes_as_export(tmp_path, b"k,name\n0,Z\n\n2,B\n1,A\n1,A")
    assert first.row_prints is not None and second.row_prints is not None
    a, b = first.row_prints.to_list(), second.row_prints.to_list()
    assert a[1] == b[1]  # "2,B\n" after other rows and a blank line
    assert a[0] == b[2]  # "1,A\n" moved
    assert a[2] != a[0]  # "1" quoted: the same cells, other bytes (validated again, not wrong)
    assert b[3] != b[2]  # the last record without its line end
