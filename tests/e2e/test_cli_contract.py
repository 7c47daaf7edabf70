"""CONTRACT.md sections 1, 2, 3 and 5, clause by clause, through `erp-sync` as a user runs it.

Every test drives the CLI in-process (`tests/e2e/cli.py`) against the module's migrated database
and the session's Prefect API, then looks at what a user can see: the exit code, stdout and
stderr, the database rows and the report files. Each test registers its own organisation, so the
module's one database serves them all. Loader-level cases live in tests/integration/.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loaders.orgs import add_org
from tests.conftest import create_fresh_database, drop_database
from tests.e2e.cli import CliEnv, Result, run_cli

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,notes,"
    "billing_street,billing_city,billing_postal_code,billing_country,"
    "shipping_street,shipping_city,shipping_postal_code,shipping_country,"
    "contact_email,contact_name,contact_phone,contact_role,contact_is_primary"
)
COLUMNS = HEADER.split(",")
MINIMAL = "erp_customer_number,name,default_currency,default_language"

SUMMARY_KEYS = {
    "run_id",
    "org",
    "source",
    "sha256",
    "mode",
    "dry_run",
    "status",
    "started_at",
    "finished_at",
    "encoding",
    "delimiter",
    "rows",
    "customers",
    "contacts",
    "issues_by_code",
    "file_errors",
}
# Keys summary.json carries beyond the contract's list: the unknown-column warnings (the
# contract asks for them "in the summary") and the run's folder.
SUMMARY_EXTRA_KEYS = {"warnings", "report_dir"}
ERRORS_HEADER = ["line", "erp_customer_number", "column", "value", "code", "severity", "message"]


# --- helpers ----------------------------------------------------------------------------------


def row(**cells: str) -> str:
    """One CSV line of HEADER with the given cells (no quoting: cells hold no comma)."""
    unknown = set(cells) - set(COLUMNS)
    assert not unknown, unknown
    return ",".join(cells.get(column, "") for column in COLUMNS)


def customer_row(number: str, name: str = "Acme", **cells: str) -> str:
    """A valid customer line of HEADER (EUR, en) with any other cells."""
    base = {"default_currency": "EUR", "default_language": "en"}
    return row(erp_customer_number=number, name=name, **{**base, **cells})


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_csv(path: Path, delimiter: str = ",") -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def errors_of(run_dir: Path) -> list[dict[str, str]]:
    """errors.csv as dicts (after checking its header)."""
    rows = read_csv(run_dir / "errors.csv")
    assert rows[0] == ERRORS_HEADER
    return [dict(zip(ERRORS_HEADER, r, strict=True)) for r in rows[1:]]


def codes_at(run_dir: Path) -> list[tuple[int, str]]:
    """(line, code) of every issue of errors.csv, in file order."""
    return [(int(e["line"]), e["code"]) for e in errors_of(run_dir)]


class Imported:
    """One `erp-sync import --json` call: its result, summary and run folder."""

    def __init__(self, result: Result, report_dir: Path) -> None:
        self.result = result
        self.code = result.exit_code
        self.summary: dict[str, Any] = result.json() if result.stdout.strip() else {}
        self.run_dir = report_dir / self.summary["run_id"] if self.summary else report_dir

    def __repr__(self) -> str:
        return f"Imported(code={self.code}, stdout={self.result.stdout!r}, stderr={self.result.stderr!r})"


def import_file(env: CliEnv, path: Path, org: str, *options: str) -> Imported:
    """`erp-sync import PATH --org ORG --json --report-dir <cwd>/reports OPTIONS`."""
    report_dir = env.cwd / "reports"
    result = run_cli(
        ["import", str(path), "--org", org, "--json", "--report-dir", str(report_dir), *options],
        env,
    )
    return Imported(result, report_dir)


def customers_of(engine: Engine, slug: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.* FROM customer c JOIN org o ON o.id = c.org_id "
                "WHERE o.slug = :slug ORDER BY c.erp_customer_number"
            ),
            {"slug": slug},
        ).mappings()
        return {r["erp_customer_number"]: dict(r) for r in rows}


def contacts_of(engine: Engine, slug: str, number: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT cc.* FROM customer_contact cc JOIN customer c ON c.id = cc.customer_id "
                "JOIN org o ON o.id = c.org_id "
                "WHERE o.slug = :slug AND c.erp_customer_number = :n ORDER BY cc.email"
            ),
            {"slug": slug, "n": number},
        ).mappings()
        return {str(r["email"]): dict(r) for r in rows}


def state_of(engine: Engine, slug: str) -> list[tuple[Any, ...]]:
    """Every customer and contact row of an organisation, all columns, in a stable order."""
    with engine.connect() as conn:
        customers = conn.execute(
            sa.text(
                "SELECT c.* FROM customer c JOIN org o ON o.id = c.org_id WHERE o.slug = :s "
                "ORDER BY c.erp_customer_number"
            ),
            {"s": slug},
        ).all()
        contacts = conn.execute(
            sa.text(
                "SELECT cc.* FROM customer_contact cc JOIN org o ON o.id = cc.org_id "
                "WHERE o.slug = :s ORDER BY cc.customer_id, cc.email"
            ),
            {"s": slug},
        ).all()
    return [tuple(r) for r in customers] + [tuple(r) for r in contacts]


def assert_one_line_usage_error(result: Result, *, code: int = 2) -> None:
    """The contract's usage error: the exit code, one line on stderr, no traceback."""
    assert result.exit_code == code, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output


def prefect_logs(limit: int = 200) -> list[str]:
    """The newest run logs the session's Prefect API holds (flushed first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(limit=limit, sort=LogSort.TIMESTAMP_DESC)
    return [log.message for log in logs]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """The module's database, the session's Prefect API, and the test's folder as cwd."""
    return CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=tmp_path)


@pytest.fixture
def org(engine: Engine, request: pytest.FixtureRequest) -> str:
    """A fresh organisation for the test; returns its slug."""
    slug = f"t-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        add_org(conn, slug, request.node.name[:200])
    return slug


# === 1. Input =================================================================================


