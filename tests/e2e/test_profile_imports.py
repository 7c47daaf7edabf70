"""Source profiles end to end: each shipped sample imports through `erp-sync import --profile`.

Per profile: the expected customers, contacts, normalised values and issues; the rejected
rows, fixed, re-import with the same profile.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from loaders.orgs import add_org
from tests.e2e.cli import CliEnv, run_cli
from tests.e2e.test_cli_contract import contacts_of, customers_of, errors_of, import_file

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "profiles"


@pytest.fixture
def env(db_url: str, prefect_api: str, tmp_path: Path) -> CliEnv:
    """The module's database, the session's Prefect API, and the test's folder as cwd."""
    return CliEnv(db_url=db_url, prefect_api=prefect_api, cwd=tmp_path)


@pytest.fixture
def org(engine: Engine) -> str:
    """A fresh organisation for the test; returns its slug."""
    slug = f"p-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        add_org(conn, slug, slug)
    return slug


def sample(name: str, tmp_path: Path) -> Path:
    """The profile's sample export, copied into the test's folder."""
    (found,) = sorted((SAMPLES / name).glob("*.csv"))
    return Path(shutil.copy(found, tmp_path / found.name))


def fix_rejected(run_dir: Path, replacements: dict[str, str], encoding: str = "utf-8") -> str:
    """rejected_rows.csv without its errors column, with the mistakes replaced."""
    text = (run_dir / "rejected_rows.csv").read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, (old, text)
        text = text.replace(old, new)
    delimiter = ";" if text.split("\n", 1)[0].count(";") else ","
    lines = [line.rsplit(delimiter, 1)[0] for line in text.splitlines() if line]
    return "\n".join(lines) + "\n"


