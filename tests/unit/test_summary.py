"""The summary model writes the contract's summary.json, byte for byte as before it was a model."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import pytest

from contract import ExitCode, RunStatus, Summary
from flows.importing import ExportInfo, ImportOptions, RunContext, summarise
from loaders.orgs import Organisation
from loaders.upsert import LoadCounts
from validators import resolve_header, validate_rows
from validators.testing import make_rows

GOLDEN = Path(__file__).parents[1] / "data_files" / "golden" / "summary.json"

HEADER = [
    "erp_customer_number",
    "name",
    "default_currency",
    "default_language",
    "contact_email",
    "contact_is_primary",
    "fax",
]
RECORDS = [
    {"erp_customer_number": "K-1", "name": "Anna GmbH", "default_currency": "eur",
     "default_language": "de_de", "contact_email": "a@example.com", "contact_is_primary": "x"},
    {"erp_customer_number": "K-1", "name": "Anna GmbH", "default_currency": "eur",
     "default_language": "de_de", "contact_email": "b@example.com", "contact_is_primary": "x"},
    {"erp_customer_number": "K-2", "name": "Bruno SA", "default_currency": "XXX",
     "default_language": "fr"},
    {"erp_customer_number": "K-3", "name": "", "default_currency": "CHF", "default_language": "it"},
]  # fmt: skip


def _golden_run() -> Summary:
    """The run the golden file was written from (by the code before the summary was a model)."""
    validated = validate_rows(make_rows(HEADER, RECORDS), resolve_header(HEADER))
    ctx = RunContext(
        run_id="01890000-0000-7000-8000-0000000000aa",
        org=Organisation(uuid.UUID("01890000-0000-7000-8000-000000000001"), "acme", "Acme"),
        source=Path("inbox/acme/kunden_2026-11-20.csv"),
        options=ImportOptions(mode="full", report_dir=Path("reports")),
        started_at=datetime(2026, 11, 20, 2, 0, 0, 123456, tzinfo=UTC),
    )
    return summarise(
        ctx,
        status=RunStatus.PARTIAL,
        finished_at=datetime(2026, 11, 20, 2, 0, 3, 654321, tzinfo=UTC),
        export=ExportInfo(sha256="ab" * 32, encoding="utf-8", delimiter=";"),
        issues=validated.issues,
        validated=validated,
        counts=LoadCounts(
            customers_inserted=1,
            customers_deactivated=4,
            customers_reactivated=1,
            contacts_inserted=1,
        ),
    )


def test_the_summary_json_of_a_run_matches_the_golden_file_key_for_key() -> None:
    written = json.dumps(_golden_run().to_json_dict(), indent=2, ensure_ascii=False) + "\n"
    assert written == GOLDEN.read_text(encoding="utf-8")


def test_a_stored_summary_reads_back_into_the_same_model() -> None:
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    summary = Summary.model_validate(document)
    assert summary == _golden_run()
    assert summary.to_json_dict() == document


def test_a_malformed_summary_is_an_error_not_zeros() -> None:
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    del document["rows"]["valid"]
    document["rows"]["read"] = "four"
    with pytest.raises(pydantic.ValidationError):
        Summary.model_validate(document)
    with pytest.raises(pydantic.ValidationError):
        Summary.model_validate({**json.loads(GOLDEN.read_text()), "surprise": 1})


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("succeeded", 0),
        ("skipped", 0),
        ("partial", 1),
        ("rejected", 3),
        ("failed", 4),
    ],
)
def test_the_exit_code_of_a_run_follows_the_contract(status: str, code: int) -> None:
    assert ExitCode.for_status(status) == code
    assert _golden_run().model_copy(update={"status": RunStatus(status)}).exit_code == code
