"""`erp-sync profile`: the shipped source profiles, one as a table, a dry check, a guess."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flows.cli.common import UsageError

if TYPE_CHECKING:
    from flows.reading import RawExport
    from validators.profiles import Profile

_CHECK_ROWS = 200
_SHOWN_PROBLEMS = 10


def _load(name_or_path: str) -> Profile:
    from validators.profiles import ProfileError, load_profile

    try:
        return load_profile(name_or_path)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def _read(file: Path, profile: Profile) -> RawExport | None:
    from flows.importing import read_options
    from flows.reading import ReadError, read_export

    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    try:
        return read_export(file, read_options(profile))
    except ReadError as exc:
        click.echo(f"the file cannot be read ({exc.code}): {exc.message}")
        return None


def _table(rows: Sequence[tuple[str, ...]], titles: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [titles, *rows]) for i in range(len(titles))]
    lines = ["  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(lines)


@click.group("profile")
def profile() -> None:
    """Source profiles: how an ERP's export maps onto erp-sync's columns.

    \b
    Example:
      erp-sync profile list
      erp-sync profile show sap
      erp-sync profile check KNA1.csv --profile sap
      erp-sync profile guess export.csv
    """


@profile.command("list")
def list_command() -> None:
    """List the shipped profiles and which export each reads.

    \b
    Example:
      erp-sync profile list
    """
    from validators.profiles import load_profile, shipped_profiles

    rows = []
    for name in shipped_profiles():
        found = load_profile(name)
        rows.append((name, found.title, found.reads))
    click.echo(_table(rows, ("profile", "source", "reads")))


def _describe_spec(spec: object) -> tuple[str, str]:
    from validators.profiles import ColumnSpec

    assert isinstance(spec, ColumnSpec)
    if spec.value is not None:
        source = f"(always {spec.value!r})"
    else:
        source = " or ".join(" + ".join(alternative) for alternative in spec.sources)
    if spec.when is not None:
        source += f" (when {spec.when} is filled)"
    maps = []
    if spec.map is not None:
        maps.append(", ".join(f"{k} -> {v}" for k, v in spec.map.items()))
    if spec.translate is not None:
        maps.append(spec.translate)
    return source, "; ".join(maps)


@profile.command("show")
@click.argument("name")
def show_command(name: str) -> None:
    """Show one profile's mapping as a table: contract column, source header(s), value map.

    \b
    Example:
      erp-sync profile show datev
    """
    from contract import ALL_COLUMNS

    found = _load(name)
    click.echo(f"{found.name}: {found.title}")
    if found.reads:
        click.echo(f"reads: {found.reads}")
    file = found.file
    click.echo(
        f"file: encoding {file.encoding or 'detected'}, delimiter "
        f"{repr(file.delimiter) if file.delimiter else 'detected'}"
        + (f", skips {file.skip_lines} line(s)" if file.skip_lines else "")
        + (
            f", skips lines starting with {', '.join(file.skip_lines_starting_with)}"
            if file.skip_lines_starting_with
            else ""
        )
    )
    click.echo(f"phones: {found.phones}")
    if found.booleans.true or found.booleans.false:
        click.echo(
            f"yes/no words: true {list(found.booleans.true)}, false {list(found.booleans.false)}"
        )
    click.echo("")
    if found.is_default:
        rows = [(column, column, "") for column in ALL_COLUMNS]
    else:
        rows = [(column, *_describe_spec(spec)) for column, spec in found.columns.items()]
    click.echo(_table(rows, ("column", "source header(s)", "value map")))
    contacts = found.contacts
    if contacts is not None:
        click.echo("")
        if contacts.files is not None:
            click.echo(
                f"contacts: a second file (inbox patterns {contacts.files[0]} / "
                f"{contacts.files[1]}), joined on the customer number"
            )
        else:
            click.echo(
                f"contacts: rows whose '{contacts.parent}' names a row's '{contacts.parent_key}'"
            )
        rows = [(column, *_describe_spec(spec)) for column, spec in contacts.columns.items()]
        click.echo(_table(rows, ("column", "source header(s)", "value map")))


@profile.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--profile", "profile_name", default="erp-sync", show_default=True)
def check_command(file: Path, profile_name: str) -> int:
    """Read FILE's header and first rows with a profile; change nothing.

    Prints how each source column maps and the first problems. Exit 0 when the file would
    import without a rejected row, 1 when some of the first rows would be rejected, 3 when the
    file as a whole would be refused.

    \b
    Example:
      erp-sync profile check KNA1.csv --profile sap
    """
    import polars as pl

    from contract import ExitCode, Severity
    from validators import resolve_header, validate_rows
    from validators.mapping import map_export

    found = _load(profile_name)
    raw = _read(file, found)
    if raw is None:
        return ExitCode.REJECTED
    click.echo(
        f"{file.name}: profile {found.name}, encoding {raw.encoding}, delimiter {raw.delimiter!r}, "
        f"{raw.rows.height} data row(s)"
    )
    if not raw.header:
        click.echo("the file is empty: it would import and change nothing")
        return ExitCode.OK
    rows = raw.rows.head(_CHECK_ROWS)
    if found.is_default:
        header = resolve_header(raw.header)
        prior = shadow = None
        mapped_rows = rows
    else:
        mapped = map_export(rows, raw.header, found)
        header, prior, shadow, mapped_rows = mapped.header, mapped.prior, mapped.shadow, mapped.rows
    feeds: dict[str, list[str]] = {}
    labels = header.labels or {c: raw.header[i] for c, i in header.columns.items()}
    for column, label in labels.items():
        for name in label.split(" + "):
            feeds.setdefault(name.strip().casefold(), []).append(column)
    if found.contacts is not None and found.contacts.parent is not None:
        feeds.setdefault(found.contacts.parent.casefold(), []).append(
            f"a contact's company ({found.contacts.parent_key})"
        )
    table = [
        (str(i + 1), name.strip(), ", ".join(feeds.get(name.strip().casefold(), [])) or "ignored")
        for i, name in enumerate(raw.header)
    ]
    click.echo(_table(table, ("#", "source column", "feeds")))
    if header.file_errors:
        click.echo("")
        for error in header.file_errors:
            click.echo(f"refused ({error.code}): {error.message}")
        return ExitCode.REJECTED
    validated = validate_rows(mapped_rows, header, prior=prior, shadow=shadow)
    problems = validated.issues.filter(pl.col("code") != "unknown_column")
    click.echo("")
    checked = f"the first {rows.height} row(s)" if rows.height < raw.rows.height else "all rows"
    if problems.is_empty():
        click.echo(f"no problem in {checked}")
    else:
        click.echo(f"{problems.height} issue(s) in {checked}; the first:")
        for issue in problems.head(_SHOWN_PROBLEMS).iter_rows(named=True):
            click.echo(
                f"  line {issue['line']}: {issue['severity']} {issue['code']}"
                f" ({issue['column'] or '-'}): {issue['message']}"
            )
    errors = problems.filter(problems["severity"] == str(Severity.ERROR)).height
    return ExitCode.PARTIAL if errors else ExitCode.OK


@profile.command("guess")
@click.argument("file", type=click.Path(path_type=Path))
def guess_command(file: Path) -> int:
    """Name the shipped profile whose aliases cover FILE's header best, with its coverage.

    \b
    Example:
      erp-sync profile guess export.csv
    """
    from contract import ExitCode
    from validators.mapping import coverage
    from validators.profiles import load_profile, shipped_profiles

    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    scores = []
    for name in shipped_profiles():
        found = load_profile(name)
        raw = _read_quietly(file, found)
        if raw is None or not raw.header:
            continue
        covered, required = coverage(raw.header, found)
        scores.append((covered, required, name, len(raw.header)))
    if not scores:
        click.echo(f"{file.name}: no shipped profile can read its header")
        return ExitCode.REJECTED
    scores.sort(key=lambda s: (s[1], s[0]), reverse=True)
    for covered, required, name, width in scores:
        click.echo(
            f"{name:<12} covers {covered:.0%} of the {width} column(s)"
            + ("" if required else " (a required column is missing)")
        )
    best = scores[0]
    if not best[1] or best[0] == 0:
        click.echo("no shipped profile fits; write one (see the README)")
        return ExitCode.REJECTED
    click.echo(f"best: {best[2]} ({best[0]:.0%})")
    return ExitCode.OK


def _read_quietly(file: Path, profile: Profile) -> RawExport | None:
    from flows.importing import read_options
    from flows.reading import ReadError, read_export

    try:
        return read_export(file, read_options(profile))
    except ReadError:
        return None
