"""The command line's shape: every command shows an example, and importing it stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from flows.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _commands(
    command: click.Command, parent: click.Context | None = None, name: str = "erp-sync"
) -> Iterator[tuple[str, click.Command, click.Context]]:
    """The group, every command and every subcommand, each with a context for its help."""
    ctx = click.Context(command, info_name=name, parent=parent)
    yield ctx.command_path, command, ctx
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            yield from _commands(sub, ctx, sub_name)


def test_the_walk_reaches_every_command_and_subcommand() -> None:
    paths = {path for path, _, _ in _commands(cli)}
    assert {"erp-sync", "erp-sync db upgrade", "erp-sync org list", "erp-sync demo"} <= paths


def test_every_command_and_subcommand_shows_an_example_of_itself_in_its_help() -> None:
    missing = []
    for path, command, ctx in _commands(cli):
        lines = [line.strip() for line in command.get_help(ctx).splitlines()]
        # `\b` keeps the example on its own line, exactly as written
        examples = [
            lines[i + 1]
            for i, line in enumerate(lines[:-1])
            if line == "Example:" and lines[i + 1].startswith(path)
        ]
        if not examples:
            missing.append(path)
    assert missing == []


def test_importing_the_cli_imports_no_prefect_polars_pandera_or_pandas() -> None:
    code = (
        "import sys, flows.cli; "
        "print(sorted(m for m in ('prefect','polars','pandera','pandas') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_the_human_summary_names_a_few_unknown_columns_shortened_and_counts_the_rest() -> None:
    """A header that swallowed its data (or has 10,000 columns) must not print every cell."""
    from contract import Summary
    from flows.cli.formatting import WARNING_WIDTH, WARNINGS_SHOWN, format_summary

    golden = Path(__file__).parents[1] / "data_files" / "golden" / "summary.json"
    document = json.loads(golden.read_text(encoding="utf-8"))
    secret = "anna.mueller@example.com"
    document["warnings"] = [
        f"unknown column {secret + str(i) + ' ' + 'x' * 80!r} ignored" for i in range(10_000)
    ]
    text = format_summary(Summary.model_validate(document))

    warning_lines = [line for line in text.splitlines() if line.strip().startswith("warning")]
    assert len(warning_lines) == WARNINGS_SHOWN + 1
    assert all(len(line.split("warning", 1)[1].strip()) <= WARNING_WIDTH for line in warning_lines)
    assert f"and {10_000 - WARNINGS_SHOWN} more" in warning_lines[-1]
    assert "errors.csv" in warning_lines[-1]
    assert secret not in text  # a header that swallowed its data holds its emails
