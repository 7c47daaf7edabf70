"""The Prefect flow `nightly-sync`: import every new export of an inbox, one subflow run per file.

The inbox holds one folder per organisation, named by its slug: ``INBOX/<org-slug>/*.csv``
(also ``.txt`` and ``.tsv``). A file is new when its bytes (sha256) were never applied to that
organisation, so a renamed copy of an applied file is not applied again. The inbox is only read:
no file is moved, renamed or written.

Each file is imported by the flow `import-file`, called inside this flow, so every file is its
own subflow run. Files of one organisation run one at a time in as-of order (the date or time in
the file name; undated files first), then in name order; organisations run in parallel, up to
``ERP_SYNC_SYNC_CONCURRENCY`` at once.
"""

from __future__ import annotations

import contextvars
import fnmatch
import logging
import re
import tomllib
import uuid
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from sqlalchemy.engine import Engine

from contract import ExitCode, RunStatus
from flows.asof import as_of_from_name
from flows.import_flow import import_file
from flows.importing import (
    ImportOptions,
    ImportResult,
    Rewritten,
    file_sha256,
    pair_sha256,
    write_missing_reports,
    write_reports_index,
)
from flows.prefect_flow import erp_flow
from flows.reading import file_identity
from flows.runtime import open_database
from flows.settings import get_settings
from loaders import history, runs
from loaders.exceptions import OrganisationNotFoundError
from loaders.orgs import get_org
from validators.profiles import ProfileError, load_profile, shipped_profiles

EXPORT_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
ORG_SETTINGS_FILE = "erp-sync.toml"

_MODES = ("upsert", "full")
_DATE_PART = re.compile(r"\d{4}-?\d{2}-?\d{2}")
_RATE_KEYS = ("max_error_rate", "max_deactivate_rate")


class OrgSettingsError(Exception):
    """An organisation's erp-sync.toml cannot be used: the organisation is skipped (exit 2)."""


@dataclass
class OrgBatch:
    """One organisation's work in a sync: its options and the new files, in as-of order."""

    slug: str
    options: ImportOptions
    files: list[Path] = field(default_factory=list)
    contacts: dict[Path, Path] = field(default_factory=dict)
    """customers file -> its contacts file, for a two-file profile"""
    hashed: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    """file -> (sha256, file identity) as the plan hashed it: the import does not hash again"""


@dataclass
class SyncPlan:
    """What a sync will do, decided before any import starts."""

    batches: list[OrgBatch] = field(default_factory=list)
    orgs: dict[str, uuid.UUID] = field(default_factory=dict)
    """every known organisation of the inbox, new files or not: slug -> id"""
    unknown_orgs: list[str] = field(default_factory=list)
    org_errors: list[dict[str, Any]] = field(default_factory=list)
    skipped_already_applied: int = 0


# --- finding the work -------------------------------------------------------------------------


def list_org_folders(inbox: Path) -> list[Path]:
    """The organisation folders of an inbox, by name (hidden folders are not organisations)."""
    return sorted(
        (p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def list_exports(folder: Path) -> list[Path]:
    """The export files of an organisation folder (.csv, .txt, .tsv, any case), by name."""
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXPORT_SUFFIXES
        ),
        key=lambda p: p.name,
    )


def read_org_settings(folder: Path, options: ImportOptions) -> ImportOptions:
    """The command's options with the folder's erp-sync.toml (mode, rates) laid over them."""
    path = folder / ORG_SETTINGS_FILE
    if not path.is_file():
        return options
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise OrgSettingsError(f"{path}: not readable TOML: {exc}") from exc
    return apply_org_settings(options, data, source=str(path), folder=folder)


