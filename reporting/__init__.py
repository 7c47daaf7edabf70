"""The files a run leaves: summary.json, errors.csv, rejected_rows.csv, report.html; the index.

File output only: no database and no prefect (import-linter keeps it so). The flows pass in a
`contract.Summary` and the frames the validators produced.
"""

from reporting.files import FORMULA_PREFIXES, neutralise_formulas
from reporting.pages import render_index, render_run_report
from reporting.writer import write_index, write_run_reports

__all__ = [
    "FORMULA_PREFIXES",
    "neutralise_formulas",
    "render_index",
    "render_run_report",
    "write_index",
    "write_run_reports",
]
