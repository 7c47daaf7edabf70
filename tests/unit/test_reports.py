"""Unit tests of the reports package: summary.json, errors.csv, rejected_rows.csv, the HTML pages."""

from __future__ import annotations

import csv
import io
import json
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import ISSUE_COLUMNS, RunStatus, Summary
from reporting import FORMULA_PREFIXES, neutralise_formulas, write_index, write_run_reports
from reporting.pages import STATUS_MEANINGS

HEADER = ["erp_customer_number", "name", "default_currency", "default_language", "email"]


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def make_summary(**overrides: Any) -> Summary:
    """A contract summary with distinct figures, so a mixed-up figure shows."""
    document: dict[str, Any] = {
        "run_id": "6f1c2a8e-0000-4000-8000-000000000001",
        "org": "acme",
        "source": "/inbox/acme/customers-2024-05-01.csv",
        "sha256": "ab" * 32,
        "mode": "upsert",
        "dry_run": False,
        "status": "partial",
        "started_at": "2024-05-01T02:00:00+00:00",
        "finished_at": "2024-05-01T02:00:07.250000+00:00",
        "encoding": "utf-8",
        "delimiter": ";",
        "rows": {"read": 17, "valid": 12, "rejected": 5},
        "customers": {
            "inserted": 3,
            "updated": 4,
            "unchanged": 6,
            "deactivated": 7,
            "reactivated": 8,
            "rejected": 2,
        },
        "contacts": {"inserted": 9, "updated": 10, "unchanged": 11},
        "issues_by_code": {"currency": 3, "email": 1, "rejected_with_customer": 1},
        "file_errors": [],
        "warnings": ["unknown column ignored: fax"],
        "report_dir": "/reports/6f1c2a8e-0000-4000-8000-000000000001",
    }
    return Summary.model_validate(document | overrides)


def make_issues(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """An issues frame in the validators' shape, from tuples in ISSUE_COLUMNS order."""
    return pl.DataFrame(
        rows,
        schema={name: (pl.Int64 if name == "line" else pl.String) for name in ISSUE_COLUMNS},
        orient="row",
    )


def make_rejected(rows: list[dict[str, Any]], width: int = len(HEADER)) -> pl.DataFrame:
    """A rejected-rows frame: _line, _nfields, c0..c{width-1}, _extra, errors."""
    schema: dict[str, Any] = {"_line": pl.Int64, "_nfields": pl.Int32}
    schema |= {f"c{i}": pl.String for i in range(width)}
    schema |= {"_extra": pl.List(pl.String), "errors": pl.String}
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows], schema=schema)


SAMPLE_ISSUES = make_issues(
    [
        (2, "C-1", "default_currency", "XYZ", "currency", "error", "not an active ISO 4217 code"),
        (3, "C-2", "default_currency", "EURO", "currency", "error", "not an active ISO 4217 code"),
        (4, "C-2", None, None, "rejected_with_customer", "error", "another row of C-2 failed"),
        (5, "C-3", "default_currency", "XYZ", "currency", "error", "not an active ISO 4217 code"),
        (6, "C-4", "email", "a@@b", "email", "error", "not an email address"),
    ]
)

SAMPLE_REJECTED = make_rejected(
    [
        {
            "_line": 5,
            "_nfields": 5,
            "c0": "C-3",
            "c1": "Gamma",
            "c2": "XYZ",
            "c3": "en",
            "c4": "",
            "errors": "currency",
        },
        {
            "_line": 2,
            "_nfields": 5,
            "c0": "C-1",
            "c1": "Alpha",
            "c2": "XYZ",
            "c3": "de-DE",
            "c4": "a@x.de",
            "errors": "currency",
        },
        {
            "_line": 3,
            "_nfields": 5,
            "c0": "C-2",
            "c1": "Beta; GmbH",
            "c2": "EURO",
            "c3": "de",
            "c4": "",
            "errors": "currency",
        },
    ]
)


def write_sample(run_dir: Path, **kwargs: Any) -> Path:
    """Write a run's reports with the sample data, any argument overridable."""
    arguments: dict[str, Any] = {
        "summary": make_summary(),
        "issues": SAMPLE_ISSUES,
        "header": HEADER,
        "rejected_rows": SAMPLE_REJECTED,
        "delimiter": ";",
    }
    arguments.update(kwargs)
    write_run_reports(run_dir, **arguments)
    return run_dir