def apply_org_settings(
    options: ImportOptions,
    data: Mapping[str, Any],
    *,
    source: str,
    folder: Path | None = None,
) -> ImportOptions:
    """Check an organisation's settings and return the options they override."""
    unknown = sorted(set(data) - {"mode", "profile", "strict_header", *_RATE_KEYS})
    if unknown:
        raise OrgSettingsError(
            f"{source}: unknown key(s) {', '.join(unknown)} "
            f"(allowed: mode, max_error_rate, max_deactivate_rate, profile, strict_header)"
        )
    changes: dict[str, Any] = {}
    if "profile" in data:
        changes["profile"] = _org_profile(data["profile"], source, folder)
    if "strict_header" in data:
        if not isinstance(data["strict_header"], bool):
            raise OrgSettingsError(f"{source}: strict_header must be true or false")
        changes["strict_header"] = data["strict_header"]
    if "mode" in data:
        if data["mode"] not in _MODES:
            raise OrgSettingsError(
                f"{source}: mode must be 'upsert' or 'full', not {data['mode']!r}"
            )
        changes["mode"] = data["mode"]
    for key in _RATE_KEYS:
        if key in data:
            value = data[key]
            # bool is an int in Python; `true` is not a rate
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise OrgSettingsError(
                    f"{source}: {key} must be a number from 0 to 1, not {value!r}"
                )
            changes[key] = float(value)
    return ImportOptions.model_validate({**options.model_dump(), **changes})


def _org_profile(value: Any, source: str, folder: Path | None) -> str:
    """A folder's profile: a shipped name, or a .toml path relative to the folder."""
    if not isinstance(value, str) or not value:
        raise OrgSettingsError(f"{source}: profile must be a profile name or a .toml path")
    if value not in shipped_profiles() and folder is not None:
        value = str((folder / value).resolve())
    try:
        load_profile(value)
    except ProfileError as exc:
        raise OrgSettingsError(f"{source}: {exc}") from None
    return value


def pair_exports(
    files: list[Path], patterns: tuple[str, str]
) -> tuple[list[Path], dict[Path, Path], list[Path]]:
    """Pair the customers and contacts files of a two-file profile by their date part.

    Returns the customers files (in name order), customers file -> its contacts file, and the
    contacts files that have no customers file of the same date.
    """
    customers_pattern, contacts_pattern = patterns
    customers = [p for p in files if fnmatch.fnmatch(p.name.lower(), customers_pattern.lower())]
    contacts = [
        p
        for p in files
        if fnmatch.fnmatch(p.name.lower(), contacts_pattern.lower()) and p not in customers
    ]
    by_date = {_date_part(p.name): p for p in contacts}
    pairs: dict[Path, Path] = {}
    for path in customers:
        partner = by_date.pop(_date_part(path.name), None)
        if partner is not None:
            pairs[path] = partner
    return customers, pairs, sorted(by_date.values())


def _date_part(name: str) -> str:
    found = _DATE_PART.search(name)
    return found.group().replace("-", "") if found else ""


def in_as_of_order(files: list[Path], as_of_pattern: str | None = None) -> list[Path]:
    """An organisation's files by as-of time (file name), then name; files without one first."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(files, key=lambda p: (as_of_from_name(p.name, as_of_pattern) or oldest, p.name))


def plan_sync(
    engine: Engine,
    inbox: Path,
    options: ImportOptions,
    as_of_pattern: str | None = None,
    only: Collection[str] | None = None,
) -> SyncPlan:
    """Decide, per organisation folder, which files to import and with which options.

    An organisation's files go in as-of order (then by name), so that an older export that
    arrived late meets the stale-export guard instead of overwriting newer data. `only`: the
    folders of these organisations and no other (a shard of a night on a work pool).
    """
    plan = SyncPlan()
    folders = list_org_folders(inbox)
    if only is not None:
        wanted = set(only)
        folders = [f for f in folders if f.name in wanted]
    with engine.connect() as conn:
        for folder in folders:
            slug = folder.name
            try:
                organisation = get_org(conn, slug)
            except OrganisationNotFoundError as exc:
                plan.unknown_orgs.append(slug)
                plan.org_errors.append(
                    {
                        "org": slug,
                        "code": "unknown_org",
                        "message": str(exc),
                        "exit_code": int(ExitCode.USAGE),
                    }
                )
                continue
            plan.orgs[slug] = organisation.id
            try:
                org_options = read_org_settings(folder, options)
            except OrgSettingsError as exc:
                plan.org_errors.append(
                    {
                        "org": slug,
                        "code": "org_settings",
                        "message": str(exc),
                        "exit_code": int(ExitCode.USAGE),
                    }
                )
                continue
            batch = OrgBatch(slug=slug, options=org_options)
            exports = list_exports(folder)
            profile = load_profile(org_options.profile)
            if profile.contacts is not None and profile.contacts.files is not None:
                exports, batch.contacts, unpaired = pair_exports(exports, profile.contacts.files)
                for path in unpaired:
                    plan.org_errors.append(
                        {
                            "org": slug,
                            "code": "unpaired_contacts",
                            "message": f"{path.name}: no customers file with the same date",
                            "exit_code": int(ExitCode.USAGE),
                        }
                    )
            seen: set[str] = set()
            for path in in_as_of_order(exports, as_of_pattern):
                if options.force:
                    batch.files.append(path)
                    continue
                try:
                    digest = _hashed(batch, path)
                    if path in batch.contacts:
                        digest = pair_sha256(digest, _hashed(batch, batch.contacts[path]))
                except OSError:
                    batch.files.append(path)  # import-file reports why it cannot be read
                    continue
                # a renamed copy: applied before, or a twin earlier in this same batch
                if digest in seen or runs.find_applied_run(conn, organisation.id, digest):
                    plan.skipped_already_applied += 1
                    continue
                seen.add(digest)
                batch.files.append(path)
            if batch.files:
                plan.batches.append(batch)
    return plan


def _hashed(batch: OrgBatch, path: Path) -> str:
    """The file's sha256, noted with its identity for the import (`ImportOptions.known_sha256`)."""
    identity = file_identity(path)
    digest = file_sha256(path)
    batch.hashed[str(path)] = (digest, identity)
    return digest


