"""Skip the customers whose raw rows are what was last validated without any issue.

Right after the record scan, each customer's raw rows (the bytes of each record, line end
included, in file order, grouped by the normalised customer key as validation groups them) get
a fingerprint (loaders/fingerprint.py `raw_fingerprints`): the same bytes parse to the same
cells under the same header, delimiter and encoding, which the rules version covers. Only the
key column is parsed for every row (`RawExport.column`); every column only for the rows that
are not skipped (`RawExport.parsed`). The organisation stores,
per customer, the raw fingerprint of the rows that last validated with no error and no warning
(customer.raw_hash, with the contacts they gave), and the rules version they were validated
under (org.raw_rules). A customer whose fingerprint matches, under the same rules, skips
validation, staging and the merge: validating it again would find no issue and change nothing.

The rules version hashes everything that can change what validation says of the same rows: the
validators' and the contract's code, the reader's, the library versions they use (polars' hash
is one of them), the source profile, and the file's header, encoding and delimiter. Under other
rules nothing is skipped and every raw fingerprint is set anew (the load's `rebase`).

No validation rule looks across customers: every cross-row rule (last row wins, conflicting
values, duplicate contacts, one primary, rejected with its customer) groups by the normalised
key, and a profile's contact rows take their company's key. Rows without a key are never
skipped. A two-file export (a separate contacts file) skips nothing.

The decision is made before the organisation's lock, from the stored customers read with the
organisation's change count (`upsert.stored_state`). Every holder of the lock counts a change
(`upsert.lock_organisation`); when the count under the lock is still the one read, the load
uses what was read. Otherwise it reads the stored customers again, checks that every skipped
customer is still stored as read (`upsert.skipped_still_stored`), and the import is done again
without skipping if not (`SkipInvalidated`).
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
import uuid
from dataclasses import dataclass, replace
from functools import cache
from importlib import metadata
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

import contract
import validators
from contract import FINGERPRINT, KEY, RAW_CONTACTS, RAW_FINGERPRINT, ImportMode
from flows import reading
from flows.reading import RawExport
from loaders import upsert
from loaders.fingerprint import raw_fingerprints
from validators import Validated, resolve_header
from validators.mapping import map_export
from validators.normalise import normalise_columns
from validators.profiles import Profile

#: The distributions whose versions can change what validation says (polars: its hash too).
_LIBRARIES = ("polars", "pandera", "email-validator", "langcodes", "pycountry", "phonenumbers")


class SkipInvalidated(Exception):
    """Under the lock, a skipped customer was no longer stored as read: import without skipping."""


@dataclass(frozen=True)
class RawPrints:
    """The raw fingerprints of an export's customers and what they let the import skip."""

    rules: str
    """the rules version of this run"""
    stored_rules: str | None
    """the organisation's rules version when the decision was made (read before the lock)"""
    prints: pl.DataFrame
    """(key, raw_hash) of every customer of the file"""
    keys_seen: pl.Series
    """every distinct key of the file (validation's `keys_seen`, skipped customers included)"""
    skipped: pl.DataFrame
    """(key, raw_hash, raw_contacts) of the customers skipped"""
    skipped_rows: int = 0
    stored: pl.DataFrame | None = None
    """`upsert.stored_customers` as read before the lock, with `changes`"""
    changes: int | None = None
    """the organisation's change count when `stored` was read: the load uses `stored` when the
    count is still the same under the lock (`upsert.lock_organisation`)"""

    @property
    def skipped_contacts(self) -> int:
        """The contacts of the skipped customers: counted unchanged."""
        return int(self.skipped.get_column(RAW_CONTACTS).sum()) if self.skipped.height else 0


@cache
def _code_version() -> str:
    """A hash of the validators' and the contract's files and of the libraries' versions."""
    digest = hashlib.sha256()
    for package in (validators, contract):
        root = Path(str(package.__file__)).parent
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".pyc"):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    # the raw fingerprint hashes each row's record bytes as the reader delimits them
    for module in (Path(upsert.__file__).with_name("fingerprint.py"), Path(reading.__file__)):
        digest.update(module.read_bytes())
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}=={version}\0".encode())
    digest.update(f"{sys.version_info[:2]} unicode {unicodedata.unidata_version}".encode())
    return digest.hexdigest()


def rules_version(
    profile: Profile, header: tuple[str, ...], extra: str = "", layout: tuple[str, str] = ("", "")
) -> str:
    """The version of the rules these rows are validated under (see the module's docstring);
    `layout` is the file's (encoding, delimiter): with the header, what makes the same record
    bytes the same cells."""
    digest = hashlib.sha256(_code_version().encode())
    digest.update(profile.model_dump_json().encode())
    digest.update("\x1f".join(header).encode())
    digest.update(extra.encode())
    digest.update("\x1f".join(("", *layout)).encode())
    return digest.hexdigest()