def read_csv_rows(path: Path, delimiter: str) -> list[list[str]]:
    """All records of a CSV file as the stdlib reads them (a second, independent reader)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


class Element:
    """One parsed HTML element: its tag, attributes, all text inside it and where it ends."""

    def __init__(self, tag: str, attrs: dict[str, str | None], index: int) -> None:
        self.tag, self.attrs, self.text = tag, attrs, ""
        self.end = index + 1  # index after its last descendant in PageParser.elements

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class PageParser(HTMLParser):
    """Collects every element with its attributes, text and extent, for assertions on a page."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), len(self.elements))
        self.elements.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, dict(attrs), len(self.elements)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag == tag:
                for element in self.open[i:]:
                    element.end = len(self.elements)
                del self.open[i:]
                break

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.text += data

    def by_id(self, element_id: str) -> Element:
        matches = [e for e in self.elements if e.attrs.get("id") == element_id]
        assert len(matches) == 1, f"expected one element with id {element_id!r}, got {len(matches)}"
        return matches[0]

    def select(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        """Elements by tag, class and attributes (data_code= matches data-code)."""
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and (cls is None or e.has_class(cls))
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def within(self, container: Element) -> list[Element]:
        """The descendants of container, in document order."""
        start = self.elements.index(container)
        return self.elements[start + 1 : container.end]


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert not parser.open, f"unclosed elements: {[e.tag for e in parser.open]}"
    return parser


def svg_bars(page: PageParser, svg_id: str) -> list[Element]:
    """The bar rectangles inside one SVG chart."""
    svg = page.by_id(svg_id)
    return [e for e in page.within(svg) if e.tag == "rect" and e.has_class("bar")]


# --------------------------------------------------------------------------------------------
# Formula neutralisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES, ids=repr)
def test_a_cell_starting_with_a_formula_character_gets_a_leading_quote(prefix: str) -> None:
    frame = pl.DataFrame({"value": [f"{prefix}SUM(A1:A9)", prefix]})
    assert neutralise_formulas(frame)["value"].to_list() == [f"'{prefix}SUM(A1:A9)", f"'{prefix}"]


def test_neutralising_leaves_normal_values_nulls_and_other_types_untouched() -> None:
    frame = pl.DataFrame(
        {
            "text": ["EUR", "a=b", " =x", "'=already", "", None, "x-1", "mail@example.com"],
            "number": [1, -2, 3, 4, 5, 6, 7, 8],
        }
    )
    result = neutralise_formulas(frame)
    assert result["text"].to_list() == frame["text"].to_list()
    assert result["number"].to_list() == frame["number"].to_list()
    assert result.schema == frame.schema


def test_neutralising_treats_every_string_column() -> None:
    frame = pl.DataFrame({"a": ["=1", "ok"], "b": ["+49 30 1234", "-"], "c": [1, 2]})
    result = neutralise_formulas(frame)
    assert result.to_dicts() == [
        {"a": "'=1", "b": "'+49 30 1234", "c": 1},
        {"a": "ok", "b": "'-", "c": 2},
    ]


# --------------------------------------------------------------------------------------------
# summary.json
# --------------------------------------------------------------------------------------------


def test_summary_json_is_the_summary_with_its_extra_keys(tmp_path: Path) -> None:
    summary = make_summary(org="müller-gmbh")
    run_dir = write_sample(tmp_path / "deep" / "run", summary=summary)
    text = (run_dir / "summary.json").read_text(encoding="utf-8")
    assert json.loads(text) == summary.to_json_dict()
    assert "müller-gmbh" in text  # ensure_ascii=False: readable, not \u escapes
    assert text.startswith('{\n  "run_id"')


# --------------------------------------------------------------------------------------------
# errors.csv
# --------------------------------------------------------------------------------------------


def test_errors_csv_has_the_contract_header_and_one_row_per_issue_in_the_given_order(
    tmp_path: Path,
) -> None:
    run_dir = write_sample(tmp_path)
    rows = read_csv_rows(run_dir / "errors.csv", ",")
    assert rows[0] == [
        "line",
        "erp_customer_number",
        "column",
        "value",
        "code",
        "severity",
        "message",
    ]
    assert rows[1:] == [
        ["2", "C-1", "default_currency", "XYZ", "currency", "error", "not an active ISO 4217 code"],
        [
            "3",
            "C-2",
            "default_currency",
            "EURO",
            "currency",
            "error",
            "not an active ISO 4217 code",
        ],
        ["4", "C-2", "", "", "rejected_with_customer", "error", "another row of C-2 failed"],
        ["5", "C-3", "default_currency", "XYZ", "currency", "error", "not an active ISO 4217 code"],
        ["6", "C-4", "email", "a@@b", "email", "error", "not an email address"],
    ]


def test_errors_csv_neutralises_formulas_and_quotes_awkward_values(tmp_path: Path) -> None:
    issues = make_issues(
        [
            (2, "=HYPERLINK(1)", "email", "@evil", "email", "error", "-bad"),
            (3, "C,1", "name", 'say "hi"\nthere', "length", "error", "too long"),
        ]
    )
    run_dir = write_sample(tmp_path, issues=issues)
    frame = pl.read_csv(run_dir / "errors.csv", infer_schema=False)
    assert frame.columns == list(ISSUE_COLUMNS)
    assert frame.row(0) == ("2", "'=HYPERLINK(1)", "email", "'@evil", "email", "error", "'-bad")
    assert frame.row(1) == ("3", "C,1", "name", 'say "hi"\nthere', "length", "error", "too long")


def test_errors_csv_of_a_run_without_issues_holds_only_the_header(tmp_path: Path) -> None:
    run_dir = write_sample(tmp_path, issues=make_issues([]))
    assert (run_dir / "errors.csv").read_text(encoding="utf-8") == ",".join(ISSUE_COLUMNS) + "\n"


# --------------------------------------------------------------------------------------------
# rejected_rows.csv
# --------------------------------------------------------------------------------------------


def test_rejected_rows_csv_keeps_the_source_header_delimiter_and_line_order(tmp_path: Path) -> None:
    run_dir = write_sample(tmp_path)
    rows = read_csv_rows(run_dir / "rejected_rows.csv", ";")
    assert rows[0] == [*HEADER, "errors"]
    assert rows[1:] == [
        ["C-1", "Alpha", "XYZ", "de-DE", "a@x.de", "currency"],
        ["C-2", "Beta; GmbH", "EURO", "de", "", "currency"],
        ["C-3", "Gamma", "XYZ", "en", "", "currency"],
    ]
    assert (run_dir / "rejected_rows.csv").read_text(encoding="utf-8").splitlines()[0] == (
        "erp_customer_number;name;default_currency;default_language;email;errors"
    )


def test_a_short_row_is_written_with_its_missing_fields_empty(tmp_path: Path) -> None:
    rejected = make_rejected(
        [{"_line": 7, "_nfields": 2, "c0": "C-9", "c1": "Short", "errors": "field_count"}]
    )
    run_dir = write_sample(tmp_path, rejected_rows=rejected, delimiter=",")
    rows = read_csv_rows(run_dir / "rejected_rows.csv", ",")
    assert rows[1] == ["C-9", "Short", "", "", "", "field_count"]


def test_a_long_row_keeps_its_surplus_fields_in_the_errors_text(tmp_path: Path) -> None:
    rejected = make_rejected(
        [
            {
                "_line": 4,
                "_nfields": 7,
                "c0": "C-8",
                "c1": "Long",
                "c2": "EUR",
                "c3": "en",
                "c4": "x@y.de",
                "_extra": ["surplus", "with;delimiter"],
                "errors": "field_count",
            },
        ]
    )
    run_dir = write_sample(tmp_path, rejected_rows=rejected, delimiter=";")
    rows = read_csv_rows(run_dir / "rejected_rows.csv", ";")
    assert rows[1][:5] == ["C-8", "Long", "EUR", "en", "x@y.de"]
    assert len(rows[1]) == len(HEADER) + 1
    errors = rows[1][-1]
    assert errors.startswith("field_count")
    # The surplus fields are written as CSV in the source delimiter: parsing them gives them back.
    extra_text = errors.split("extra fields: ", 1)[1]
    assert next(csv.reader(io.StringIO(extra_text), delimiter=";")) == ["surplus", "with;delimiter"]


def test_a_source_column_named_errors_gets_a_distinct_errors_column(tmp_path: Path) -> None:
    header = ["erp_customer_number", "name", " Errors ", "errors_2"]
    rejected = make_rejected(
        [
            {
                "_line": 2,
                "_nfields": 4,
                "c0": "1",
                "c1": "N",
                "c2": "old",
                "c3": "older",
                "errors": "currency",
            }
        ],
        width=4,
    )
    run_dir = write_sample(tmp_path, header=header, rejected_rows=rejected, delimiter=",")
    rows = read_csv_rows(run_dir / "rejected_rows.csv", ",")
    assert rows == [[*header, "errors_3"], ["1", "N", "old", "older", "currency"]]
    names = [name.strip().casefold() for name in rows[0]]
    assert len(set(names)) == len(names)


def test_rejected_rows_csv_neutralises_cells_and_header_names(tmp_path: Path) -> None:
    header = ["erp_customer_number", "name", "=cmd|' /C calc'!A0"]
    rejected = make_rejected(
        [
            {
                "_line": 2,
                "_nfields": 3,
                "c0": "@SUM(1)",
                "c1": "\tTabbed",
                "c2": "+1",
                "errors": "-x",
            }
        ],
        width=3,
    )
    run_dir = write_sample(tmp_path, header=header, rejected_rows=rejected, delimiter="|")
    rows = read_csv_rows(run_dir / "rejected_rows.csv", "|")
    assert rows == [
        ["erp_customer_number", "name", "'=cmd|' /C calc'!A0", "errors"],
        ["'@SUM(1)", "'\tTabbed", "'+1", "'-x"],
    ]


def test_empty_rejected_rows_give_a_file_with_the_header_line_only(tmp_path: Path) -> None:
    run_dir = write_sample(tmp_path, rejected_rows=make_rejected([]), delimiter="\t")
    text = (run_dir / "rejected_rows.csv").read_text(encoding="utf-8")
    assert text == "\t".join([*HEADER, "errors"]) + "\n"


def test_a_frame_with_no_columns_counts_as_no_rejected_rows_and_no_issues(tmp_path: Path) -> None:
    run_dir = write_sample(tmp_path, rejected_rows=pl.DataFrame(), issues=pl.DataFrame())
    assert read_csv_rows(run_dir / "rejected_rows.csv", ";") == [[*HEADER, "errors"]]
    assert read_csv_rows(run_dir / "errors.csv", ",") == [list(ISSUE_COLUMNS)]


def expected_cell(value: str | None) -> str:
    """What a source cell reads back as: neutralised, and empty when it was missing."""
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


cell_text = st.one_of(
    st.none(),
    st.text(
        alphabet=st.sampled_from(list("ab ,;|\t\"'\r\n=+-@éß中🙂")) | st.characters(codec="utf-8"),
        max_size=12,
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    cells=st.lists(st.lists(cell_text, min_size=3, max_size=3), min_size=1, max_size=8),
)
def test_rejected_rows_csv_round_trips_through_polars(
    tmp_path: Path, delimiter: str, cells: list[list[str | None]]
) -> None:
    header = ["erp_customer_number", "name", "notes"]
    rejected = make_rejected(
        [
            {"_line": 2 + i, "_nfields": 3, "c0": row[0], "c1": row[1], "c2": row[2], "errors": "e"}
            for i, row in enumerate(cells)
        ],
        width=3,
    )
    run_dir = write_sample(
        tmp_path / "round-trip", header=header, rejected_rows=rejected, delimiter=delimiter
    )
    back = pl.read_csv(
        run_dir / "rejected_rows.csv",
        separator=delimiter,
        infer_schema=False,
        empty_string_is_null=False,
    )
    assert back.columns == [*header, "errors"]
    got = [[value or "" for value in row[:3]] for row in back.rows()]
    assert got == [[expected_cell(value) for value in row] for row in cells]
    assert read_csv_rows(run_dir / "rejected_rows.csv", delimiter)[1:] == [
        [*(expected_cell(value) for value in row), "e"] for row in cells
    ]


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------


def test_report_html_figures_equal_the_summary(tmp_path: Path) -> None:
    summary = make_summary()
    page = parse_page(write_sample(tmp_path, summary=summary) / "report.html")
    for block in ("rows", "customers", "contacts"):
        for name, value in getattr(summary, block).model_dump().items():
            element = page.by_id(f"{block}-{name}")
            assert element.attrs["data-figure"] == f"{block}.{name}"
            assert int(element.text) == value, f"{block}.{name}"
    assert page.by_id("org").text == "acme"
    assert page.by_id("file-name").text == "customers-2024-05-01.csv"
    assert page.by_id("status").attrs["data-status"] == "partial"
    assert "2024-05-01 02:00:00" in page.by_id("started-at").text
    assert "2024-05-01 02:00:07" in page.by_id("finished-at").text
    assert "acme" in next(e for e in page.elements if e.tag == "title").text


def test_report_html_is_self_contained(tmp_path: Path) -> None:
    text = (write_sample(tmp_path) / "report.html").read_text(encoding="utf-8")
    page = parse_page(tmp_path / "report.html")
    assert not page.select("script")
    assert not [e for e in page.elements if e.tag == "link" and e.attrs.get("rel") == "stylesheet"]
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert page.select("style")


def test_report_html_has_one_svg_bar_per_issue_code_and_per_column(tmp_path: Path) -> None:
    page = parse_page(write_sample(tmp_path) / "report.html")
    code_bars = svg_bars(page, "chart-issues-by-code")
    assert {bar.attrs["data-code"]: int(bar.attrs["data-count"] or 0) for bar in code_bars} == {
        "currency": 3,
        "email": 1,
        "rejected_with_customer": 1,
    }
    assert len(code_bars) == 3
    assert code_bars[0].attrs["data-code"] == "currency"  # most frequent first
    column_bars = svg_bars(page, "chart-issues-by-column")
    assert {bar.attrs["data-column"]: int(bar.attrs["data-count"] or 0) for bar in column_bars} == {
        "default_currency": 3,
        "email": 1,
        "(whole row)": 1,
    }


def test_report_html_shows_what_changed_per_field_and_the_first_changes(tmp_path: Path) -> None:
    from contract.changes import ChangeOverview, FieldCount, ShownChange

    changes = ChangeOverview(
        counts=(FieldCount("customer", "default_currency", 3), FieldCount("contact", "name", 1)),
        first=(ShownChange("0000123", None, "default_currency", '"EUR"', '"USD"'),),
        shown_limit=50,
        inserted={"customer": 2},
    )
    page = parse_page(write_sample(tmp_path, changes=changes) / "report.html")
    bars = svg_bars(page, "chart-changes-by-field")
    assert [(bar.attrs["data-field"], int(bar.attrs["data-count"] or 0)) for bar in bars] == [
        ("customer default_currency", 3),
        ("contact name", 1),
    ]
    [row] = page.select("tr", cls="change")
    assert "0000123" in row.text and '"EUR"' in row.text and '"USD"' in row.text


def test_report_html_has_no_what_changed_section_without_changes(tmp_path: Path) -> None:
    page = parse_page(write_sample(tmp_path) / "report.html")
    assert not [e for e in page.elements if e.attrs.get("id") == "changes"]


def test_report_html_counts_the_most_frequent_bad_values_per_code(tmp_path: Path) -> None:
    issues = make_issues(
        [
            (i, f"C-{i}", "default_currency", value, "currency", "error", "bad")
            for i, value in enumerate(
                ["XYZ"] * 4 + ["EURO"] * 3 + ["A", "B", "C", "D", "E"], start=2
            )
        ]
    )
    page = parse_page(write_sample(tmp_path, issues=issues) / "report.html")
    block = page.select("div", cls="top-values-code", data_code="currency")[0]
    rows = [e for e in page.within(block) if e.tag == "tr"][1:]
    cells = [e for e in page.within(block) if e.tag == "td"]
    pairs = [(cells[i].text, int(cells[i + 1].text)) for i in range(0, len(cells), 2)]
    assert len(rows) == 5
    assert pairs == [("XYZ", 4), ("EURO", 3), ("A", 1), ("B", 1), ("C", 1)]


def test_report_html_gives_a_hint_for_each_code_present(tmp_path: Path) -> None:
    summary = make_summary(file_errors=[{"code": "error_budget", "message": "too many errors"}])
    page = parse_page(write_sample(tmp_path, summary=summary) / "report.html")
    hints = {
        e.attrs["data-code"]: e.text
        for e in page.select("li")
        if e.attrs.get("data-code") and e.text and e.attrs.get("class") is None
    }
    assert set(hints) == {"error_budget", "currency", "email", "rejected_with_customer"}
    assert "EUR" in hints["currency"]
    assert page.select("li", cls="file-error", data_code="error_budget")


def test_report_html_lists_the_first_50_rejected_rows_with_line_numbers_and_errors(
    tmp_path: Path,
) -> None:
    rejected = make_rejected(
        [
            {"_line": 200 - i, "_nfields": 2, "c0": f"C-{i}", "c1": "x", "errors": f"err {i}"}
            for i in range(80)
        ]
    )
    page = parse_page(write_sample(tmp_path, rejected_rows=rejected) / "report.html")
    shown = page.select("tr", cls="rejected-row")
    assert len(shown) == 50
    lines = [int(row.attrs["data-line"] or 0) for row in shown]
    assert lines == sorted(lines) and lines[0] == 121
    first_cells = [e for e in page.within(shown[0]) if e.tag == "td"]
    assert first_cells[0].text == "121" and first_cells[1].text == "err 79"
    assert [e.text for e in first_cells[2:4]] == ["C-79", "x"]
    assert all(e.has_class("missing") for e in first_cells[4:7])
    assert "50 of 80" in page.by_id("rejected-rows").text


def test_report_html_escapes_hostile_values(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>'
    summary = make_summary(
        org=hostile,
        source=f"/inbox/{hostile}.csv",
        file_errors=[{"code": hostile, "message": hostile}],
        warnings=[hostile],
    )
    issues = make_issues([(2, hostile, hostile, hostile, hostile, "error", hostile)])
    rejected = make_rejected(
        [
            {
                "_line": 2,
                "_nfields": 2,
                "c0": hostile,
                "c1": hostile,
                "_extra": [hostile],
                "errors": hostile,
            }
        ],
        width=2,
    )
    run_dir = write_sample(
        tmp_path, summary=summary, issues=issues, header=[hostile, "name"], rejected_rows=rejected
    )
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in text
    assert "&lt;script&gt;" in text
    page = parse_page(run_dir / "report.html")
    assert not page.select("script")
    assert page.by_id("org").text == hostile  # shown as text, intact


SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def assert_markup_free(path: Path) -> PageParser:
    """The page holds no element and no event handler that a hostile value could have made."""
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    page = parse_page(path)
    assert not page.select("script") and not page.select("img")
    assert not [e for e in page.elements if any(name.startswith("on") for name in e.attrs)]
    return page


def test_script_and_img_payloads_in_the_data_reach_report_html_only_as_text(
    tmp_path: Path,
) -> None:
    summary = make_summary(
        org=SCRIPT,
        source=f"/inbox/{IMG}.csv",
        issues_by_code={},
        file_errors=[{"code": IMG, "message": SCRIPT}],
        warnings=[f"unknown column {IMG!r} ignored"],
    )
    issues = make_issues(
        [
            (2, SCRIPT, IMG, SCRIPT, "currency", "error", IMG),
            (3, IMG, SCRIPT, IMG, SCRIPT, "warning", SCRIPT),
        ]
    )
    rejected = make_rejected(
        [
            {"_line": 2, "_nfields": 3, "c0": SCRIPT, "c1": IMG, "_extra": [IMG], "errors": SCRIPT},
            {"_line": 3, "_nfields": 2, "c0": IMG, "c1": SCRIPT, "errors": IMG},
        ],
        width=2,
    )
    run_dir = write_sample(
        tmp_path, summary=summary, issues=issues, header=[SCRIPT, IMG], rejected_rows=rejected
    )
    page = assert_markup_free(run_dir / "report.html")

    assert page.by_id("org").text == SCRIPT
    assert page.by_id("file-name").text == f"{IMG}.csv"
    assert page.by_id("source").attrs["title"] == f"/inbox/{IMG}.csv"
    assert SCRIPT in next(e for e in page.elements if e.tag == "title").text
    table = page.by_id("rejected-rows-table")
    headings = [e.text for e in page.within(table) if e.tag == "th"]
    assert headings == ["line", "errors", SCRIPT, IMG, "extra fields"]
    cells = [e.text for e in page.within(table) if e.tag == "td"]
    assert cells == ["2", SCRIPT, SCRIPT, IMG, IMG, "3", IMG, IMG, SCRIPT, ""]
    bars = svg_bars(page, "chart-issues-by-column")
    assert {bar.attrs["data-column"] for bar in bars} == {SCRIPT, IMG}
    assert {bar.attrs["data-code"] for bar in svg_bars(page, "chart-issues-by-code")} == {
        "currency",
        SCRIPT,
    }
    assert page.select("li", cls="file-error", data_code=IMG)[0].text == f"{IMG}: {SCRIPT}"
    top = page.select("div", cls="top-values-code", data_code="currency")[0]
    assert [e.text for e in page.within(top) if e.tag == "code"][1] == SCRIPT


def test_script_and_img_payloads_in_summaries_reach_index_html_only_as_text(
    tmp_path: Path,
) -> None:
    runs = [
        make_run(SCRIPT, IMG, "2024-05-01T02:00:00+00:00", source=f"/inbox/{IMG}.csv"),
        make_run(IMG, "r-2", "2024-05-02T02:00:00+00:00", source=f"/inbox/x{SCRIPT}"),
    ]
    page = assert_markup_free(write_index(tmp_path, runs))
    assert sorted(s.attrs["data-org"] or "" for s in page.select("section", cls="org")) == sorted(
        [SCRIPT, IMG]
    )
    assert sorted(e.text for e in page.select("h2")) == sorted([SCRIPT, IMG])
    row = page.select("tr", cls="run", data_run_id=IMG)[0]
    assert f"{IMG}.csv" in row.text
    links = {e.attrs["href"] for e in page.select("a", cls="report-link")}
    # the run id is one percent-encoded path segment: a link cannot leave the report folder
    assert links == {
        "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/report.html",
        "r-2/report.html",
    }
    nav = [
        e.attrs["href"] or ""
        for e in page.elements
        if e.tag == "a" and e.attrs.get("href", "").startswith("#")
    ]
    assert all(page.by_id(href[1:]) for href in nav) and len(nav) == 2


def test_report_html_inlines_report_css_unchanged(tmp_path: Path) -> None:
    import reporting as reports

    css = (Path(reports.__file__).parent / "templates" / "report.css").read_text(encoding="utf-8")
    page = parse_page(write_sample(tmp_path) / "report.html")
    styles = page.select("style")
    assert len(styles) == 1 and styles[0].text.strip() == css.strip()


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_status_gets_its_badge_and_meaning(tmp_path: Path, status: RunStatus) -> None:
    page = parse_page(write_sample(tmp_path, summary=make_summary(status=status)) / "report.html")
    badge = page.by_id("status")
    assert badge.text == status and badge.has_class(f"status-{status}")
    assert page.by_id("status-meaning").text == STATUS_MEANINGS[status]


def test_a_dry_run_says_so_on_the_report(tmp_path: Path) -> None:
    page = parse_page(write_sample(tmp_path, summary=make_summary(dry_run=True)) / "report.html")
    assert page.by_id("dry-run").text == "dry run"


def test_a_rejected_file_without_figures_still_gets_a_report(tmp_path: Path) -> None:
    summary = Summary.model_validate(
        {
            "run_id": "r-1",
            "org": "acme",
            "source": "x.csv",
            "sha256": None,
            "mode": "upsert",
            "dry_run": False,
            "status": "rejected",
            "started_at": "2024-05-01T02:00:00+00:00",
            "finished_at": "2024-05-01T02:00:00.100000+00:00",
            "encoding": None,
            "delimiter": None,
            "file_errors": [{"code": "missing_column", "message": "no column name"}],
        }
    )
    run_dir = write_sample(
        tmp_path, summary=summary, issues=make_issues([]), rejected_rows=make_rejected([])
    )
    page = parse_page(run_dir / "report.html")
    assert page.by_id("rows-read").text == "0"
    assert page.select("li", data_code="missing_column")


def test_fifty_thousand_issues_are_reported_quickly(tmp_path: Path) -> None:
    n = 50_000
    issues = pl.DataFrame(
        {
            "line": pl.int_range(2, n + 2, eager=True),
            "erp_customer_number": pl.int_range(0, n, eager=True).cast(pl.String),
            "column": pl.Series(["default_currency", "email", "name", None] * (n // 4)),
            "value": (pl.int_range(0, n, eager=True) % 97).cast(pl.String),
            "code": pl.Series(["currency", "email", "required", "field_count"] * (n // 4)),
            "severity": ["error"] * n,
            "message": ["bad"] * n,
        }
    )
    rejected = pl.concat(
        [make_rejected([]), issues.select(_line="line", c0="erp_customer_number", errors="code")],
        how="diagonal_relaxed",
    )
    started = time.perf_counter()
    run_dir = write_sample(tmp_path, issues=issues, rejected_rows=rejected)
    assert time.perf_counter() - started < 10
    assert pl.read_csv(run_dir / "errors.csv", infer_schema=False).height == n
    assert len(svg_bars(parse_page(run_dir / "report.html"), "chart-issues-by-code")) == 4


# --------------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------------


def make_run(org: str, run_id: str, started_at: str, **overrides: Any) -> Summary:
    return make_summary(org=org, run_id=run_id, started_at=started_at, **overrides)


def test_index_html_lists_runs_newest_first_grouped_per_organisation(tmp_path: Path) -> None:
    runs = [
        make_run("beta", "b-old", "2024-05-01T02:00:00+00:00"),
        make_run("acme", "a-mid", "2024-05-02T02:00:00+00:00"),
        make_run("acme", "a-new", "2024-05-03T01:00:00+02:00"),  # 23:00 UTC on the 2nd
        make_run("acme", "a-newest", "2024-05-03T02:00:00Z"),
        make_run("beta", "b-new", "2024-05-04T02:00:00+00:00"),
    ]
    path = write_index(tmp_path / "reports", runs)
    assert path == tmp_path / "reports" / "index.html"
    page = parse_page(path)
    assert [s.attrs["data-org"] for s in page.select("section", cls="org")] == ["acme", "beta"]
    order = [row.attrs["data-run-id"] for row in page.select("tr", cls="run")]
    assert order == ["a-newest", "a-new", "a-mid", "b-new", "b-old"]
    assert page.by_id("runs-total").text == "5"


def test_index_html_shows_each_runs_figures(tmp_path: Path) -> None:
    run = make_run("acme", "a-1", "2024-05-01T02:00:00+00:00")
    page = parse_page(write_index(tmp_path, [run], {"a-1": 7}))
    row = page.select("tr", cls="run")[0]
    cells = {
        e.attrs["data-figure"]: int(e.text) for e in page.within(row) if e.attrs.get("data-figure")
    }
    assert cells == {
        "rows.read": 17,
        "rows.valid": 12,
        "rows.rejected": 5,
        "customers.inserted": 3,
        "fields_changed": 7,
        "customers.updated": 4,
    }
    assert "customers-2024-05-01.csv" in row.text and "partial" in row.text


def test_index_html_links_to_each_runs_report_and_the_links_resolve(tmp_path: Path) -> None:
    report_dir = tmp_path / "reports"
    runs = [
        make_run("acme", "11111111-1111-4111-8111-111111111111", "2024-05-01T02:00:00+00:00"),
        make_run("beta", "22222222-2222-4222-8222-222222222222", "2024-05-02T02:00:00+00:00"),
    ]
    for run in runs:
        write_sample(report_dir / run.run_id, summary=run)
    page = parse_page(write_index(report_dir, runs))
    links = [e.attrs["href"] or "" for e in page.select("a", cls="report-link")]
    assert sorted(links) == sorted(f"{run.run_id}/report.html" for run in runs)
    assert all((report_dir / link).is_file() for link in links)


def test_index_html_charts_applied_and_rejected_rows_of_the_last_30_runs(tmp_path: Path) -> None:
    runs = [
        make_run(
            "acme",
            f"run-{day:02d}",
            f"2024-05-{day:02d}T02:00:00+00:00",
            rows={"read": day + 1, "valid": day, "rejected": 1},
        )
        for day in range(1, 32)
    ]
    page = parse_page(write_index(tmp_path, runs))
    svg = page.select("svg", data_org="acme")[0]
    bars = svg_bars(page, svg.attrs["id"] or "")
    valid = [b for b in bars if b.has_class("valid")]
    rejected = [b for b in bars if b.has_class("rejected")]
    assert len(valid) == len(rejected) == 30
    assert [b.attrs["data-run-id"] for b in valid] == [f"run-{day:02d}" for day in range(2, 32)]
    assert [int(b.attrs["data-count"] or 0) for b in valid] == list(range(2, 32))


def test_an_index_of_no_runs_says_so(tmp_path: Path) -> None:
    page = parse_page(write_index(tmp_path, []))
    assert page.by_id("runs-total").text == "0"
    assert not page.select("tr", cls="run")