# --- running it -------------------------------------------------------------------------------


def _file_result(org: str, path: Path, result: ImportResult) -> dict[str, Any]:
    summary = result.summary
    return {
        "org": org,
        "file": str(path),
        "status": str(summary.status),
        "run_id": summary.run_id,
        "exit_code": int(result.exit_code),
        "report_dir": summary.report_dir,
        "reports_error": result.reports_error_message(),
    }


def failed_file(org: str, path: Path) -> dict[str, Any]:
    """A file whose import crashed, or was lost with its shard: nothing applied, no run known."""
    return {
        "org": org,
        "file": str(path),
        "status": str(RunStatus.FAILED),
        "run_id": None,
        "exit_code": int(ExitCode.FAILED),
        "report_dir": None,
        "reports_error": None,
    }


def _not_applied(org: str, path: Path, failed: Path) -> dict[str, Any]:
    """A file left for the next sync because an earlier file of its organisation failed."""
    return {
        "org": org,
        "file": str(path),
        "status": str(RunStatus.SKIPPED),
        "run_id": None,
        "exit_code": int(ExitCode.OK),
        "report_dir": None,
        "reports_error": None,
        "reason": (
            f"not applied: the organisation's earlier file {failed.name} failed; its files "
            "apply in order, so the next sync applies this one after it"
        ),
    }


def import_org_files(
    batch: OrgBatch, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> list[dict[str, Any]]:
    """Import one organisation's files in order, each as a subflow run.

    A rejected file stops none (it applied nothing, and the next file does not depend on it);
    a failed one (an infrastructure failure or a crash) stops the organisation's later files:
    applying them would apply its exports out of order. They stay new for the next sync.
    """
    results = []
    failed: Path | None = None
    for path in batch.files:
        if failed is not None:
            logger.warning("%s: %s: not applied, %s failed", batch.slug, path.name, failed.name)
            results.append(_not_applied(batch.slug, path, failed))
            continue
        options = batch.options
        if path in batch.contacts:
            options = options.model_copy(update={"contacts": batch.contacts[path]})
        known = {
            name: batch.hashed[name]
            for name in (str(path), str(batch.contacts.get(path, "")))
            if name in batch.hashed
        }
        if known:
            options = options.model_copy(update={"known_sha256": known})
        try:
            imported = import_file(str(path), batch.slug, options)
        except Exception as exc:  # a crash outside the import's own handling
            logger.error("%s: %s: import crashed: %s", batch.slug, path.name, type(exc).__name__)
            results.append(failed_file(batch.slug, path))
            failed = path
            continue
        result = _file_result(batch.slug, path, imported)
        logger.info("%s: %s: %s", batch.slug, path.name, result["status"])
        results.append(result)
        if result["status"] == RunStatus.FAILED:
            failed = path
    return results


def _run_batches(
    batches: list[OrgBatch], concurrency: int, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> list[dict[str, Any]]:
    """Run each organisation's batch in its own thread, at most `concurrency` at a time."""
    if not batches:
        return []
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(batches)), thread_name_prefix="erp-sync-org"
    ) as pool:
        # Each thread gets a copy of this flow run's context, so `import_file` called there is a
        # subflow run of this one (a fresh copy per batch: one Context cannot be entered twice).
        futures = [
            pool.submit(contextvars.copy_context().run, import_org_files, batch, logger)
            for batch in batches
        ]
        return [result for future in futures for result in future.result()]