def test_the_sap_sample_imports_with_its_keys_languages_names_and_phones(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    done = import_file(env, sample("sap", tmp_path), org, "--profile", "sap")
    assert done.code == 1, done
    summary = done.summary
    assert summary["profile"] == "sap"
    assert summary["encoding"] == "windows-1252"
    assert summary["rows"] == {"read": 8, "valid": 6, "rejected": 2}
    stored = customers_of(engine, org)
    assert sorted(stored) == ["0000100001", "0000100002", "0000100003", "0000100004", "0000100007"]
    mueller = stored["0000100001"]
    assert mueller["name"] == "Müller Maschinenbau GmbH & Co. KG"
    assert mueller["default_language"] == "de"
    assert mueller["billing_address"] == {
        "street": "Industriestraße 12",
        "city": "München",
        "postal_code": "80331",
        "country": "DE",
    }
    contacts = contacts_of(engine, org, "0000100001")
    assert contacts["anna.huber@mueller-mb.de"]["name"] == "Anna Huber"
    assert contacts["anna.huber@mueller-mb.de"]["phone"] == "+49891234567"
    assert contacts["anna.huber@mueller-mb.de"]["is_primary"] is True
    assert contacts["peter.schmid@mueller-mb.de"]["is_primary"] is False
    assert stored["0000100002"]["default_language"] == "fr"
    assert contacts_of(engine, org, "0000100002")["marie.dupont@dupont-ind.fr"]["phone"] == (
        "+33142685300"
    )
    # a phone that is no number is kept as given, with a warning
    smith = contacts_of(engine, org, "0000100004")["john.smith@acme-trading.co.uk"]
    assert smith["phone"] == "bitte zurückrufen"

    issues = errors_of(done.run_dir)
    by_code = {(e["line"], e["code"]): e for e in issues}
    assert by_code[("7", "language")]["column"] == "SPRAS"
    assert by_code[("7", "language")]["value"] == "Z"
    assert "SPRAS" in by_code[("7", "language")]["message"]
    assert by_code[("8", "email")]["column"] == "SMTP_ADDR_P"
    assert by_code[("6", "phone")]["severity"] == "warning"

    # the rejected rows keep SAP's layout and re-import with the profile once fixed
    rejected = (done.run_dir / "rejected_rows.csv").read_text(encoding="utf-8")
    assert rejected.startswith("KUNNR;NAME1;NAME2;SMTP_ADDR;WAERS;SPRAS;")
    fixed = fix_rejected(
        done.run_dir,
        {";Z;": ";I;", "erik.larsson@nordicsupplies;": "erik.larsson@nordicsupplies.se;"},
    )
    again = import_file(env, write_text(tmp_path / "fixed.csv", fixed), org, "--profile", "sap")
    assert again.code == 0, again
    stored = customers_of(engine, org)
    assert stored["0000100005"]["default_language"] == "it"
    assert stored["0000100006"]["default_language"] == "sv"


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_datev_sample_skips_its_extf_line_and_reads_windows_1252(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    done = import_file(env, sample("datev", tmp_path), org, "--profile", "datev")
    assert done.code == 1, done
    assert done.summary["rows"] == {"read": 7, "valid": 5, "rejected": 2}
    stored = customers_of(engine, org)
    assert sorted(stored) == ["10001", "10002", "10003", "10004", "10006"]
    assert stored["10001"]["name"] == "Bäckerei Schäfer GmbH"
    assert stored["10002"]["name"] == "Jürgen Weiß"  # a person: first and last name
    assert stored["10004"]["default_language"] == "it"
    assert stored["10006"]["default_language"] == "en"
    # the customer's own e-mail and phone are its primary contact
    primary = contacts_of(engine, org, "10001")["info@baeckerei-schaefer.de"]
    assert primary["is_primary"] is True
    assert primary["phone"] == "+49711123456"
    assert contacts_of(engine, org, "10003") == {}  # no e-mail, no contact
    issues = errors_of(done.run_dir)
    # lines are the file's own: the EXTF line is line 1, the header line 2
    assert {(e["line"], e["code"], e["column"]) for e in issues if e["severity"] == "error"} == {
        ("7", "email", "E-Mail"),
        ("9", "language", "Sprache"),
    }
    rejected = (done.run_dir / "rejected_rows.csv").read_text(encoding="utf-8")
    assert rejected.startswith("Konto;")
    fixed = fix_rejected(
        done.run_dir,
        {"pedidos@garcia-importaciones;": "pedidos@garcia-importaciones.es;", ";7;": ";1;"},
    )
    again = import_file(
        env,
        write_bytes(tmp_path / "fixed.csv", fixed.encode("cp1252")),
        org,
        "--profile",
        "datev",
    )
    assert again.code == 0, again
    assert customers_of(engine, org)["10007"]["default_language"] == "de"


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_odoo_sample_takes_contacts_from_rows_naming_their_company(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    done = import_file(env, sample("odoo", tmp_path), org, "--profile", "odoo")
    assert done.code == 1, done
    stored = customers_of(engine, org)
    assert sorted(stored) == ["C-1001", "C-1002", "C-1003"]
    agrolait = stored["C-1001"]
    assert agrolait["name"] == "Agrolait"
    assert agrolait["default_language"] == "fr-BE"
    assert agrolait["billing_address"]["country"] == "BE"
    assert stored["C-1003"]["default_currency"] == "EUR"
    deco = contacts_of(engine, org, "C-1002")
    assert sorted(deco) == ["douglas.fletcher51@example.com", "floyd.steward34@example.com"]
    assert deco["floyd.steward34@example.com"]["name"] == "Floyd Steward"
    assert deco["floyd.steward34@example.com"]["role"] == "Analyst"
    assert deco["floyd.steward34@example.com"]["phone"] == "+11451383401"
    michel = contacts_of(engine, org, "C-1001")["michel.fletcher@agrolait.example.com"]
    assert michel["phone"] == "+3210588559"
    errors = {(e["line"], e["code"]) for e in errors_of(done.run_dir) if e["severity"] == "error"}
    assert errors == {("8", "unknown_value"), ("9", "unknown_customer")}
    fixed = fix_rejected(
        done.run_dir,
        {",Atlantis,": ",United States,", "res_partner_99_deadbeef": "res_partner_13_a5b6c7d8"},
    )
    # the fixed contact's company is in the same file once the company row is there
    again = import_file(env, write_text(tmp_path / "fixed.csv", fixed), org, "--profile", "odoo")
    assert again.code == 0, again
    assert "edwin.hansen58@example.com" in contacts_of(engine, org, "C-1004")


def test_the_default_profile_leaves_the_summary_without_a_profile_key(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    path = write_text(
        tmp_path / "in.csv",
        "erp_customer_number,name,default_currency,default_language\n1,A,EUR,en\n",
    )
    done = import_file(env, path, org)
    assert done.code == 0, done
    assert "profile" not in done.summary


def test_a_profile_naming_an_unknown_column_is_a_usage_error_with_its_file_and_line(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    profile = write_text(
        tmp_path / "mine.toml",
        '[columns]\nerp_customer_number = "Nr"\nnmae = "Name"\n',
    )
    path = write_text(tmp_path / "in.csv", "Nr,Name\n1,A\n")
    result = run_cli(["import", str(path), "--org", org, "--profile", str(profile)], env)
    assert result.exit_code == 2, result
    assert f"{profile}, line 3" in result.stderr
    assert "nmae" in result.stderr


def test_profile_commands_list_show_check_and_guess(env: CliEnv, tmp_path: Path) -> None:
    listed = run_cli(["profile", "list"], env)
    assert listed.exit_code == 0, listed
    for name in ("erp-sync", "sap", "dynamics365", "datev", "odoo"):
        assert name in listed.stdout
    shown = run_cli(["profile", "show", "sap"], env)
    assert shown.exit_code == 0, shown
    assert "SPRAS" in shown.stdout and "sap_language" in shown.stdout
    checked = run_cli(["profile", "check", str(sample("sap", tmp_path)), "--profile", "sap"], env)
    assert checked.exit_code == 1, checked
    assert "SPRAS" in checked.stdout and "'Z'" in checked.stdout
    guessed = run_cli(["profile", "guess", str(sample("datev", tmp_path))], env)
    assert guessed.exit_code == 0, guessed
    assert "best: datev" in guessed.stdout


def test_a_json_summary_of_a_profile_run_names_the_profile(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    done = import_file(env, sample("odoo", tmp_path), org, "--profile", "odoo", "--dry-run")
    summary = json.loads((done.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["profile"] == "odoo"


@pytest.mark.parametrize("name", ["sap", "datev", "odoo"])
def test_each_sample_is_guessed_as_its_own_profile(env: CliEnv, tmp_path: Path, name: str) -> None:
    guessed = run_cli(["profile", "guess", str(sample(name, tmp_path))], env)
    assert f"best: {name}" in guessed.stdout, guessed


def dynamics_pair(tmp_path: Path) -> tuple[Path, Path]:
    folder = SAMPLES / "dynamics365"
    accounts = Path(shutil.copy(folder / "accounts_2026-12-01.csv", tmp_path / "accounts.csv"))
    contacts = Path(shutil.copy(folder / "contacts_2026-12-01.csv", tmp_path / "contacts.csv"))
    return accounts, contacts


def test_the_dynamics_pair_imports_as_one_run_with_issues_naming_their_file(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    accounts, contacts = dynamics_pair(tmp_path)
    done = import_file(env, accounts, org, "--contacts", str(contacts), "--profile", "dynamics365")
    assert done.code == 1, done
    assert done.summary["contacts_source"] == str(contacts)
    assert done.summary["rows"]["read"] == 5 + 7
    stored = customers_of(engine, org)
    assert sorted(stored) == ["ACC-1001", "ACC-1003", "ACC-1004"]
    assert stored["ACC-1001"]["default_currency"] == "USD"
    assert stored["ACC-1001"]["default_language"] == "en"
    assert stored["ACC-1001"]["notes"] == "Key account since 2019"
    assert stored["ACC-1003"]["default_currency"] == "CHF"
    assert stored["ACC-1003"]["default_language"] == "fr"
    assert stored["ACC-1003"]["billing_address"]["country"] == "CH"
    assert stored["ACC-1004"]["default_language"] == "nl-NL"
    coffee = contacts_of(engine, org, "ACC-1001")
    assert coffee["rene.valdes@fourthcoffee.com"]["is_primary"] is True
    assert coffee["rene.valdes@fourthcoffee.com"]["name"] == "Rene Valdes"
    assert coffee["rene.valdes@fourthcoffee.com"]["phone"] == "+14255550101"
    assert coffee["paul.cannon@fourthcoffee.com"]["role"] == "Accounts Payable"
    assert contacts_of(engine, org, "ACC-1003")["luc.fontaine@fabrikam.ch"]["phone"] == (
        "+41215551234"
    )
    issues = errors_of(done.run_dir)
    orphan = next(e for e in issues if e["code"] == "unknown_customer")
    assert orphan["line"] == "7"
    assert orphan["message"].startswith("contacts.csv line 7: ")
    email = next(e for e in issues if e["code"] == "email")
    assert email["line"] == "8" and email["message"].startswith("contacts.csv line 8: ")
    currency = next(e for e in issues if e["code"] == "currency")
    assert currency["line"] == "6" and currency["column"] == "Currency"
    assert "Galactic Credits" in currency["message"]
    # each file's rejected rows in its own layout
    rejected = (done.run_dir / "rejected_rows.csv").read_text(encoding="utf-8").splitlines()
    assert rejected[0].startswith("Account Number,Account Name,")
    assert [r.split(",")[0] for r in rejected[1:]] == ["ACC-1002", "ACC-1005"]
    rejected_contacts = (done.run_dir / "rejected_contacts.csv").read_text(encoding="utf-8")
    lines = rejected_contacts.splitlines()
    assert lines[0].startswith("Account Number,First Name,Last Name,")
    assert [r.split(",")[0] for r in lines[1:]] == ["ACC-1002", "ACC-1009", "ACC-1002"]


def test_report_write_rebuilds_every_report_file_of_a_two_file_import_byte_for_byte(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    accounts, contacts = dynamics_pair(tmp_path)
    done = import_file(env, accounts, org, "--contacts", str(contacts), "--profile", "dynamics365")
    assert done.code == 1, done
    written = {p.name: p.read_bytes() for p in done.run_dir.iterdir()}
    assert "rejected_contacts.csv" in written and "rejected_rows.csv" in written
    shutil.rmtree(done.run_dir)

    again = run_cli(["report", done.summary["run_id"], "--write"], env)
    assert again.exit_code == 0, again
    assert {p.name: p.read_bytes() for p in done.run_dir.iterdir()} == written


def test_a_contacts_file_needs_a_two_file_profile(env: CliEnv, org: str, tmp_path: Path) -> None:
    accounts, contacts = dynamics_pair(tmp_path)
    result = run_cli(["import", str(accounts), "--org", org, "--contacts", str(contacts)], env)
    assert result.exit_code == 2, result
    assert "two-file" in result.stderr


# --- header drift ---------------------------------------------------------------------------

SAP_HEADER = "KUNNR;NAME1;WAERS;SPRAS;SMTP_ADDR"


def sap_file(path: Path, header: str, *rows: str) -> Path:
    return write_text(path, "\n".join([header, *rows]) + "\n")


def test_the_first_file_of_an_organisation_has_no_header_drift(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    done = import_file(
        env, sap_file(tmp_path / "a.csv", SAP_HEADER, "1;A;EUR;D;a@x.de"), org, "--profile", "sap"
    )
    assert done.code == 0, done
    assert "header_drift" not in done.summary["issues_by_code"]


def test_a_changed_header_is_a_warning_naming_each_difference(
    env: CliEnv, org: str, tmp_path: Path
) -> None:
    first = sap_file(tmp_path / "a.csv", SAP_HEADER, "1;A;EUR;D;a@x.de")
    assert import_file(env, first, org, "--profile", "sap").code == 0
    second = sap_file(tmp_path / "b.csv", "KUNNR;NAME1;WAERS;SPRAS;ORT01", "1;A;EUR;D;Berlin")
    done = import_file(env, second, org, "--profile", "sap")
    assert done.code == 0, done
    assert done.summary["issues_by_code"]["header_drift"] == 1
    drift = [e for e in errors_of(done.run_dir) if e["code"] == "header_drift"]
    assert drift[0]["severity"] == "warning"
    assert "'SMTP_ADDR'" in drift[0]["message"] and "'ORT01'" in drift[0]["message"]
    assert any("SMTP_ADDR" in w for w in done.summary["warnings"])
    # the header of the last applied file is the one compared with next
    third = sap_file(tmp_path / "c.csv", "KUNNR;NAME1;WAERS;SPRAS;ORT01", "2;B;EUR;D;Bonn")
    assert (
        "header_drift"
        not in import_file(env, third, org, "--profile", "sap").summary["issues_by_code"]
    )


def test_strict_header_rejects_a_file_that_lost_a_column(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    first = sap_file(tmp_path / "a.csv", SAP_HEADER, "1;A;EUR;D;a@x.de")
    assert import_file(env, first, org, "--profile", "sap").code == 0
    lost = sap_file(tmp_path / "b.csv", "KUNNR;NAME1;WAERS;SPRAS", "2;B;EUR;D")
    done = import_file(env, lost, org, "--profile", "sap", "--strict-header")
    assert done.code == 3, done
    assert done.summary["file_errors"][0]["code"] == "header_drift"
    assert "SMTP_ADDR" in done.summary["file_errors"][0]["message"]
    assert sorted(customers_of(engine, org)) == ["1"]
    # a column added is no loss: strict or not, it imports
    added = sap_file(tmp_path / "c.csv", f"{SAP_HEADER};ORT01", "3;C;EUR;D;c@x.de;Köln")
    assert import_file(env, added, org, "--profile", "sap", "--strict-header").code == 0


def test_an_inbox_folder_names_its_profile_and_its_pairs_import_as_one_run(
    env: CliEnv, org: str, engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox" / org
    folder.mkdir(parents=True)
    (folder / "erp-sync.toml").write_text('profile = "dynamics365"\n')
    for name in ("accounts_2026-12-01.csv", "contacts_2026-12-01.csv"):
        shutil.copy(SAMPLES / "dynamics365" / name, folder / name)
    shutil.copy(
        SAMPLES / "dynamics365" / "contacts_2026-12-01.csv", folder / "contacts_20261202.csv"
    )
    result = run_cli(
        ["sync", str(tmp_path / "inbox"), "--json", "--report-dir", str(tmp_path / "reports")], env
    )
    document = result.json()
    assert [Path(f["file"]).name for f in document["files"]] == ["accounts_2026-12-01.csv"]
    assert document["files"][0]["exit_code"] == 1
    assert [e["code"] for e in document["org_errors"]] == ["unpaired_contacts"]
    assert result.exit_code == 2
    assert "rene.valdes@fourthcoffee.com" in contacts_of(engine, org, "ACC-1001")
