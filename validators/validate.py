"""Validate an export's rows: per-row checks, the customer as the unit, last row wins.

Everything here is vectorised polars; Python runs per distinct value only (language tags,
emails the fast pattern does not settle), never per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from pandera.errors import SchemaErrors

from contract import (
    ADDRESS_COLUMNS,
    CONTACT_COLUMNS,
    ERROR_CODES,
    KEY,
    PLAIN_CUSTOMER_FIELDS,
    REPEATED_CUSTOMER_COLUMNS,
    SEVERITY,
    IssueCode,
)
from contract.frames import ISSUE_SCHEMA
from validators.exceptions import HeaderError, SchemaReportError
from validators.header import HeaderMap
from validators.issues import severity_of
from validators.normalise import (
    chunk_lengths,
    describe_key_changes,
    normalise_columns,
    realign,
)
from validators.reference import email_problems
from validators.schemas import (
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    PANDERA_CODES,
    ExportRowSchema,
)


@dataclass(frozen=True)
class Validated:
    """What the loader needs from one file's rows."""

    customers: pl.DataFrame
    """one row per accepted customer: key, `_line`, the present customer fields"""
    contacts: pl.DataFrame
    """one row per accepted (customer, contact email)"""
    issues: pl.DataFrame
    """every issue, errors and warnings, the header's included (ISSUE_SCHEMA), by line"""
    rejected_rows: pl.DataFrame
    """the rejected input rows as they came, in source order, plus `errors`"""
    keys_seen: pl.Series
    """every distinct non-blank erp_customer_number in the file, rejected ones included"""
    present: frozenset[str]
    """canonical columns present in the header"""
    rows_read: int
    rows_valid: int
    rows_rejected: int
    customers_rejected: int


# a row issue before it is tied to its line and key
_ROW_ISSUE = {
    "_row": pl.UInt32(),
    "column": pl.String(),
    "value": pl.String(),
    "code": pl.String(),
    "message": pl.String(),
}


def validate_rows(
    rows: pl.DataFrame,
    header: HeaderMap,
    *,
    prior: pl.DataFrame | None = None,
    shadow: pl.DataFrame | None = None,
) -> Validated:
    """Validate and normalise the rows of an export whose header resolved without error.

    A source profile (`validators.mapping`) passes what it found before validation: `prior`
    row issues (errors reject their rows like the rules' own; warnings are only reported) and
    `shadow`, the (row, column) pairs whose findings here are not the row's own.
    """
    if header.file_errors:
        raise HeaderError(
            "the header has file errors: "
            + "; ".join(error.message for error in header.file_errors)
        )
    width = header.width
    present = frozenset(header.columns)

    raw = rows.select(
        pl.col(f"c{index}").cast(pl.String).alias(name) for name, index in header.columns.items()
    )
    if present & set(CONTACT_COLUMNS) and "contact_email" not in present:
        # contact cells without a contact_email column: every such contact lacks its email
        raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias("contact_email"))
    norm = normalise_columns(raw)

    # Every column of `frame` is chunked like the rows' (see `realign`): the raw cells are
    # shared with `rows`, not copied, as long as no operation has to align them.
    lengths = chunk_lengths(rows.get_column("_line"))
    frame = pl.concat(
        [
            rows.select(
                realign(pl.Series("_row", range(rows.height), pl.UInt32), lengths),
                "_line",
                "_nfields",
                *(["_file"] if "_file" in rows.columns else []),
            ),
            norm,
            raw.select(pl.all().name.prefix("raw:")),
        ],
        how="horizontal",
    ).with_columns(
        _bad=pl.col("_nfields") != width,
        _cid=realign(customer_ids(norm.get_column(KEY)), lengths),
    )

    own = pl.concat(
        [_check_rows(frame, norm.columns), _field_count_issues(frame, width)],
        how="vertical",
    )
    prior_warnings: list[pl.DataFrame] = []
    if prior is not None or shadow is not None:
        own, prior_warnings = _with_prior(own, prior, shadow)
    frame = _mark_rejected(frame, own)
    contacts, contact_warnings = _resolve_contacts(frame)
    issues = pl.concat(
        [
            own,
            _rejected_with_customer_issues(frame),
            _unshadowed(_key_warnings(frame), shadow),
            _conflict_warnings(frame, present),
            *contact_warnings,
            *prior_warnings,
        ],
        how="vertical",
    )
    issues = _finish_issues(issues, frame, header)
    rejected = frame.get_column("_rejected")
    rows_rejected = int(rejected.sum())
    cid = frame.get_column("_cid")

    return Validated(
        customers=_customers(frame, present),
        contacts=_contacts(contacts, present),
        issues=pl.concat([header.issues, issues.drop("_row")], how="vertical"),
        rejected_rows=_rejected_rows(rows, rejected, issues),
        keys_seen=norm.get_column(KEY).filter(cid.is_not_null() & cid.is_first_distinct()),
        present=present,
        rows_read=rows.height,
        rows_valid=rows.height - rows_rejected,
        rows_rejected=rows_rejected,
        customers_rejected=cid.filter(rejected).drop_nulls().n_unique(),
    )