def test_every_column_is_checked_and_normalised_as_the_contract_says(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text(
        customer_row(
            " 00042 ",
            name=" Cafe\u0301 Mu\u0308ller GmbH ",  # decomposed: stored in NFC
            email=" Info@Mueller.DE ",
            default_currency=" eur ",
            default_language="de_de",
            notes="  kept as given  ",
            billing_street=" Hauptstr. 1 ",
            billing_city="Berlin",
            billing_country="DE",
            shipping_postal_code="10115",
            contact_email=" Anna@Mueller.DE ",
            contact_name=" Anna ",
            contact_phone=" +49 30 1234 ",
            contact_role=" CEO ",
            contact_is_primary="X",
        )
    )
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    stored = customers_of(engine, org)
    assert list(stored) == ["00042"]
    customer = stored["00042"]
    assert customer["name"] == "Caf\u00e9 M\u00fcller GmbH"
    assert customer["email"] == "info@mueller.de"
    assert customer["default_currency"] == "EUR"
    assert customer["default_language"] == "de-DE"
    assert customer["notes"] == "  kept as given  "
    assert customer["billing_address"] == {
        "street": "Hauptstr. 1",
        "city": "Berlin",
        "country": "DE",
    }
    assert customer["shipping_address"] == {"postal_code": "10115"}
    assert customer["is_active"] is True
    contact = contacts_of(engine, org, "00042")["anna@mueller.de"]
    assert (contact["name"], contact["phone"], contact["role"]) == ("Anna", "+49 30 1234", "CEO")
    assert contact["is_primary"] is True


@pytest.mark.parametrize(
    ("language", "canonical"),
    [("de_de", "de-DE"), ("EN", "en"), ("zh_hant_tw", "zh-Hant-TW"), ("fr-ch", "fr-CH")],
)
def test_a_language_tag_is_stored_in_canonical_case_with_underscores_read_as_hyphens(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, language: str, canonical: str
) -> None:
    done = import_file(
        env, write(tmp_path / "in.csv", csv_text(customer_row("1", default_language=language))), org
    )
    assert done.code == 0, done
    assert customers_of(engine, org)["1"]["default_language"] == canonical


@pytest.mark.parametrize(
    ("language", "canonical"),
    [("de-latn-de", "de-Latn-DE"), ("IW", "iw"), ("en-gb-oed", "en-GB-oed")],
    ids=["suppressible-script", "deprecated-language", "grandfathered"],
)
def test_a_valid_language_tag_changes_only_its_case_and_keeps_every_subtag(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, language: str, canonical: str
) -> None:
    """The contract normalises to *canonical case* (RFC 5646 2.1.1), not to the canonical form
    of section 4.5, which would replace subtags (iw -> he, de-Latn-DE -> de-DE): the stored tag
    must still say what the ERP sent."""
    done = import_file(
        env, write(tmp_path / "in.csv", csv_text(customer_row("1", default_language=language))), org
    )
    assert done.code == 0, done
    assert customers_of(engine, org)["1"]["default_language"] == canonical


def test_contact_is_primary_reads_every_yes_and_no_word_in_any_case(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    words = {
        "true": True,
        "1": True,
        "YES": True,
        "y": True,
        "x": True,
        "X": True,
        "True": True,
        "FALSE": False,
        "0": False,
        "No": False,
        "N": False,
        "": False,
    }
    rows = [
        customer_row(f"c{i}", contact_email=f"p{i}@example.com", contact_is_primary=word)
        for i, word in enumerate(words)
    ]
    done = import_file(env, write(tmp_path / "in.csv", csv_text(*rows)), org)
    assert done.code == 0, done
    for i, expected in enumerate(words.values()):
        assert contacts_of(engine, org, f"c{i}")[f"p{i}@example.com"]["is_primary"] is expected


@pytest.mark.parametrize(
    ("cells", "column", "code"),
    [
        ({"erp_customer_number": "   "}, "erp_customer_number", "required"),
        ({"erp_customer_number": "9" * 101}, "erp_customer_number", "length"),
        ({"name": "  "}, "name", "required"),
        ({"name": "n" * 501}, "name", "length"),
        ({"default_currency": ""}, "default_currency", "required"),
        ({"default_currency": "XYZ"}, "default_currency", "currency"),
        ({"default_currency": "DEM"}, "default_currency", "currency"),  # withdrawn in 2002
        ({"default_language": ""}, "default_language", "required"),
        ({"default_language": "english please"}, "default_language", "language"),
        ({"default_language": "xx-YY-!!"}, "default_language", "language"),
        ({"email": "not-an-address"}, "email", "email"),
        ({"contact_email": "anna@"}, "contact_email", "email"),
        ({"contact_name": "Anna"}, "contact_email", "required"),
        (
            {"contact_email": "a@example.com", "contact_is_primary": "maybe"},
            "contact_is_primary",
            "boolean",
        ),
    ],
)
def test_a_cell_that_breaks_its_rule_rejects_the_row_with_its_code(
    env: CliEnv,
    org: str,
    engine: Engine,
    tmp_path: Path,
    cells: dict[str, str],
    column: str,
    code: str,
) -> None:
    bad = {"erp_customer_number": "bad", **cells}
    text = csv_text(
        customer_row("ok"), customer_row(**{"number": bad.pop("erp_customer_number"), **bad})
    )
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 1, done
    assert done.summary["status"] == "partial"
    errors = [e for e in errors_of(done.run_dir) if e["severity"] == "error"]
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [("3", column, code)]
    assert list(customers_of(engine, org)) == ["ok"]


def test_the_longest_allowed_number_and_name_are_accepted_and_leading_zeros_kept(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    number, name = "0" + "9" * 99, "n" * 500
    done = import_file(env, write(tmp_path / "in.csv", csv_text(customer_row(number, name))), org)
    assert done.code == 0, done
    assert customers_of(engine, org)[number]["name"] == name


def test_a_customer_number_with_a_zero_width_space_is_the_same_customer_with_a_key_warning(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text(customer_row("Z-1", "Acme"), customer_row("Z\u200b-1", "Acme GmbH"))
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["status"] == "succeeded"
    assert done.summary["customers"]["inserted"] == 1
    assert done.summary["issues_by_code"] == {"conflicting_values": 1, "key_normalised": 1}
    stored = customers_of(engine, org)
    assert list(stored) == ["Z-1"]
    assert stored["Z-1"]["name"] == "Acme GmbH"
    [warning] = [e for e in errors_of(done.run_dir) if e["code"] == "key_normalised"]
    assert warning == {
        "line": "3",
        "erp_customer_number": "Z-1",
        "column": "erp_customer_number",
        "value": "Z\u200b-1",
        "code": "key_normalised",
        "severity": "warning",
        "message": "invisible characters removed (U+200B ZERO WIDTH SPACE); "
        "the customer number is 'Z-1'",
    }


def test_header_names_match_in_any_case_with_surrounding_spaces_and_in_any_order(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    header = " Default_Language ,CONTACT_EMAIL,  Name,Erp_Customer_Number , DEFAULT_currency"
    text = csv_text("de,anna@example.com,Acme,7,chf", header=header)
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["issues_by_code"] == {}
    stored = customers_of(engine, org)["7"]
    assert (stored["name"], stored["default_currency"], stored["default_language"]) == (
        "Acme",
        "CHF",
        "de",
    )
    assert list(contacts_of(engine, org, "7")) == ["anna@example.com"]


def test_an_unknown_column_is_ignored_and_named_in_the_summary_as_a_warning(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text("1,Acme,EUR,en,secret", header=f"{MINIMAL},Kundengruppe")
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["status"] == "succeeded"
    assert done.summary["issues_by_code"] == {"unknown_column": 1}
    assert "Kundengruppe" in json.dumps(done.summary["warnings"])
    [warning] = errors_of(done.run_dir)
    assert (warning["line"], warning["column"], warning["code"], warning["severity"]) == (
        "1",
        "Kundengruppe",
        "unknown_column",
        "warning",
    )
    assert "1" in customers_of(engine, org)
    human = run_cli(["report", done.summary["run_id"]], env)
    assert "Kundengruppe" in human.stdout


@pytest.mark.parametrize(
    "missing", ["erp_customer_number", "name", "default_currency", "default_language"]
)
def test_a_missing_required_column_rejects_the_whole_file_with_exit_3(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, missing: str
) -> None:
    columns = [c for c in MINIMAL.split(",") if c != missing]
    cells = {
        "erp_customer_number": "1",
        "name": "Acme",
        "default_currency": "EUR",
        "default_language": "en",
    }
    text = csv_text(",".join(cells[c] for c in columns), header=",".join(columns))
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 3, done
    assert done.summary["status"] == "rejected"
    assert [e["code"] for e in done.summary["file_errors"]] == ["missing_column"]
    assert missing in done.summary["file_errors"][0]["message"]
    assert customers_of(engine, org) == {}


def test_a_header_naming_a_column_twice_rejects_the_whole_file_with_exit_3(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text("1,Acme,EUR,en,Acme Two", header=f"{MINIMAL}, NAME ")
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 3, done
    assert [e["code"] for e in done.summary["file_errors"]] == ["duplicate_column"]
    assert customers_of(engine, org) == {}


NAME_1252 = "Müller & Søn – Café €"  # every character exists in Windows-1252


@pytest.mark.parametrize(
    ("encode", "named"),
    [
        (lambda text: text.encode("utf-8"), r"^utf-?8$"),
        (lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"), r"^utf-?8.*(sig|bom)"),
        (lambda text: b"\xff\xfe" + text.encode("utf-16-le"), r"^utf-?16"),
        (lambda text: b"\xfe\xff" + text.encode("utf-16-be"), r"^utf-?16"),
        (lambda text: text.encode("cp1252"), r"(windows|cp)-?1252"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "windows-1252"],
)
def test_each_supported_encoding_is_decoded_and_named_in_the_summary(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, encode: Any, named: str
) -> None:
    text = csv_text(f"1,{NAME_1252},EUR,de", header=MINIMAL)
    done = import_file(env, write(tmp_path / "in.csv", encode(text)), org)
    assert done.code == 0, done
    assert re.search(named, done.summary["encoding"].lower()), done.summary["encoding"]
    assert customers_of(engine, org)["1"]["name"] == NAME_1252


def test_bytes_that_are_neither_utf8_nor_windows_1252_reject_the_file_with_exit_3(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    content = (MINIMAL + "\n1,Caf\x81,EUR,en\n").encode("latin-1")  # 0x81: undefined in 1252
    done = import_file(env, write(tmp_path / "in.csv", content), org)
    assert done.code == 3, done
    assert [e["code"] for e in done.summary["file_errors"]] == ["encoding"]
    assert customers_of(engine, org) == {}


@pytest.mark.parametrize(
    "delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"]
)
def test_the_delimiter_is_detected_from_the_header_line(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, delimiter: str
) -> None:
    others = "".join(d for d in ",;|" if d != delimiter)  # the other candidates, as plain text
    header = delimiter.join(
        ["erp_customer_number", "name", "default_currency", "default_language", "notes"]
    )
    text = csv_text(delimiter.join(["1", "Acme", "EUR", "en", f"a{others}b"]), header=header)
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["delimiter"] == delimiter
    assert customers_of(engine, org)["1"]["notes"] == f"a{others}b"


def test_quoted_fields_hold_delimiters_quotes_and_newlines_and_lines_stay_physical(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    header = f"{MINIMAL},notes"
    content = (
        f"{header}\r\n"
        '1,"Acme, Inc.",EUR,en,"she said ""hi""\r\nand left"\r\n'  # lines 2-3
        '2,"Two\nLines",EUR,en,plain\r\n'  # lines 4-5
        "3,Bad,XYZ,en,\r\n"  # line 6
        '4,"",EUR,en,"multi\n\nline with a blank line inside"\r\n'  # lines 7-9
        "5,Fine,EUR,en,\r\n"  # line 10
    )
    done = import_file(env, write(tmp_path / "in.csv", content), org)
    assert done.code == 1, done
    assert done.summary["rows"] == {"read": 5, "valid": 3, "rejected": 2}
    assert codes_at(done.run_dir) == [(6, "currency"), (7, "required")]
    stored = customers_of(engine, org)
    assert stored["1"]["name"] == "Acme, Inc."
    assert stored["1"]["notes"] == 'she said "hi"\r\nand left'
    assert stored["2"]["name"] == "Two\nLines"
    assert sorted(stored) == ["1", "2", "5"]


def test_blank_lines_are_skipped_and_not_counted_as_rows(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    content = f"\n{MINIMAL}\n\n1,Acme,EUR,en\n\r\n\n2,Bad,EUR,??\n\n"
    done = import_file(env, write(tmp_path / "in.csv", content), org)
    assert done.code == 1, done
    assert done.summary["rows"] == {"read": 2, "valid": 1, "rejected": 1}
    assert codes_at(done.run_dir) == [(7, "language")]
    assert list(customers_of(engine, org)) == ["1"]


def test_rows_with_fewer_or_more_fields_than_the_header_are_rejected_one_by_one(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    content = f"{MINIMAL}\n1,Acme,EUR,en\n2,Short,EUR\n3,Long,EUR,en,extra\n4,Fine,EUR,en\n"
    done = import_file(env, write(tmp_path / "in.csv", content), org)
    assert done.code == 1, done
    assert done.summary["rows"] == {"read": 4, "valid": 2, "rejected": 2}
    assert codes_at(done.run_dir) == [(3, "field_count"), (4, "field_count")]
    assert sorted(customers_of(engine, org)) == ["1", "4"]


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", MINIMAL.encode() + b"\n", b"\xef\xbb\xbf" + MINIMAL.encode() + b"\r\n\r\n"],
    ids=["empty", "blank-lines", "header-only", "bom-header-and-blank-lines"],
)
def test_an_empty_file_or_a_header_without_rows_succeeds_and_changes_nothing(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, content: bytes
) -> None:
    import_file(env, write(tmp_path / "first.csv", csv_text(customer_row("1"))), org)
    before = state_of(engine, org)
    done = import_file(env, write(tmp_path / "in.csv", content), org, "--mode", "full")
    assert done.code == 0, done
    assert done.summary["status"] == "succeeded"
    assert done.summary["rows"] == {"read": 0, "valid": 0, "rejected": 0}
    assert set(done.summary["customers"].values()) == {0}
    assert state_of(engine, org) == before


# --- rules across rows --------------------------------------------------------------------------


def test_one_bad_row_rejects_its_whole_customer_and_lists_every_row_of_it(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    first = csv_text(customer_row("A", "Old A", contact_email="keep@example.com"))
    import_file(env, write(tmp_path / "first.csv", first), org)
    before = state_of(engine, org)
    text = csv_text(
        customer_row("A", "New A", contact_email="one@example.com"),  # line 2
        customer_row("B", "Bee"),  # line 3
        customer_row("A", "New A", contact_email="two@"),  # line 4: its own error
        customer_row("A", "New A", contact_email="three@example.com"),  # line 5
    )
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 1, done
    assert done.summary["status"] == "partial"
    assert done.summary["rows"] == {"read": 4, "valid": 1, "rejected": 3}
    assert done.summary["customers"]["rejected"] == 1
    assert codes_at(done.run_dir) == [
        (2, "rejected_with_customer"),
        (4, "email"),
        (5, "rejected_with_customer"),
    ]
    rejected = read_csv(done.run_dir / "rejected_rows.csv")
    assert [r[0] for r in rejected[1:]] == ["A", "A", "A"]
    after = state_of(engine, org)
    assert [r for r in after if r not in before] == [tuple(customers_of(engine, org)["B"].values())]
    assert customers_of(engine, org)["A"]["name"] == "Old A"  # A and its contacts untouched
    assert list(contacts_of(engine, org, "A")) == ["keep@example.com"]


def test_customer_columns_that_differ_across_its_rows_take_the_last_row_with_a_warning(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text(
        customer_row("1", "First", contact_email="a@example.com"),
        customer_row("1", "Last", contact_email="b@example.com"),
    )
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["issues_by_code"] == {"conflicting_values": 1}
    [warning] = errors_of(done.run_dir)
    assert (warning["line"], warning["column"], warning["severity"]) == ("3", "name", "warning")
    assert customers_of(engine, org)["1"]["name"] == "Last"
    assert sorted(contacts_of(engine, org, "1")) == ["a@example.com", "b@example.com"]


def test_the_same_contact_twice_in_a_file_takes_the_last_row_with_a_warning(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    import_file(
        env,
        write(tmp_path / "first.csv", csv_text(customer_row("1", contact_email="old@example.com"))),
        org,
    )
    text = csv_text(
        customer_row("1", contact_email="Anna@Example.com", contact_name="First"),
        customer_row("1", contact_email="anna@example.COM", contact_name="Last"),
    )
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["issues_by_code"] == {"duplicate_contact": 1}
    contacts = contacts_of(engine, org, "1")
    assert sorted(contacts) == ["anna@example.com", "old@example.com"]  # others are kept
    assert contacts["anna@example.com"]["name"] == "Last"


def test_two_primaries_of_one_customer_keep_the_last_with_a_warning(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text(
        customer_row("1", contact_email="a@example.com", contact_is_primary="yes"),
        customer_row("1", contact_email="b@example.com", contact_is_primary="yes"),
        customer_row("1", contact_email="c@example.com", contact_is_primary="no"),
    )
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    assert done.code == 0, done
    assert done.summary["issues_by_code"] == {"multiple_primary": 1}
    primaries = {e: c["is_primary"] for e, c in contacts_of(engine, org, "1").items()}
    assert primaries == {"a@example.com": False, "b@example.com": True, "c@example.com": False}


def test_an_absent_column_leaves_the_field_alone_and_an_empty_cell_clears_it(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    first = csv_text(customer_row("1", email="a@example.com", notes="keep me", billing_city="Bonn"))
    import_file(env, write(tmp_path / "first.csv", first), org)
    header = f"{MINIMAL},email,billing_street"
    done = import_file(
        env, write(tmp_path / "in.csv", csv_text("1,Acme,EUR,en,,", header=header)), org
    )
    assert done.code == 0, done
    stored = customers_of(engine, org)["1"]
    assert stored["email"] is None  # present and empty: cleared
    assert stored["notes"] == "keep me"  # absent: untouched
    assert stored["billing_address"] == {"city": "Bonn"}  # billing_city absent: kept


# === 2. Command line ============================================================================


def test_a_server_whose_schema_is_behind_is_refused_with_exit_2_until_db_upgrade(
    pg_admin_url: str, prefect_api: str, tmp_path: Path
) -> None:
    url = create_fresh_database(pg_admin_url, None)  # no schema at all
    try:
        env = CliEnv(db_url=url, prefect_api=prefect_api, cwd=tmp_path)
        path = write(tmp_path / "in.csv", csv_text(customer_row("1")))
        for args in (
            ["org", "list"],
            ["org", "add", "acme"],
            ["import", str(path), "--org", "acme"],
            ["runs"],
        ):
            refused = run_cli(args, env)
            assert_one_line_usage_error(refused)
            assert "db upgrade" in refused.stderr
        current = run_cli(["db", "current"], env)
        assert "behind" in current.stdout, current

        upgraded = run_cli(["db", "upgrade"], env)
        assert upgraded.exit_code == 0, upgraded
        current = run_cli(["db", "current"], env)
        assert current.exit_code == 0, current
        assert "up to date" in current.stdout
        assert run_cli(["org", "list"], env).exit_code == 0
        again = run_cli(["db", "upgrade"], env)  # at head already: nothing to do
        assert again.exit_code == 0, again
    finally:
        drop_database(pg_admin_url, url)


def test_org_add_is_idempotent_and_prints_the_same_id_and_org_list_shows_it(
    env: CliEnv,
) -> None:
    slug = f"add-{uuid.uuid4().hex[:8]}"
    first = run_cli(["org", "add", slug, "--name", "Acme GmbH"], env)
    second = run_cli(["org", "add", slug], env)
    assert first.exit_code == second.exit_code == 0, (first, second)
    assert uuid.UUID(first.stdout.strip()) == uuid.UUID(second.stdout.strip())
    listed = run_cli(["org", "list"], env)
    assert listed.exit_code == 0
    [line] = [line for line in listed.stdout.splitlines() if line.split()[0] == slug]
    assert first.stdout.strip() in line and "Acme GmbH" in line  # the name was kept
    as_json = run_cli(["org", "list", "--json"], env).json()
    assert {"id": first.stdout.strip(), "slug": slug, "name": "Acme GmbH"} in as_json


def test_full_mode_deactivates_the_customers_missing_from_the_file_and_reactivates_returning_ones(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    neighbour = f"{org}-n"
    with engine.begin() as conn:
        add_org(conn, neighbour)
    everyone = csv_text(*(customer_row(n) for n in "1234"))
    import_file(env, write(tmp_path / "all.csv", everyone), org)
    import_file(env, write(tmp_path / "all.csv", everyone), neighbour)
    # 2 is rejected (bad currency) but present; 3 and 4 are missing; 5 is new
    partial = csv_text(
        customer_row("1"), customer_row("2", default_currency="EURO"), customer_row("5")
    )
    done = import_file(env, write(tmp_path / "some.csv", partial), org, "--mode", "full")
    assert done.code == 1, done
    assert done.summary["mode"] == "full"
    assert done.summary["customers"]["deactivated"] == 2
    active = {n: c["is_active"] for n, c in customers_of(engine, org).items()}
    assert active == {"1": True, "2": True, "3": False, "4": False, "5": True}
    assert set(c["is_active"] for c in customers_of(engine, neighbour).values()) == {True}

    back = import_file(
        env,
        write(tmp_path / "back.csv", csv_text(customer_row("3"))),
        org,
        "--mode",
        "full",
        "--force",
    )
    assert back.code == 0, back
    assert back.summary["customers"]["reactivated"] == 1
    active = {n: c["is_active"] for n, c in customers_of(engine, org).items()}
    assert active == {"1": False, "2": False, "3": True, "4": False, "5": False}


def test_upsert_is_the_default_mode_and_never_deactivates(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    import_file(
        env, write(tmp_path / "all.csv", csv_text(customer_row("1"), customer_row("2"))), org
    )
    done = import_file(env, write(tmp_path / "one.csv", csv_text(customer_row("1", "New"))), org)
    assert done.code == 0, done
    assert done.summary["mode"] == "upsert"
    assert done.summary["customers"]["updated"] == 1
    assert {c["is_active"] for c in customers_of(engine, org).values()} == {True}


def test_a_dry_run_writes_the_reports_with_the_counts_and_changes_nothing(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    import_file(env, write(tmp_path / "first.csv", csv_text(customer_row("1"))), org)
    before = state_of(engine, org)
    text = csv_text(
        customer_row("1", "Renamed"),
        customer_row("2", contact_email="n@example.com"),
        customer_row("3", default_language="??"),
    )
    path = write(tmp_path / "in.csv", text)
    dry = import_file(env, path, org, "--dry-run", "--mode", "full")
    assert dry.code == 1, dry
    assert dry.summary["dry_run"] is True
    assert dry.summary["customers"] == {
        "inserted": 1,
        "updated": 1,
        "unchanged": 0,
        "deactivated": 0,
        "reactivated": 0,
        "rejected": 1,
    }
    assert dry.summary["contacts"]["inserted"] == 1
    assert {p.name for p in dry.run_dir.iterdir()} >= {
        "summary.json",
        "errors.csv",
        "rejected_rows.csv",
        "report.html",
    }
    assert state_of(engine, org) == before
    real = import_file(env, path, org)  # a dry run does not count as applied
    assert real.summary["status"] == "partial", real
    assert customers_of(engine, org)["1"]["name"] == "Renamed"


def test_reports_go_to_report_dir_else_erp_sync_report_dir_else_reports_in_the_cwd(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "in.csv", csv_text(customer_row("1")))
    base = ["import", str(path), "--org", org, "--json", "--force"]

    given = run_cli(
        [*base, "--report-dir", str(tmp_path / "given")],
        env.with_vars(ERP_SYNC_REPORT_DIR=str(tmp_path / "from-env")),
    )
    assert (tmp_path / "given" / given.json()["run_id"] / "summary.json").is_file()

    from_env = run_cli(base, env.with_vars(ERP_SYNC_REPORT_DIR=str(tmp_path / "from-env")))
    assert (tmp_path / "from-env" / from_env.json()["run_id"] / "summary.json").is_file()

    default = run_cli(base, env)
    assert (env.cwd / "reports" / default.json()["run_id"] / "summary.json").is_file()


def test_the_error_budget_rejects_a_file_whose_rejected_share_exceeds_it(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    # 1 of 4 rows rejected: a rate of 0.25
    text = csv_text(*(customer_row(n) for n in "123"), customer_row("4", default_currency="?"))
    path = write(tmp_path / "in.csv", text)
    over = import_file(env, path, org, "--max-error-rate", "0.2")
    assert over.code == 3, over
    assert over.summary["status"] == "rejected"
    assert [e["code"] for e in over.summary["file_errors"]] == ["error_budget"]
    assert customers_of(engine, org) == {}
    at = import_file(env, path, org, "--max-error-rate", "0.25")
    assert at.code == 1, at
    assert sorted(customers_of(engine, org)) == ["1", "2", "3"]


def test_the_deactivation_budget_rejects_a_full_import_that_would_deactivate_too_many(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    import_file(env, write(tmp_path / "all.csv", csv_text(*(customer_row(n) for n in "1234"))), org)
    before = state_of(engine, org)
    # 1 of 4 active customers missing (0.25), plus a new one that must not land either
    path = write(tmp_path / "in.csv", csv_text(*(customer_row(n) for n in "1235")))
    over = import_file(env, path, org, "--mode", "full", "--max-deactivate-rate", "0.2")
    assert over.code == 3, over
    assert over.summary["status"] == "rejected"
    assert [e["code"] for e in over.summary["file_errors"]] == ["deactivate_budget"]
    assert state_of(engine, org) == before
    at = import_file(env, path, org, "--mode", "full", "--max-deactivate-rate", "0.25")
    assert at.code == 0, at
    assert at.summary["customers"]["deactivated"] == 1


def test_rerunning_a_file_is_skipped_and_force_reports_every_customer_unchanged(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    text = csv_text(
        customer_row(
            "1", contact_email="a@example.com", contact_is_primary="y", billing_city="Bonn"
        ),
        customer_row("2"),
        customer_row("3", contact_email="c@example.com"),
    )
    path = write(tmp_path / "in.csv", text)
    first = import_file(env, path, org)
    assert first.code == 0, first
    before = state_of(engine, org)

    again = import_file(env, path, org)
    assert again.code == 0, again
    assert again.summary["status"] == "skipped"
    assert set(again.summary["customers"].values()) == {0}

    renamed = write(tmp_path / "copy-of-in.csv", path.read_bytes())  # same bytes, other name
    assert import_file(env, renamed, org).summary["status"] == "skipped"

    forced = import_file(env, path, org, "--force")
    assert forced.code == 0, forced
    assert forced.summary["status"] == "succeeded"
    assert forced.summary["customers"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 3,
        "deactivated": 0,
        "reactivated": 0,
        "rejected": 0,
    }
    assert forced.summary["contacts"] == {"inserted": 0, "updated": 0, "unchanged": 2}
    assert state_of(engine, org) == before  # no updated_at moved


def test_json_prints_one_summary_document_with_every_contract_key_on_stdout(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    text = csv_text(customer_row("1"), customer_row("2", default_currency="??"))
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    summary = json.loads(done.result.stdout)  # the whole of stdout is the document
    assert set(summary) >= SUMMARY_KEYS, SUMMARY_KEYS - set(summary)
    assert set(summary) - SUMMARY_KEYS <= SUMMARY_EXTRA_KEYS, set(summary) - SUMMARY_KEYS
    assert set(summary["rows"]) == {"read", "valid", "rejected"}
    assert set(summary["customers"]) == {
        "inserted",
        "updated",
        "unchanged",
        "deactivated",
        "reactivated",
        "rejected",
    }
    assert set(summary["contacts"]) == {"inserted", "updated", "unchanged"}
    assert summary["org"] == org
    assert summary["source"].endswith("in.csv")
    assert re.fullmatch(r"[0-9a-f]{64}", summary["sha256"])
    assert summary["status"] == "partial" and summary["mode"] == "upsert"
    assert summary["dry_run"] is False
    assert summary["issues_by_code"] == {"currency": 1}
    assert summary["file_errors"] == []
    on_disk = json.loads((done.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary


def test_runs_lists_past_runs_newest_first_filtered_by_org_and_limited(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    other = f"{org}-o"
    with engine.begin() as conn:
        add_org(conn, other)
    run_ids = [
        import_file(
            env, write(tmp_path / f"f{i}.csv", csv_text(customer_row(str(i)))), org
        ).summary["run_id"]
        for i in range(3)
    ]
    import_file(env, write(tmp_path / "o.csv", csv_text(customer_row("9"))), other)

    listed = run_cli(["runs", "--org", org, "--json"], env)
    assert listed.exit_code == 0, listed
    assert [r["run_id"] for r in listed.json()] == run_ids[::-1]
    assert {r["org"] for r in listed.json()} == {org}
    limited = run_cli(["runs", "--org", org, "--limit", "2", "--json"], env).json()
    assert [r["run_id"] for r in limited] == run_ids[:0:-1]
    everyone = run_cli(["runs", "--limit", "1", "--json"], env).json()
    assert everyone[0]["org"] == other  # the newest run of any organisation

    table = run_cli(["runs", "--org", org], env)
    assert table.exit_code == 0
    lines = table.stdout.strip().splitlines()
    assert len(lines) == 1 + 3
    assert [line.split()[-1] for line in lines[1:]] == run_ids[::-1]


def test_report_prints_one_runs_summary_by_id_or_unique_prefix(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    done = import_file(env, write(tmp_path / "in.csv", csv_text(customer_row("1"))), org)
    run_id = done.summary["run_id"]
    human = run_cli(["report", run_id], env)
    assert human.exit_code == 0, human
    assert run_id in human.stdout and "SUCCEEDED" in human.stdout.upper()
    assert "read 1, valid 1, rejected 0" in human.stdout
    as_json = run_cli(["report", run_id, "--json"], env)
    assert as_json.json() == done.summary
    by_prefix = run_cli(["report", run_id[:13], "--json"], env)
    assert by_prefix.json()["run_id"] == run_id


# --- exit codes ---------------------------------------------------------------------------------


USAGE_ERRORS = {
    "unknown-option": ["import", "{file}", "--org", "{org}", "--bogus"],
    "bad-mode": ["import", "{file}", "--org", "{org}", "--mode", "partial"],
    "no-org-option": ["import", "{file}"],
    "error-rate-above-1": ["import", "{file}", "--org", "{org}", "--max-error-rate", "1.5"],
    "error-rate-below-0": ["import", "{file}", "--org", "{org}", "--max-error-rate", "-0.1"],
    "error-rate-not-a-number": ["import", "{file}", "--org", "{org}", "--max-error-rate", "x"],
    "deactivate-rate-above-1": [
        "import",
        "{file}",
        "--org",
        "{org}",
        "--mode",
        "full",
        "--max-deactivate-rate",
        "2",
    ],
    "unknown-organisation": ["import", "{file}", "--org", "no-such-org"],
    "missing-file": ["import", "{missing}", "--org", "{org}"],
    "folder-not-file": ["import", "{folder}", "--org", "{org}"],
    "runs-limit-0": ["runs", "--limit", "0"],
    "runs-unknown-organisation": ["runs", "--org", "no-such-org"],
    "report-unknown-run": ["report", "00000000-0000-0000-0000-000000000000"],
    "org-add-invalid-slug": ["org", "add", "Bad Slug!"],
    "unknown-command": ["frobnicate"],
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_a_usage_error_exits_2_with_one_line_on_stderr_and_starts_no_run(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path, case: str
) -> None:
    path = write(tmp_path / "in.csv", csv_text(customer_row("1")))
    names = {
        "file": str(path),
        "org": org,
        "missing": str(tmp_path / "nowhere.csv"),
        "folder": str(tmp_path),
    }
    args = [arg.format(**names) for arg in USAGE_ERRORS[case]]
    result = run_cli(args, env)
    assert_one_line_usage_error(result)
    assert result.stdout == ""
    assert not (tmp_path / "reports").exists()
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT count(*) FROM import_run r JOIN org o ON o.id = r.org_id WHERE o.slug = :s"
            ),
            {"s": org},
        ).scalar_one()
    assert runs == 0
    assert customers_of(engine, org) == {}


@pytest.mark.parametrize("rate", ["0", "1"])
def test_rates_of_exactly_0_and_1_are_accepted(
    env: CliEnv, org: str, tmp_path: Path, rate: str
) -> None:
    path = write(tmp_path / "in.csv", csv_text(customer_row("1")))
    done = import_file(env, path, org, "--max-error-rate", rate, "--max-deactivate-rate", rate)
    assert done.code == 0, done


UNREACHABLE_PASSWORD = "Pa55-w0rd-not-for-logs"


@pytest.mark.parametrize(
    "args",
    [
        ["import", "{file}", "--org", "acme"],
        ["org", "list"],
        ["org", "add", "acme"],
        ["runs"],
        ["db", "current"],
    ],
    ids=["import", "org-list", "org-add", "runs", "db-current"],
)
def test_an_unreachable_database_exits_4_with_one_line_naming_no_password(
    prefect_api: str, tmp_path: Path, args: list[str]
) -> None:
    # port 9 (discard) on the loopback: nothing listens, the connection is refused at once
    url = f"postgresql://erp:{UNREACHABLE_PASSWORD}@127.0.0.1:9/erp"
    env = CliEnv(db_url=url, prefect_api=prefect_api, cwd=tmp_path)
    path = write(tmp_path / "in.csv", csv_text(customer_row("1")))
    result = run_cli([a.format(file=path) for a in args], env)
    assert_one_line_usage_error(result, code=4)
    assert UNREACHABLE_PASSWORD not in result.output
    assert "127.0.0.1" in result.stderr  # says which server


def test_exit_codes_follow_the_status_0_succeeded_1_partial_3_rejected(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    good = import_file(env, write(tmp_path / "good.csv", csv_text(customer_row("1"))), org)
    partial = import_file(
        env,
        write(tmp_path / "partial.csv", csv_text(customer_row("2"), customer_row("3", name=""))),
        org,
    )
    rejected = import_file(env, write(tmp_path / "rejected.csv", "name\nAcme\n"), org)
    got = [(d.code, d.summary["status"]) for d in (good, partial, rejected)]
    assert got == [(0, "succeeded"), (1, "partial"), (3, "rejected")]


# === 3. Guarantees and 5. Reports ===============================================================


def test_errors_csv_lists_every_issue_with_its_physical_line_and_the_run_is_recorded(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    content = (
        f"{MINIMAL},contact_email,contact_is_primary,Extra\n"  # line 1: unknown column
        '1,"Multi\nline",EUR,en,a@example.com,y,\n'  # lines 2-3
        "\n"  # line 4: blank
        "1,Other,EUR,en,b@example.com,y,\n"  # line 5: conflicting name, multiple primary
        "2,Two,EUR,en,bad@,,\n"  # line 6: contact email
        "2,Two,EUR,en,,,\n"  # line 7: rejected with customer
        "3,Three,EUR\n"  # line 8: field count
    )
    done = import_file(env, write(tmp_path / "in.csv", content), org)
    assert done.code == 1, done
    assert done.summary["rows"] == {"read": 5, "valid": 2, "rejected": 3}
    rows = done.summary["rows"]
    assert rows["read"] == rows["valid"] + rows["rejected"]
    issues = errors_of(done.run_dir)
    assert sorted((int(i["line"]), i["code"], i["severity"]) for i in issues) == [
        (1, "unknown_column", "warning"),
        (5, "conflicting_values", "warning"),
        (5, "multiple_primary", "warning"),
        (6, "email", "error"),
        (7, "rejected_with_customer", "error"),
        (8, "field_count", "error"),
    ]
    by_code = done.summary["issues_by_code"]
    assert sum(by_code.values()) == len(issues)
    email = next(i for i in issues if i["code"] == "email")
    assert (email["erp_customer_number"], email["column"], email["value"]) == (
        "2",
        "contact_email",
        "bad@",
    )
    assert email["message"]

    with engine.connect() as conn:
        run = (
            conn.execute(
                sa.text("SELECT * FROM import_run WHERE id = :id"), {"id": done.summary["run_id"]}
            )
            .mappings()
            .one()
        )
        recorded = conn.execute(
            sa.text("SELECT line, code, severity FROM import_issue WHERE run_id = :id"),
            {"id": done.summary["run_id"]},
        ).all()
    assert run["status"] == "partial" and run["sha256"] == done.summary["sha256"]
    assert (run["rows_read"], run["rows_valid"], run["rows_rejected"]) == (5, 2, 3)
    assert sorted(tuple(r) for r in recorded) == sorted(
        (int(i["line"]), i["code"], i["severity"]) for i in issues
    )


def test_rejected_rows_csv_keeps_the_source_header_and_order_and_imports_once_fixed(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    header = " Erp_Customer_Number ;NAME;Default_Currency;default_language;Notes;Legacy Code"
    content = (
        "\n".join(
            [
                header,
                "1;Good;EUR;en;fine;L1",
                '2;Bad currency;EURO;en;"semi;colon";L2',
                "3;Good too;EUR;en;;L3",
                '4;Bad language;EUR;english;two""quotes;L4',  # an even quote run inside a field
                "2;Bad currency;EURO;en;second row;L5",
            ]
        )
        + "\n"
    )
    done = import_file(env, write(tmp_path / "in.csv", content), org)
    assert done.code == 1, done
    rejected = read_csv(done.run_dir / "rejected_rows.csv", delimiter=";")
    assert rejected[0] == [*header.split(";"), "errors"]
    assert [r[0] for r in rejected[1:]] == ["2", "4", "2"]  # source order
    assert rejected[1][:6] == ["2", "Bad currency", "EURO", "en", "semi;colon", "L2"]
    assert all(r[-1] for r in rejected[1:])  # every row says why
    assert "currency" in rejected[1][-1].lower() and "english" in rejected[2][-1]

    fixed_rows = [r[:-1] for r in rejected[1:]]  # drop the errors column, edit the bad cells
    for cells in fixed_rows:
        cells[2] = "EUR" if cells[2] == "EURO" else cells[2]
        cells[3] = "en" if cells[3] == "english" else cells[3]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\n").writerows(
        [rejected[0][:-1], *fixed_rows]
    )
    again = import_file(env, write(tmp_path / "fixed.csv", buffer.getvalue()), org)
    assert again.code == 0, again
    assert again.summary["customers"]["inserted"] == 2
    stored = customers_of(engine, org)
    assert sorted(stored) == ["1", "2", "3", "4"]
    assert stored["2"]["notes"] == "second row"


FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "\tTAB", "\rCR"]


def test_cells_that_a_spreadsheet_would_run_are_prefixed_with_a_quote_in_the_reports(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    # each formula is the (invalid) currency of its own rejected row, and its notes
    lines = [f"{MINIMAL},notes"]
    for i, formula in enumerate(FORMULAS):
        cell = f'"{formula}"'
        lines.append(f"k{i},Name {i},{cell},en,{cell}")
    lines.append('-7,"=HYPERLINK(""http://x"")",EUR,zz-zz-zz-zz-zz,')  # key and name too
    done = import_file(env, write(tmp_path / "in.csv", "\n".join(lines) + "\n"), org)
    assert done.code == 1, done  # every row rejected: partial, nothing applied
    currency = [e["value"] for e in errors_of(done.run_dir) if e["code"] == "currency"]
    assert currency == [f"'{f}" for f in FORMULAS]
    language = next(e for e in errors_of(done.run_dir) if e["code"] == "language")
    assert language["erp_customer_number"] == "'-7"

    rejected = read_csv(done.run_dir / "rejected_rows.csv")
    assert [r[2] for r in rejected[1:7]] == [f"'{f}" for f in FORMULAS]
    assert [r[4] for r in rejected[1:7]] == [f"'{f}" for f in FORMULAS]
    assert rejected[7][:2] == ["'-7", '\'=HYPERLINK("http://x")']


def test_report_html_shows_the_runs_figures_and_issues(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    text = csv_text(customer_row("1"), customer_row("2"), customer_row("3", default_currency="?"))
    done = import_file(env, write(tmp_path / "in.csv", text), org)
    page = (done.run_dir / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert done.summary["run_id"] in page and "partial" in page
    figures = dict(re.findall(r'data-figure="([a-z]+\.[a-z]+)">(\d+)<', page))
    assert figures["rows.read"] == "3"
    assert figures["rows.valid"] == "2"
    assert figures["rows.rejected"] == "1"
    assert figures["customers.inserted"] == "2"
    assert figures["customers.rejected"] == "1"
    assert "currency" in page


def test_no_email_or_phone_of_the_input_appears_in_the_cli_output_or_the_run_logs(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    emails = [
        "Info@Secret-Customer.example",
        "anna.private@secret-customer.example",
        "broken@@secret-customer.example",
        "bob@secret-customer.example",
    ]
    phones = ["+49 170 5550123", "0049-30-5550199", "+1 (555) 010-4477"]
    text = csv_text(
        customer_row("1", email=emails[0], contact_email=emails[1], contact_phone=phones[0]),
        customer_row("2", contact_email=emails[2], contact_phone=phones[1]),  # rejected: email
        customer_row("2", contact_email=emails[3], contact_phone=phones[2]),
        customer_row("3", email=emails[1], default_currency="nope"),
    )
    path = write(tmp_path / "in.csv", text)
    loud = env.with_vars(ERP_SYNC_LOG_LEVEL="DEBUG")
    outputs = [
        run_cli(["import", str(path), "--org", org, "--report-dir", str(tmp_path / "r")], loud),
        run_cli(
            [
                "import",
                str(path),
                "--org",
                org,
                "--force",
                "--dry-run",
                "--report-dir",
                str(tmp_path / "r"),
            ],
            loud,
        ),
        run_cli(["runs", "--org", org], loud),
    ]
    run_id = run_cli(["runs", "--org", org, "--limit", "1", "--json"], loud).json()[0]["run_id"]
    outputs.append(run_cli(["report", run_id], loud))
    assert outputs[0].exit_code == 1, outputs[0]
    assert "loaders.upsert" in outputs[0].stderr  # the DEBUG logs were captured and checked
    everything = "\n".join([*(r.output for r in outputs), *prefect_logs()]).lower()
    for secret in emails + phones:
        assert secret.lower() not in everything, secret
    assert "secret-customer" not in everything
    all_digits = re.sub(r"\D", "", everything)
    for phone in phones:  # nor the phone's digits written some other way
        assert re.sub(r"\D", "", phone) not in all_digits, phone
