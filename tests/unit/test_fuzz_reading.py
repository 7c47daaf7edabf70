"""Seeded fuzzing of the reader and the validators: mutated exports in, contract invariants out.

Each case is one seed export with one to three mutations (tests/fuzzing.py), all drawn from the
case's seed, so a failure names the seed that replays it. The file is read with `read_export`,
then its header and rows are checked as `validate_step` does. Whatever the bytes, the outcome is
a whole-file rejection with a known file-error code, or rows that all add up.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import polars as pl
import pytest

from contract import KEY, FileErrorCode
from contract.frames import ISSUE_SCHEMA
from contract.issues import ISSUE_COLUMNS
from flows.reading import RawExport, ReadError, read_export
from tests.fuzzing import Case, mutated_case, seed_exports, text_of_seed
from validators import resolve_header, validate_rows

CASES = 400
FIRST_SEED = 20_261_122
TIME_BUDGET = 60.0  # seconds for all the cases

FILE_ERROR_CODES = {str(code) for code in FileErrorCode}


def check_case(case: Case, path: Path) -> str:
    """Read and validate one mutated export; return what became of it, or raise AssertionError."""
    path.write_bytes(case.data)
    try:
        raw = read_export(path)
    except ReadError as exc:
        assert exc.code in FILE_ERROR_CODES, f"unknown file error code {exc.code!r}"
        assert exc.message.strip(), "a ReadError without a message"
        return f"read error {exc.code}"
    assert isinstance(raw, RawExport)
    if not raw.header:
        assert raw.rows.height == 0
        return "empty"
    header = resolve_header(raw.header)
    if header.file_errors:
        codes = {str(error.code) for error in header.file_errors}
        assert codes <= FILE_ERROR_CODES, codes
        assert dict(header.issues.schema) == ISSUE_SCHEMA
        return "header error " + ",".join(sorted(codes))
    validated = validate_rows(raw.rows, header)

    assert validated.rows_read == raw.rows.height
    assert validated.rows_read == validated.rows_valid + validated.rows_rejected
    issues = validated.issues
    assert tuple(issues.columns) == ISSUE_COLUMNS
    assert dict(issues.schema) == ISSUE_SCHEMA
    assert issues["severity"].is_in(["error", "warning"]).all()

    rejected = validated.rejected_rows
    assert rejected.height == validated.rows_rejected
    if rejected.height:
        error_lines = set(issues.filter(pl.col("severity") == "error")["line"].to_list())
        without_issue = [line for line in rejected["_line"].to_list() if line not in error_lines]
        assert not without_issue, f"rejected rows with no error issue: lines {without_issue}"
        assert rejected["errors"].null_count() == 0, "a rejected row with no error text"

    # The customer is the unit: no accepted customer has a row with an error.
    failed_keys = set(
        issues.filter(pl.col("severity") == "error")["erp_customer_number"].drop_nulls().to_list()
    )
    accepted = validated.customers[KEY].to_list() if validated.customers.width else []
    assert not failed_keys & set(accepted), "a customer accepted despite an error on its rows"
    assert len(accepted) == len(set(accepted)), "a customer accepted twice"
    return "validated" if not validated.rows_rejected else "partly rejected"


def test_the_seed_exports_are_read_and_validated(tmp_path: Path) -> None:
    outcomes = [
        check_case(Case(0, name, (), data), tmp_path / name) for name, data in seed_exports()
    ]
    assert all(o in ("validated", "partly rejected") for o in outcomes), outcomes


def test_mutated_exports_are_rejected_whole_or_validated_with_rows_that_add_up(
    tmp_path: Path,
) -> None:
    seeds = seed_exports()
    failures: list[str] = []
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    for seed in range(FIRST_SEED, FIRST_SEED + CASES):
        case = mutated_case(seed, seeds)
        try:
            outcome = check_case(case, tmp_path / f"case-{seed}.csv")
        except AssertionError as exc:
            failures.append(f"{case}: {str(exc).splitlines()[0]}")
        except Exception as exc:
            failures.append(f"{case}: raised {type(exc).__name__}: {exc}")
        else:
            kind = outcome.split(" ")[0]
            outcomes[kind] = outcomes.get(kind, 0) + 1
    elapsed = time.monotonic() - started

    assert not failures, f"{len(failures)} of {CASES} cases broke an invariant:\n" + "\n".join(
        failures[:40]
    )
    # The mutations reach every stage: some files are refused, some validated.
    assert outcomes.get("validated", 0) + outcomes.get("partly", 0) > CASES // 5, outcomes
    assert outcomes.get("read", 0) > 0, outcomes
    assert elapsed < TIME_BUDGET, f"{CASES} cases took {elapsed:.0f}s"


@pytest.mark.parametrize(
    "transform",
    ["crlf", "cr", "utf-16", "cp1252", "utf-8 BOM"],
)
def test_an_export_rewritten_without_changing_its_text_reads_the_same_rows(
    tmp_path: Path, transform: str
) -> None:
    """Line ends and encodings the contract accepts change nothing of what is read."""
    for name, data in seed_exports():
        text = text_of_seed(data)
        plain = text.replace("\r\n", "\n")
        if transform == "crlf":
            changed = plain.replace("\n", "\r\n").encode("utf-8")
        elif transform == "cr":
            changed = plain.replace("\n", "\r").encode("utf-8")
        elif transform == "utf-16":
            changed = plain.encode("utf-16")
        elif transform == "cp1252":
            try:
                changed = plain.encode("cp1252")
            except UnicodeEncodeError:
                continue
        else:
            changed = b"\xef\xbb\xbf" + plain.encode("utf-8")
        (tmp_path / "plain.csv").write_bytes(plain.encode("utf-8"))
        (tmp_path / "changed.csv").write_bytes(changed)
        expected = read_export(tmp_path / "plain.csv")
        actual = read_export(tmp_path / "changed.csv")
        assert actual.header == expected.header, (name, transform)
        assert _cells(actual) == _cells(expected), (name, transform)


def _cells(raw: RawExport) -> list[tuple[object, ...]]:
    """Rows without their line numbers, newlines in quoted cells as LF."""
    cells = raw.rows.drop("_line").with_columns(
        pl.col(pl.String).str.replace_all("\r\n", "\n").str.replace_all("\r", "\n")
    )
    return cells.rows()


def test_a_utf8_export_with_some_windows_1252_lines_is_rejected_naming_a_line(
    tmp_path: Path,
) -> None:
    """Mixed encodings are refused (`encoding`), never read as mojibake (CONTRACT.md 1)."""
    rng = random.Random(FIRST_SEED)
    texts = [
        text_of_seed(data).replace("\r\n", "\n")
        for name, data in seed_exports()
        if name != "cp1252_pipe_export.csv"
    ]
    failures = []
    refused = 0
    for attempt in range(20):
        lines = rng.choice(texts).split("\n")
        # a line with a character Windows-1252 writes as one byte, which UTF-8 cannot read
        candidates = [
            i for i, line in enumerate(lines[1:], 1) if any(0x80 <= ord(c) < 0x100 for c in line)
        ]
        if not candidates:
            continue
        chosen = set(rng.sample(candidates, rng.randint(1, min(2, len(candidates)))))
        data = b"\n".join(
            line.encode("cp1252", errors="replace") if i in chosen else line.encode("utf-8")
            for i, line in enumerate(lines)
        )
        # When every non-ASCII line went to Windows-1252, the file is a plain Windows-1252 file:
        # it must read as one, without mojibake. Otherwise it mixes encodings: refused.
        mixed = any(
            any(ord(c) >= 0x80 for c in line) for i, line in enumerate(lines) if i not in chosen
        )
        path = tmp_path / f"mixed-{attempt}.csv"
        path.write_bytes(data)
        try:
            raw = read_export(path)
        except ReadError as exc:
            if not mixed or exc.code != FileErrorCode.ENCODING or "line" not in exc.message:
                failures.append(f"attempt {attempt}: {exc.code}: {exc.message}")
            refused += 1
            continue
        mojibake = raw.rows.select(
            pl.any_horizontal(pl.col(pl.String).str.contains("[ÃÂ][\u0080-\u00bf]"))
        ).to_series()
        if not mixed and raw.encoding == "windows-1252" and not mojibake.any():
            continue
        failures.append(
            f"attempt {attempt} (lines {sorted(i + 1 for i in chosen)} in Windows-1252): read as "
            f"{raw.encoding}, {int(mojibake.sum())} rows with mojibake"
        )
    assert not failures, "\n".join(failures)
    assert refused, "no attempt mixed the encodings: the seed exports need more non-ASCII lines"