def customer_ids(keys: pl.Series) -> pl.Series:
    """Number the distinct keys (null for a null key), so that grouping works on integers.

    ERP exports list a customer's rows together; then the ids are the runs of equal keys and
    cost one pass. Otherwise the keys go through a categorical.
    """
    starts = keys.ne_missing(keys.shift()).fill_null(True)
    if keys.len():
        starts[0] = True
    first_keys = keys.filter(starts).drop_nulls()
    if first_keys.n_unique() == first_keys.len():
        ids = starts.cast(pl.UInt32).cum_sum()
    else:
        ids = keys.cast(pl.Categorical).to_physical().cast(pl.UInt32)
    return pl.select(pl.when(keys.is_not_null()).then(ids)).to_series().rename("_cid")


# --- errors of a row ---------------------------------------------------------------------


def _unshadowed(issues: pl.DataFrame, shadow: pl.DataFrame | None) -> pl.DataFrame:
    """`issues` without those at the (row, column) pairs of `shadow`."""
    if shadow is None or shadow.is_empty() or issues.is_empty():
        return issues
    return issues.join(
        shadow.select(pl.col("_row").cast(pl.UInt32), pl.col("column").cast(pl.String)),
        on=["_row", "column"],
        how="anti",
        maintain_order="left",
    )