def reports_recovered(recovered: list[Rewritten]) -> list[dict[str, Any]]:
    """The summary's `reports_recovered`: the earlier runs whose missing reports were written."""
    return [
        {
            "run_id": r.run_id,
            "org": r.org,
            "report_dir": str(r.run_dir),
            "error": r.error,
            "message": r.message(),
        }
        for r in recovered
    ]


def sync_exit_code(files: list[dict[str, Any]], org_errors: list[dict[str, Any]]) -> int:
    """The highest exit code of the sync's files and organisation errors (0 when none)."""
    return max([0, *(f["exit_code"] for f in files), *(e["exit_code"] for e in org_errors)])


@erp_flow(name="nightly-sync", log_prints=False)
def sync_inbox(inbox: str, options: ImportOptions | None = None) -> dict[str, Any]:
    """Import every new export under INBOX/<org-slug>/, one subflow run of import-file per file."""
    settings = get_settings()
    options = options or ImportOptions(report_dir=settings.report_dir)
    started_at = datetime.now(UTC)
    root = Path(inbox)
    if not root.is_dir():
        raise FileNotFoundError(f"no such inbox folder: {root}")

    engine = open_database(settings).engine
    return _sync(engine, root, options, settings.sync_concurrency, started_at)


def prune_history_after_sync(engine: Engine, days: int | None) -> history.Pruned | None:
    """ERP_SYNC_HISTORY_DAYS: delete the change history older than that many days (if set)."""
    if days is None:
        return None
    with engine.begin() as conn:
        return history.prune_history(conn, datetime.now(UTC) - timedelta(days=days))


def _sync(
    engine: Engine, root: Path, options: ImportOptions, concurrency: int, started_at: datetime
) -> dict[str, Any]:
    logger = get_run_logger()
    settings = get_settings()
    plan = plan_sync(engine, root, options, settings.as_of_pattern)
    for error in plan.org_errors:
        logger.error("%s: skipped: %s", error["org"], error["message"])
    logger.info(
        "%d organisation(s) with new files, %d file(s) to import, %d already applied",
        len(plan.batches),
        sum(len(b.files) for b in plan.batches),
        plan.skipped_already_applied,
    )

    # First the missing reports of earlier runs (a kill after a commit, a full disk): an
    # organisation whose files were all applied has no new file to import, but may have them.
    recovered = [
        rewritten
        for org_id in plan.orgs.values()
        for rewritten in write_missing_reports(engine, org_id, options.report_dir)
    ]
    files = _run_batches(plan.batches, concurrency, logger)
    pruned = prune_history_after_sync(engine, settings.history_days)
    if pruned is not None and pruned.runs:
        logger.info("pruned the change history of %d run(s)", pruned.runs)
    index = write_reports_index(engine, options.report_dir)
    exit_code = sync_exit_code(files, plan.org_errors)
    logger.info("sync finished with exit code %d; runs index %s", exit_code, index)
    return {
        "inbox": str(root),
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "exit_code": exit_code,
        "files": files,
        "skipped_already_applied": plan.skipped_already_applied,
        "unknown_orgs": plan.unknown_orgs,
        "org_errors": plan.org_errors,
        "reports_recovered": reports_recovered(recovered),
        "index": str(index) if index is not None else None,
    }