def customer_keys(raw: RawExport, profile: Profile) -> pl.Series | None:
    """Each row's normalised customer key as validation groups the rows; None when the header
    cannot be validated (the file is refused whole) or the export has two files."""
    if raw.contacts is not None or not raw.header:
        return None
    if profile.is_default:
        header = resolve_header(raw.header)
        if header.file_errors:
            return None
        cells = raw.column(header.columns[KEY])  # only this column of a pending export
    else:
        mapped = map_export(raw.rows, raw.header, profile)
        if mapped.header.file_errors:
            return None
        cells = mapped.rows.get_column(f"c{mapped.header.columns[KEY]}")
        del mapped
    return normalise_columns(cells.cast(pl.String).rename(KEY).to_frame()).get_column(KEY)


def skip_unchanged(
    engine: Engine,
    org_id: uuid.UUID,
    raw: RawExport,
    profile: Profile,
    *,
    mode: ImportMode,
    allow: bool = True,
    rules_extra: str = "",
) -> tuple[RawExport, RawPrints | None]:
    """The export (parsed) without the rows of its unchanged customers, and their fingerprints.

    Every customer's raw fingerprint is taken (the load stores those that validate clean); with
    `allow`, those matching the stored ones under the same rules are left out (in full mode only
    active customers, so that inactive ones reach the reactivation). Of a pending export
    (`read_export(lazy=True)`) only the key column is parsed for every row, and every column
    only for the rows that are kept.
    """
    row_prints = raw.row_prints
    if raw.contacts is not None or not raw.header or row_prints is None:
        return raw.parsed(), None
    if not profile.is_default:
        raw = raw.parsed()  # the profile maps the parsed rows to find the keys
    keys = customer_keys(raw, profile)
    if keys is None:
        return raw.parsed(), None
    rules = rules_version(profile, raw.header, rules_extra, (raw.encoding, raw.delimiter))
    with upsert.timed("raw fingerprints"):
        prints = raw_fingerprints(keys, row_prints)
    with engine.connect() as conn, upsert.timed("read stored customers (before the lock)"):
        state = upsert.stored_state(conn, org_id)
    keys_seen = keys.filter(keys.is_not_null()).unique(maintain_order=True)
    skipped = pl.DataFrame(
        schema={
            KEY: pl.String,
            RAW_FINGERPRINT: pl.Int64,
            RAW_CONTACTS: pl.Int32,
            "_rows": pl.UInt32,
            "_at": pl.List(pl.UInt32),
        }
    )
    stored = state.customers
    if allow and state.rules == rules and stored.height:
        candidates = stored.filter(
            pl.col(RAW_FINGERPRINT).is_not_null() & pl.col(FINGERPRINT).is_not_null()
        )
        if mode == ImportMode.FULL:
            candidates = candidates.filter(pl.col("is_active"))
        skipped = prints.join(
            candidates.select(KEY, RAW_FINGERPRINT, RAW_CONTACTS), on=[KEY, RAW_FINGERPRINT]
        ).select(KEY, RAW_FINGERPRINT, RAW_CONTACTS, "_rows", "_at")
    skipped_rows = int(skipped.get_column("_rows").sum()) if skipped.height else 0
    result = RawPrints(
        rules=rules,
        stored_rules=state.rules,
        prints=prints.select(KEY, RAW_FINGERPRINT),
        keys_seen=keys_seen,
        skipped=skipped.drop("_rows", "_at"),
        skipped_rows=skipped_rows,
        stored=stored,
        changes=state.changes,
    )
    keep = None
    if skipped.height:
        at = skipped.get_column("_at").explode()
        keep = pl.Series("keep", [True], pl.Boolean).extend_constant(True, keys.len() - 1)
        keep = keep.scatter(at, False)
    # only the rows that are not skipped are parsed (or kept): what follows holds only those
    return raw.parsed(keep), result


def with_skipped(validated: Validated, prints: RawPrints | None) -> Validated:
    """The validation of the rows that were not skipped, counted as the whole file's."""
    if prints is None:
        return validated
    return replace(
        validated,
        keys_seen=prints.keys_seen,
        rows_read=validated.rows_read + prints.skipped_rows,
        rows_valid=validated.rows_valid + prints.skipped_rows,
    )


def raw_to_store(validated: Validated, prints: RawPrints) -> pl.DataFrame:
    """(key, raw_hash, raw_contacts) for each accepted customer validated in this run: its raw
    fingerprint and contact count when it had no issue at all, nulls when it had a warning."""
    issues = validated.issues
    flawed = (
        issues.get_column(KEY).drop_nulls().unique().implode()
        if issues.height
        else pl.Series(KEY, [], pl.String).implode()
    )
    contacts = (
        validated.contacts.group_by(KEY).len(name="_n")
        if validated.contacts.height
        else pl.DataFrame(schema={KEY: pl.String, "_n": pl.UInt32})
    )
    clean = ~pl.col(KEY).is_in(flawed)
    return (
        validated.customers.select(KEY)
        .join(prints.prints, on=KEY, how="left")
        .join(contacts, on=KEY, how="left")
        .select(
            KEY,
            pl.when(clean).then(pl.col(RAW_FINGERPRINT)).cast(pl.Int64).alias(RAW_FINGERPRINT),
            pl.when(clean).then(pl.col("_n").fill_null(0)).cast(pl.Int32).alias(RAW_CONTACTS),
        )
    )