def _with_prior(
    own: pl.DataFrame, prior: pl.DataFrame | None, shadow: pl.DataFrame | None
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The rows' own errors with the profile's, and the profile's warnings apart."""
    own = _unshadowed(own, shadow)
    if prior is None or prior.is_empty():
        return own, []
    prior = prior.select(list(_ROW_ISSUE)).cast({n: d for n, d in _ROW_ISSUE.items()})
    is_error = pl.col("code").is_in([str(code) for code in ERROR_CODES])
    return (
        pl.concat([own, prior.filter(is_error)], how="vertical"),
        [prior.filter(~is_error)],
    )


def _check_rows(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Run the pandera schema on the rows of the right width; one row issue per failure."""
    checked = frame
    if frame.get_column("_bad").any():
        needed = ["_row", *columns, *(f"raw:{c}" for c in columns)]
        checked = frame.lazy().filter(~pl.col("_bad")).select(needed).collect()
    try:
        ExportRowSchema.validate(checked.select(columns), lazy=True)
    except SchemaErrors as exc:
        failures = exc.failure_cases
    else:
        return pl.DataFrame(schema=_ROW_ISSUE)

    if failures.get_column("index").null_count():
        raise SchemaReportError(
            "pandera reported failures without a row: "
            + str(failures.filter(pl.col("index").is_null()).to_dicts()[:3])
        )
    failures = failures.select(
        pl.col("index").cast(pl.UInt32),
        "column",
        pl.col("check").replace(PANDERA_CODES).alias("code"),
    )
    parts = []
    for (column,), group in failures.group_by("column", maintain_order=True):
        at = group.get_column("index")
        parts.append(
            group.select(
                checked.get_column("_row").gather(at),
                pl.col("column"),
                pl.col("code"),
                checked.get_column(f"raw:{column}").gather(at).alias("value"),
                checked.get_column(str(column)).gather(at).alias("_norm"),
            )
        )
    found = pl.concat(parts) if parts else pl.DataFrame(schema={**_ROW_ISSUE, "_norm": pl.String})
    return _describe(found).select(list(_ROW_ISSUE))


def _describe(found: pl.DataFrame) -> pl.DataFrame:
    """Write a message for each per-row failure (columns _row, column, code, value, _norm)."""
    emails = found.filter(pl.col("code") == "email").get_column("_norm").unique()
    lookup = pl.DataFrame({"_norm": emails, "_reason": email_problems(emails)})
    shown = pl.col("value").str.strip_chars()
    code = pl.col("code")
    return found.join(lookup, on="_norm", how="left", maintain_order="left").with_columns(
        message=pl.when((code == "required") & (pl.col("column") == "contact_email"))
        .then(pl.lit("contact_email is required when another contact cell of the row is filled"))
        .when(code == "required")
        .then(pl.format("{} is required", pl.col("column")))
        .when(code == "length")
        .then(
            pl.format(
                "{} is {} characters long; at most {} are allowed",
                pl.col("column"),
                pl.col("_norm").str.len_chars(),
                pl.when(pl.col("column") == KEY)
                .then(pl.lit(MAX_KEY_LENGTH))
                .otherwise(pl.lit(MAX_NAME_LENGTH)),
            )
        )
        .when(code == "currency")
        .then(pl.format("'{}' is not an active ISO 4217 currency code", shown))
        .when(code == "language")
        .then(pl.format("'{}' is not a valid BCP 47 language tag", shown))
        .when(code == "email")
        .then(
            pl.format(
                "'{}' is not a valid email address: {}",
                shown,
                pl.col("_reason").fill_null("rejected by email-validator"),
            )
        )
        .when(code == "boolean")
        .then(
            pl.format(
                "'{}' is not a yes/no value (use true/false, 1/0, yes/no, y/n, x, or blank)",
                shown,
            )
        )
        .otherwise(pl.format("{} failed check {}", pl.col("column"), code))
    )


def _field_count_issues(frame: pl.DataFrame, width: int) -> pl.DataFrame:
    """One `field_count` error per row whose field count differs from the header's."""
    return frame.filter(pl.col("_bad")).select(
        "_row",
        pl.lit(None, dtype=pl.String).alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit("field_count").alias("code"),
        pl.format("row has {} fields, the header has {}", pl.col("_nfields"), pl.lit(width)).alias(
            "message"
        ),
    )


# --- the customer is the unit --------------------------------------------------------------


def _mark_rejected(frame: pl.DataFrame, own: pl.DataFrame) -> pl.DataFrame:
    """Add `_own_error`, `_first_error` (line of the key's first failing row), `_rejected`."""
    failing = own.get_column("_row").unique().implode()
    frame = frame.with_columns(_own_error=pl.col("_row").is_in(failing))
    first = (
        frame.filter(pl.col("_own_error") & pl.col("_cid").is_not_null())
        .group_by("_cid")
        .agg(pl.col("_line").min().alias("_first_error"))
    )
    # joined on the ids alone: a join onto the whole frame would copy every column of it
    first_error = (
        frame.select("_cid")
        .join(first, on="_cid", how="left", maintain_order="left")
        .get_column("_first_error")
    )
    return frame.with_columns(
        realign(first_error, chunk_lengths(frame.get_column("_cid")))
    ).with_columns(_rejected=pl.col("_own_error") | pl.col("_first_error").is_not_null())


def _rejected_with_customer_issues(frame: pl.DataFrame) -> pl.DataFrame:
    """One error per row rejected only because another row of its customer failed."""
    return frame.filter(pl.col("_rejected") & ~pl.col("_own_error")).select(
        "_row",
        pl.lit(None, dtype=pl.String).alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit("rejected_with_customer").alias("code"),
        pl.format(
            "customer '{}' is rejected because of an error on line {}",
            pl.col(KEY),
            pl.col("_first_error"),
        ).alias("message"),
    )


# --- warnings: the key as spelled ----------------------------------------------------------


def _key_warnings(frame: pl.DataFrame) -> pl.DataFrame:
    """One `key_normalised` warning per row whose key lost format characters or became NFC.

    Trimming alone warns of nothing. Only non-ASCII keys can change, so only they are looked at.
    """
    raw = pl.col(f"raw:{KEY}")
    candidates = (
        frame.lazy()
        .filter(~pl.col("_bad") & (raw.str.len_bytes() != raw.str.len_chars()))
        .select("_row", KEY, raw.alias("value"))
        .collect()
    )
    if candidates.is_empty():
        return pl.DataFrame(schema=_ROW_ISSUE)
    changes = describe_key_changes(candidates.get_column("value"))
    return (
        candidates.with_columns(changes.alias("_changes"))
        .filter(pl.col("_changes").is_not_null())
        .select(
            "_row",
            pl.lit(KEY).alias("column"),
            "value",
            pl.lit(str(IssueCode.KEY_NORMALISED)).alias("code"),
            pl.when(pl.col(KEY).is_null())
            .then(pl.format("{}; nothing is left of the customer number", pl.col("_changes")))
            .otherwise(
                pl.format("{}; the customer number is '{}'", pl.col("_changes"), pl.col(KEY))
            )
            .alias("message"),
        )
    )


# --- warnings: last row wins ----------------------------------------------------------------


def _keyed(frame: pl.DataFrame, columns: list[str], *where: pl.Expr) -> pl.DataFrame:
    """The rows in cross-row rules (right width, with a key), in source order; only `columns`."""
    return (
        frame.lazy()
        .filter(~pl.col("_bad") & pl.col("_cid").is_not_null(), *where)
        .select(columns)
        .collect()
    )


def _lines(column: str = "_lines") -> pl.Expr:
    return pl.col(column).cast(pl.List(pl.String)).list.join(", ")


def _conflict_warnings(frame: pl.DataFrame, present: frozenset[str]) -> pl.DataFrame:
    """One `conflicting_values` warning per (customer, column) whose rows disagree.

    The rows in cross-row rules are compared one column at a time, so that no copy of all the
    customer columns of all the rows is made; only the rows of customers with a disagreement
    are gathered whole.
    """
    columns = [c for c in REPEATED_CUSTOMER_COLUMNS if c in present]
    if not columns:
        return pl.DataFrame(schema=_ROW_ISSUE)
    keyed = ~pl.col("_bad") & pl.col("_cid").is_not_null()
    everything = bool(frame.select(keyed.all()).item())

    def probe(*names: str) -> pl.DataFrame:
        """The rows in cross-row rules (source order), only `names`; no copy if all are."""
        return frame.select(names) if everything else frame.filter(keyed).select(names)

    # with a customer's rows together, a disagreement is a value unlike the row before
    cid = probe("_cid").to_series()
    order: pl.Series | None = None
    if not cid.is_sorted():
        ordered = cid.to_frame().with_row_index("_i").sort("_cid", maintain_order=True)
        cid = ordered.get_column("_cid")
        order = ordered.get_column("_i")
        del ordered
    same = cid.ne_missing(cid.shift()).not_().fill_null(False)  # same customer as row before
    changed_customers: dict[str, pl.Series] = {}
    for c in columns:
        values = probe(c).to_series()
        if order is not None:
            values = values.gather(order)
        changed = (same & values.ne_missing(values.shift())).fill_null(False)
        del values
        customers = cid.filter(changed).unique()
        if not customers.is_empty():
            changed_customers[c] = customers
    if not changed_customers:
        return pl.DataFrame(schema=_ROW_ISSUE)
    involved = pl.concat(list(changed_customers.values())).unique().implode()
    needed = [c for c in columns if c in changed_customers]
    rows = _keyed(
        frame,
        ["_row", "_line", "_cid", KEY, *needed, *(f"raw:{c}" for c in needed)],
        pl.col("_cid").is_in(involved),
    )
    parts = []
    for c in needed:
        customers = changed_customers[c]
        parts.append(
            rows.filter(pl.col("_cid").is_in(customers.implode()))
            .group_by("_cid", maintain_order=True)
            .agg(
                pl.col("_row").last(),
                pl.col(KEY).first(),
                pl.col(f"raw:{c}").last().alias("value"),
                pl.col(c).n_unique().alias("_n"),
                pl.col("_line").alias("_lines"),
            )
            .select(
                "_row",
                pl.lit(c).alias("column"),
                "value",
                pl.lit("conflicting_values").alias("code"),
                pl.format(
                    "{} differs across the rows of customer '{}' (lines {}): {} other "
                    "value(s); the last row's value is used",
                    pl.lit(c),
                    pl.col(KEY),
                    _lines(),
                    pl.col("_n") - 1,
                ).alias("message"),
            )
        )
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=_ROW_ISSUE)


def _resolve_contacts(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The accepted customers' contacts, last row per email winning and one primary at most.

    Returns the accepted contact rows (columns `_line`, KEY and the contact fields) and the
    `duplicate_contact` and `multiple_primary` warnings (of rejected customers too). The rules
    run on the few columns they need; the contacts are copied once, at the end.
    """
    if "contact_email" not in frame.columns:
        return pl.DataFrame(), []
    fields = [c for c in CONTACT_COLUMNS if c in frame.columns]
    primary = "contact_is_primary" in fields
    in_rules = (
        ~pl.col("_bad") & pl.col("_cid").is_not_null() & pl.col("contact_email").is_not_null()
    )
    contacts = _keyed(
        frame,
        ["_row", "_cid", "contact_email", *(["contact_is_primary"] if primary else [])],
        pl.col("contact_email").is_not_null(),
    )

    def of_rows(rows: pl.Series, *names: str) -> list[pl.Series]:
        return [frame.get_column(name).gather(rows) for name in names]

    # equal (customer, email) pairs hash alike: only rows whose hashed pair repeats can repeat
    maybe = contacts.select(pl.struct("_cid", "contact_email").hash().is_duplicated()).to_series()
    warnings = []
    superseded = None
    if maybe.any():
        candidates = contacts.filter(maybe)
        candidates = candidates.with_columns(
            of_rows(candidates.get_column("_row"), KEY, "raw:contact_email", "_line")
        )
        repeated = (
            candidates.group_by("_cid", "contact_email", maintain_order=True)
            .agg(
                pl.col("_row").last(),
                pl.col(KEY).first(),
                pl.col("raw:contact_email").last(),
                pl.col("_line").alias("_lines"),
            )
            .filter(pl.col("_lines").list.len() > 1)
        )
        warnings.append(
            repeated.select(
                "_row",
                pl.lit("contact_email").alias("column"),
                pl.col("raw:contact_email").alias("value"),
                pl.lit("duplicate_contact").alias("code"),
                pl.format(
                    "the same contact appears on {} rows of customer '{}' (lines {}); "
                    "the last row is used",
                    pl.col("_lines").list.len(),
                    pl.col(KEY),
                    _lines(),
                ).alias("message"),
            )
        )
        superseded = candidates.filter(
            ~pl.struct("_cid", "contact_email").is_last_distinct()
        ).get_column("_row")
        if superseded.len():
            contacts = contacts.filter(~pl.col("_row").is_in(superseded.implode()))
        else:
            superseded = None

    demoted = None
    if primary:
        marked = contacts.filter(pl.col("contact_is_primary") == "true")
        several = marked.filter(pl.col("_cid").is_duplicated())
        demoted = several.filter(~pl.col("_cid").is_last_distinct()).get_column("_row")
        several = several.with_columns(
            of_rows(several.get_column("_row"), KEY, "raw:contact_is_primary", "_line")
        )
        warnings.append(
            several.group_by("_cid", maintain_order=True)
            .agg(
                pl.col("_row").last(),
                pl.col(KEY).first(),
                pl.col("raw:contact_is_primary").last(),
                pl.col("_line").alias("_lines"),
            )
            .select(
                "_row",
                pl.lit("contact_is_primary").alias("column"),
                pl.col("raw:contact_is_primary").alias("value"),
                pl.lit("multiple_primary").alias("code"),
                pl.format(
                    "{} contacts of customer '{}' are marked primary (lines {}); "
                    "only the last (line {}) stays primary",
                    pl.col("_lines").list.len(),
                    pl.col(KEY),
                    _lines(),
                    pl.col("_lines").list.last(),
                ).alias("message"),
            )
        )
    del contacts

    accepted = in_rules & ~pl.col("_rejected")
    if superseded is not None:
        accepted = accepted & ~pl.col("_row").is_in(superseded.implode())
    columns: list[str | pl.Expr] = [KEY, "_line", *fields]
    if primary:
        flag = (pl.col("contact_is_primary") == "true").fill_null(False)
        if demoted is not None and demoted.len():
            flag = flag & ~pl.col("_row").is_in(demoted.implode())
        columns[columns.index("contact_is_primary")] = flag.alias("contact_is_primary")
    return frame.lazy().filter(accepted).select(columns).collect(), warnings


# --- outputs --------------------------------------------------------------------------------


def _finish_issues(issues: pl.DataFrame, frame: pl.DataFrame, header: HeaderMap) -> pl.DataFrame:
    """Tie row issues to line and key; sort by line, column position, severity, code."""
    positions = dict(header.columns)
    positions.setdefault("contact_email", header.width)  # a contact_email the header lacks
    codes = [str(code) for code in SEVERITY]
    at = issues.get_column("_row")
    finished = (
        issues.with_columns(
            frame.get_column("_line").gather(at).alias("line"),
            frame.get_column(KEY).gather(at).alias("erp_customer_number"),
            severity_of(pl.col("code")).alias("severity"),
            _position=pl.col("column")
            .replace_strict(list(positions), list(positions.values()), default=None)
            .fill_null(-1),
            _code=pl.col("code").replace_strict(codes, list(range(len(codes)))),
        )
        .sort(["line", "_position", "severity", "_code"])
        .with_columns(_labelled(header))
        .select(*ISSUE_SCHEMA, "_row")
        .cast({name: dtype for name, dtype in ISSUE_SCHEMA.items()})
    )
    if "_file" in frame.columns:
        # a row of a second file (the contacts of a two-file export): its issues name the file
        named = frame.get_column("_file").gather(finished.get_column("_row"))
        finished = finished.with_columns(
            message=pl.when(named.is_not_null())
            .then(pl.format("{} line {}: {}", named, pl.col("line"), pl.col("message")))
            .otherwise(pl.col("message"))
        )
    if header.labels:
        # one source column feeding two contract columns (DATEV's E-Mail: email and the
        # contact's) would report its one mistake twice
        finished = finished.unique(
            subset=["_row", "column", "code", "message"], keep="first", maintain_order=True
        )
    return finished


def _labelled(header: HeaderMap) -> pl.Expr:
    """The issue's column as the source names it (a profile's headers), else as it is."""
    if not header.labels:
        return pl.col("column")
    names = list(header.labels)
    return pl.col("column").replace(names, [header.labels[n] for n in names])


def _customers(frame: pl.DataFrame, present: frozenset[str]) -> pl.DataFrame:
    """One row per accepted customer, from its last row; absent columns stay absent."""
    addresses = []
    for kind, parts in ADDRESS_COLUMNS.items():
        given = [(part, column) for part, column in parts.items() if column in present]
        if given:
            addresses.append(
                pl.struct([pl.col(column).alias(part) for part, column in given])
                .struct.json_encode()
                .alias(kind)
            )
    cid = frame.get_column("_cid")
    last = cid.ne_missing(cid.shift(-1)) if cid.is_sorted() else cid.is_last_distinct()
    return (
        frame.lazy()
        .filter(~pl.col("_rejected") & last)
        .select(
            KEY,
            pl.col("_line").cast(pl.Int64),
            *(c for c in PLAIN_CUSTOMER_FIELDS if c in present),
            *addresses,
        )
        .collect()
    )


def _contacts(contacts: pl.DataFrame, present: frozenset[str]) -> pl.DataFrame:
    """The accepted contacts, their columns named without the `contact_` prefix."""
    if contacts.is_empty() and not contacts.columns:
        return pl.DataFrame(schema={KEY: pl.String, "email": pl.String, "_line": pl.Int64})
    return contacts.select(
        KEY,
        pl.col("contact_email").alias("email"),
        pl.col("_line").cast(pl.Int64),
        *(
            pl.col(column).alias(field)
            for column, field in CONTACT_COLUMNS.items()
            if column in present and column != "contact_email"
        ),
    )


def _rejected_rows(rows: pl.DataFrame, rejected: pl.Series, issues: pl.DataFrame) -> pl.DataFrame:
    """The rejected input rows, unchanged, plus `errors`: their own error messages in one text."""
    column = pl.col("column")
    texts = (
        issues.filter(pl.col("severity") == "error")
        .with_columns(
            _text=pl.when(column.is_null() | pl.col("message").str.starts_with(column))
            .then(pl.col("message"))
            .otherwise(pl.format("{}: {}", column, pl.col("message")))
        )
        .group_by("_row", maintain_order=True)
        .agg(pl.col("_text").str.join("; ").alias("errors"))
    )
    return (
        rows.with_row_index("_row")
        .filter(rejected)
        .join(texts, on="_row", how="left", maintain_order="left")
        .drop("_row")
    )


# --- in parts ---------------------------------------------------------------------------------

#: Rows per part of a validation in parts (flows/importing.py loads part k while k+1 validates).
ROWS_PER_PART = 320_000
#: A file of fewer rows is validated (and loaded) whole: parts would only add their overhead.
MIN_ROWS_FOR_PARTS = 200_000


def part_count(rows: int) -> int:
    """How many parts a file of `rows` rows is validated in (1: whole)."""
    if rows < MIN_ROWS_FOR_PARTS:
        return 1
    return max(1, -(-rows // ROWS_PER_PART))


@dataclass(frozen=True)
class PartPlan:
    """How a file's rows are cut into parts by ranges of their normalised customer key.

    Part k holds the rows whose key sorts (byte order) at or after `bounds[k - 1]` and before
    `bounds[k]`: every row of a customer is in the same part, however far apart its rows are
    and however its key is spelled, and every key of part k + 1 sorts after every key of part k
    (so that the new customers' ids, increasing in key order, increase across parts too). Rows
    without a key are all in part 0.
    """

    bounds: pl.Series
    """the first key of parts 1..n-1, sorted"""
    part: pl.Series
    """the part of each row (UInt32)"""
    keys_seen: pl.Series
    """every distinct non-null normalised key of the file (validation's `keys_seen`, as a set)"""

    @property
    def parts(self) -> int:
        """How many parts."""
        return self.bounds.len() + 1

    def part_of(self, keys: pl.Series) -> pl.Series:
        """The part of each of `keys` (normalised keys: stored ones too), by the same bounds."""
        return _part_of(self.bounds, keys)


def _part_of(bounds: pl.Series, keys: pl.Series) -> pl.Series:
    if not bounds.len():
        return pl.Series("_part", [0] * keys.len(), pl.UInt32)
    found = bounds.search_sorted(keys, side="right")
    return pl.select(
        pl.when(keys.is_not_null()).then(found).otherwise(0).cast(pl.UInt32).alias("_part")
    ).to_series()


def plan_parts(rows: pl.DataFrame, header: HeaderMap, parts: int) -> PartPlan:
    """Cut the rows into (at most) `parts` parts of about as many customers, by key ranges."""
    column = f"c{header.columns[KEY]}"
    keys = normalise_columns(rows.select(pl.col(column).cast(pl.String).alias(KEY))).to_series()
    distinct = keys.drop_nulls().unique().sort()
    step = distinct.len() / max(parts, 1)
    picks = sorted({int(step * k) for k in range(1, parts)} - {0})
    bounds = distinct.gather(picks) if picks and distinct.len() else distinct.clear()
    return PartPlan(bounds=bounds, part=_part_of(bounds, keys), keys_seen=distinct)


def combine_parts(results: list[Validated], header: HeaderMap) -> Validated:
    """One Validated of the parts' results: what `validate_rows` gives for the whole file
    (customers, contacts, issues and rejected rows in line order; keys_seen as a set)."""
    if len(results) == 1:
        return results[0]

    def by_line(frames: list[pl.DataFrame], line: str = "_line") -> pl.DataFrame:
        # A line belongs to one part: a stable sort by line keeps each line's rows in order.
        return pl.concat(frames, how="vertical").sort(line, maintain_order=True)

    skip = header.issues.height
    return Validated(
        customers=by_line([r.customers for r in results]),
        contacts=by_line([r.contacts for r in results]),
        issues=pl.concat(
            [header.issues, by_line([r.issues.slice(skip) for r in results], "line")],
            how="vertical",
        ),
        rejected_rows=by_line([r.rejected_rows for r in results]),
        keys_seen=pl.concat([r.keys_seen for r in results]),
        present=results[0].present,
        rows_read=sum(r.rows_read for r in results),
        rows_valid=sum(r.rows_valid for r in results),
        rows_rejected=sum(r.rows_rejected for r in results),
        customers_rejected=sum(r.customers_rejected for r in results),
    )
