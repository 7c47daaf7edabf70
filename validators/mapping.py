"""Apply a source profile to a read export: the source's rows onto the contract's columns.

Pure and vectorised: each contract column is a polars expression over the source cells
(`c0..cN`), value maps run once per distinct value, and contacts that sit on rows of their own
(Odoo's `Related Company`) get their company's customer columns by a join. The result is the
source rows with the contract's columns appended, and a `HeaderMap` that points validation at
them; the source cells stay as they are, so rejected rows keep the source's layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from contract import (
    ALL_COLUMNS,
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    KEY,
    REQUIRED_COLUMNS,
    FileError,
    FileErrorCode,
    IssueCode,
    Severity,
)
from contract.frames import ISSUE_SCHEMA
from validators.header import HeaderMap, canonical_name
from validators.phones import normalise_phones
from validators.profiles import ColumnSpec, Profile
from validators.value_maps import TRANSLATIONS, explicit_map, map_values

#: A row issue found before validation: the frame `validate_rows` takes as `prior`.
ROW_ISSUE_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.UInt32(),
    "column": pl.String(),
    "value": pl.String(),
    "code": pl.String(),
    "message": pl.String(),
}
#: (row, contract column) pairs whose findings validation drops: already reported, or copied.
SHADOW_SCHEMA: dict[str, pl.DataType] = {"_row": pl.UInt32(), "column": pl.String()}

# The issue code of a value a map does not know, per column it feeds.
_UNKNOWN_VALUE_CODE: dict[str, IssueCode] = {
    "default_currency": IssueCode.CURRENCY,
    "default_language": IssueCode.LANGUAGE,
    "email": IssueCode.EMAIL,
    "contact_email": IssueCode.EMAIL,
    "contact_is_primary": IssueCode.BOOLEAN,
}

_MAP_NAMES = {
    "currency_name": "currency name",
    "language_name": "language name",
    "country_name": "country name",
    "sap_language": "SAP language key",
}


@dataclass(frozen=True)
class Mapped:
    """An export mapped by a profile, ready for `validate_rows`."""

    rows: pl.DataFrame
    """the source rows, with the contract's columns appended as c{width}, c{width+1}, ..."""
    header: HeaderMap
    """the contract's columns -> the appended columns; file errors of the mapping"""
    prior: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ROW_ISSUE_SCHEMA))
    """row issues found by the mapping (unknown values, contacts without their company)"""
    shadow: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SHADOW_SCHEMA))
    """(row, column) pairs whose validation findings are not the row's own"""


def source_labels(header: Sequence[str], profile: Profile) -> dict[str, str]:
    """contract column -> the source header(s) that feed it in this file, as written."""
    written: dict[str, str] = {}
    for name in header:
        written.setdefault(canonical_name(name), name.strip())
    labels: dict[str, str] = {}
    sections: list[Mapping[str, ColumnSpec]] = [profile.columns]
    if profile.contacts is not None:
        sections.append(profile.contacts.columns)
    for columns in sections:
        for column, spec in columns.items():
            found = [
                written[canonical_name(h)] for h in spec.headers if canonical_name(h) in written
            ]
            merged = [*labels.get(column, "").split(" + "), *found] if column in labels else found
            if merged:
                labels[column] = " + ".join(dict.fromkeys(merged))
    return labels


class _Header:
    """The source header: where each (matched) name sits, and which ones the profile used."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = tuple(header)
        self.positions: dict[str, list[int]] = {}
        for index, name in enumerate(header):
            self.positions.setdefault(canonical_name(name), []).append(index)
        self.used: set[str] = set()

    def find(self, name: str) -> int | None:
        key = canonical_name(name)
        where = self.positions.get(key)
        if where is None:
            return None
        self.used.add(key)
        return where[0]

    def cell(self, name: str) -> pl.Expr | None:
        index = self.find(name)
        return None if index is None else pl.col(f"c{index}")


def _filled(cell: pl.Expr) -> pl.Expr:
    """The cell where it holds more than spaces, else null."""
    return pl.when(cell.str.strip_chars() != "").then(cell)


def _column_expr(spec: ColumnSpec, header: _Header) -> pl.Expr | None:
    """The expression of one contract column, or None when the file has none of its sources."""
    guard: pl.Expr | None = None
    if spec.when is not None:
        when_cell = header.cell(spec.when)
        if when_cell is None:
            return None
        guard = _filled(when_cell).is_not_null()
    if spec.value is not None:
        expr: pl.Expr = pl.lit(spec.value, dtype=pl.String)
    else:
        alternatives: list[pl.Expr] = []
        fallback: pl.Expr | None = None
        for alternative in spec.sources:
            cells = [c for c in (header.cell(name) for name in alternative) if c is not None]
            if not cells:
                continue
            fallback = cells[0] if fallback is None else fallback
            if len(alternative) == 1:
                alternatives.append(_filled(cells[0]))
            else:
                joined = pl.concat_str(
                    [_filled(c.str.strip_chars()) for c in cells],
                    separator=spec.separator,
                    ignore_nulls=True,
                )
                alternatives.append(pl.when(joined != "").then(joined))
        if fallback is None:
            return None
        # blank stays blank (the contract's "present but empty"), a missing cell null
        expr = pl.coalesce([*alternatives, fallback])
    if guard is not None:
        expr = pl.when(guard).then(expr).otherwise(pl.lit("", dtype=pl.String))
    return expr


def _translator(
    spec: ColumnSpec, column: str, profile: Profile
) -> tuple[Callable[[str], str | None], bool] | None:
    """The value map of a column (explicit table, then the built-in translation), or None."""
    table = spec.map
    if (
        table is None
        and column == "contact_is_primary"
        and (profile.booleans.true or profile.booleans.false)
    ):
        table = {word: "true" for word in profile.booleans.true} | {
            word: "false" for word in profile.booleans.false
        }
        # the contract's own words stay valid, and anything else is the `boolean` rule's
        keep_unknown = True
    else:
        keep_unknown = spec.unknown == "keep"
    if table is None and spec.translate is None:
        return None
    explicit = explicit_map(table) if table is not None else None
    built_in = TRANSLATIONS[spec.translate] if spec.translate is not None else None

    def translate(value: str) -> str | None:
        found = explicit(value) if explicit is not None else None
        if found is None and built_in is not None:
            found = built_in(value)
        return found

    return translate, keep_unknown


def _describe_map(spec: ColumnSpec) -> str:
    parts = []
    if spec.map is not None:
        parts.append("in the profile's table")
    if spec.translate is not None:
        parts.append(f"a known {_MAP_NAMES[spec.translate]}")
    if len(parts) == 2:
        return f"neither {parts[0]} nor {parts[1]}"
    return f"not {parts[0]}" if parts else "not a known value"


def _evaluate(
    columns: Mapping[str, ColumnSpec],
    rows: pl.DataFrame,
    header: _Header,
    profile: Profile,
    labels: Mapping[str, str],
) -> tuple[dict[str, pl.Series], list[pl.DataFrame]]:
    """The contract columns of `columns` over `rows`, values mapped; and the unknown values."""
    exprs = {}
    for column, spec in columns.items():
        expr = _column_expr(spec, header)
        if expr is not None:
            exprs[column] = expr
    frame = rows.select(expr.alias(column) for column, expr in exprs.items()) if exprs else None
    out: dict[str, pl.Series] = {}
    problems: list[pl.DataFrame] = []
    if frame is None:
        return out, problems
    for column in frame.columns:
        values = frame.get_column(column)
        spec = columns[column]
        found = _translator(spec, column, profile)
        if found is not None:
            translate, keep_unknown = found
            translated, unknown = map_values(values, translate)
            if keep_unknown:
                translated = pl.select(
                    pl.when(unknown).then(values).otherwise(translated)
                ).to_series()
            elif unknown.any():
                code = _UNKNOWN_VALUE_CODE.get(column, IssueCode.UNKNOWN_VALUE)
                source = labels.get(column, column)
                problems.append(
                    pl.DataFrame({"_row": unknown.arg_true().cast(pl.UInt32)}).with_columns(
                        column=pl.lit(column),
                        value=values.filter(unknown),
                        code=pl.lit(str(code)),
                        message=pl.format(
                            "{}: '{}' is {} (it feeds {})",
                            pl.lit(source),
                            values.filter(unknown).str.strip_chars(),
                            pl.lit(_describe_map(spec)),
                            pl.lit(column),
                        ),
                    )
                )
                # the value stays as the source wrote it; its error is the map's, not the rule's
                translated = pl.select(
                    pl.when(unknown).then(values).otherwise(translated)
                ).to_series()
            values = translated.rename(column)
        out[column] = values
    return out, problems


def _file_errors(
    profile: Profile, header: _Header, present: set[str], labels: Mapping[str, str]
) -> list[FileError]:
    errors = []
    for column in REQUIRED_COLUMNS:
        if column not in present:
            spec = profile.columns.get(column)
            wanted = " or ".join(f"'{h}'" for h in spec.headers) if spec else "(no alias)"
            errors.append(
                FileError(
                    code=FileErrorCode.MISSING_COLUMN,
                    message=f"required column '{column}' is missing: the header has none of "
                    f"{wanted} (profile '{profile.name}')",
                )
            )
    for name, where in header.positions.items():
        if name in header.used and len(where) > 1:
            errors.append(
                FileError(
                    code=FileErrorCode.DUPLICATE_COLUMN,
                    message=f"column '{header.header[where[0]].strip()}' appears {len(where)} "
                    f"times in the header (fields {', '.join(str(i + 1) for i in where)})",
                )
            )
    return errors


def _unknown_issues(header: _Header) -> tuple[list[tuple[int, str]], pl.DataFrame]:
    unknown = [
        (index, written)
        for index, written in enumerate(header.header)
        if canonical_name(written) not in header.used
    ]
    issues = pl.DataFrame(
        {
            "line": [1] * len(unknown),
            "erp_customer_number": [None] * len(unknown),
            "column": [written for _, written in unknown],
            "value": [written for _, written in unknown],
            "code": [str(IssueCode.UNKNOWN_COLUMN)] * len(unknown),
            "severity": [str(Severity.WARNING)] * len(unknown),
            "message": [
                f"column '{written}' (field {index + 1}) is not mapped by the profile and is "
                "ignored"
                for index, written in unknown
            ],
        },
        schema=ISSUE_SCHEMA,
    )
    return unknown, issues


def map_export(rows: pl.DataFrame, source_header: Sequence[str], profile: Profile) -> Mapped:
    """Map an export's rows onto the contract's columns by `profile` (not the default one)."""
    header = _Header(source_header)
    labels = source_labels(source_header, profile)
    values, problems = _evaluate(profile.columns, rows, header, profile, labels)
    shadows: list[pl.DataFrame] = []
    contacts = profile.contacts
    if contacts is not None and contacts.parent is not None and contacts.parent_key is not None:
        parent = header.cell(contacts.parent)
        parent_key = header.cell(contacts.parent_key)
        if parent is not None and parent_key is not None:
            values, problems, shadows = _attach_contacts(
                rows, header, profile, labels, values, problems, parent, parent_key
            )
    present = set(values)
    width = len(source_header)
    errors = _file_errors(profile, header, present, labels)
    unknown, unknown_issues = _unknown_issues(header)
    order = [c for c in ALL_COLUMNS if c in present]
    if profile.phones == "e164" and "contact_phone" in present:
        phones, warnings = normalise_phones(values["contact_phone"], values.get("billing_country"))
        values["contact_phone"] = phones
        problems.append(warnings)
    appended = rows.with_columns(
        values[column].alias(f"c{width + i}") for i, column in enumerate(order)
    )
    header_map = HeaderMap(
        columns={column: width + i for i, column in enumerate(order)},
        unknown=unknown,
        file_errors=errors,
        issues=unknown_issues,
        source_width=width,
        labels={c: labels[c] for c in order if c in labels},
    )
    prior = (
        pl.concat([p.select(list(ROW_ISSUE_SCHEMA)) for p in problems]).cast(
            {n: d for n, d in ROW_ISSUE_SCHEMA.items()}
        )
        if problems
        else pl.DataFrame(schema=ROW_ISSUE_SCHEMA)
    )
    shadow = pl.concat(
        [
            prior.select("_row", "column"),
            *(s.cast({n: d for n, d in SHADOW_SCHEMA.items()}) for s in shadows),
        ]
    ).unique(maintain_order=True)
    return Mapped(rows=appended, header=header_map, prior=prior, shadow=shadow)


def _attach_contacts(
    rows: pl.DataFrame,
    header: _Header,
    profile: Profile,
    labels: Mapping[str, str],
    values: dict[str, pl.Series],
    problems: list[pl.DataFrame],
    parent: pl.Expr,
    parent_key: pl.Expr,
) -> tuple[dict[str, pl.Series], list[pl.DataFrame], list[pl.DataFrame]]:
    """Contacts on rows of their own: they take their company's key and customer columns.

    A row whose `parent` cell is filled is a contact of the row whose `parent_key` cell holds
    that value. Its contact columns come from `[contacts.columns]`; its customer columns are
    its company's (joined, so that the customer's rows agree), and findings on them are the
    company row's, not the contact's. A contact whose company is not in the file is an
    `unknown_customer` error.
    """
    assert profile.contacts is not None
    links = rows.select(
        _filled(parent).str.strip_chars().alias("_parent"),
        _filled(parent_key).str.strip_chars().alias("_parent_key"),
    ).with_row_index("_row")
    is_contact = links.get_column("_parent").is_not_null()
    customer_columns = [c for c in CUSTOMER_COLUMNS if c in values]
    own = pl.DataFrame({c: values[c] for c in customer_columns}).with_columns(
        links.get_column("_parent_key")
    )
    companies = (
        own.filter(~is_contact & pl.col("_parent_key").is_not_null())
        .unique("_parent_key", keep="last", maintain_order=True)
        .rename({"_parent_key": "_parent"})
    )
    joined = links.select("_parent").join(
        companies, on="_parent", how="left", maintain_order="left"
    )
    orphan = is_contact & joined.get_column(KEY).is_null()
    contact_values, contact_problems = _evaluate(
        profile.contacts.columns, rows, header, profile, labels
    )
    out: dict[str, pl.Series] = {}
    for column in customer_columns:
        from_company: pl.Expr | pl.Series
        if column == KEY:
            from_company = (
                pl.when(orphan).then(links.get_column("_parent")).otherwise(joined.get_column(KEY))
            )
        else:
            from_company = joined.get_column(column)
        out[column] = (
            pl.select(pl.when(is_contact).then(from_company).otherwise(values[column]))
            .to_series()
            .rename(column)
        )
    for column in CONTACT_COLUMNS:
        mine = values.get(column)
        theirs = contact_values.get(column)
        if mine is None and theirs is None:
            continue
        none = pl.Series(column, [None] * rows.height, dtype=pl.String)
        out[column] = (
            pl.select(
                pl.when(is_contact)
                .then(theirs if theirs is not None else none)
                .otherwise(mine if mine is not None else none)
            )
            .to_series()
            .rename(column)
        )
    # a contact row's own customer cells are not its data: drop what the maps said of them
    contact_rows = is_contact.arg_true().cast(pl.UInt32).implode()
    kept = [
        p.filter(~(pl.col("_row").is_in(contact_rows) & pl.col("column").is_in(customer_columns)))
        for p in problems
    ]
    kept += [p.filter(pl.col("_row").is_in(contact_rows)) for p in contact_problems]
    parent_name = profile.contacts.parent or ""
    parent_label = header.header[header.find(parent_name) or 0].strip()
    orphans = links.filter(orphan)
    kept.append(
        orphans.select(
            pl.col("_row").cast(pl.UInt32),
            pl.lit(KEY).alias("column"),
            pl.col("_parent").alias("value"),
            pl.lit(str(IssueCode.UNKNOWN_CUSTOMER)).alias("code"),
            pl.format(
                "the contact's company '{}' ({}) is not in the file",
                pl.col("_parent"),
                pl.lit(parent_label),
            ).alias("message"),
        )
    )
    shadow = pl.DataFrame({"_row": is_contact.arg_true().cast(pl.UInt32)}).join(
        pl.DataFrame({"column": customer_columns}), how="cross"
    )
    return out, kept, [shadow]


def coverage(source_header: Sequence[str], profile: Profile) -> tuple[float, bool]:
    """The share of the header's columns the profile reads, and whether it finds the required."""
    if not source_header:
        return 0.0, False
    if profile.is_default:
        names = {canonical_name(h) for h in source_header}
        used = names & set(ALL_COLUMNS)
        required = all(c in names for c in REQUIRED_COLUMNS)
        return len(used) / len(names), required
    header = _Header(source_header)
    present: set[str] = set()
    sections: list[Mapping[str, ColumnSpec]] = [profile.columns]
    if profile.contacts is not None:
        sections.append(profile.contacts.columns)
        for name in (profile.contacts.parent, profile.contacts.parent_key):
            if name is not None:
                header.find(name)
    for columns in sections:
        for column, spec in columns.items():
            if spec.when is not None:
                header.find(spec.when)
            if any(header.find(h) is not None for h in spec.headers):
                present.add(column)
    required = all(c in present for c in REQUIRED_COLUMNS)
    return len(header.used) / len(header.positions), required


def map_pair(
    customers: pl.DataFrame,
    customers_header: Sequence[str],
    contacts: pl.DataFrame,
    contacts_header: Sequence[str],
    profile: Profile,
    contacts_name: str,
) -> Mapped:
    """Map a two-file export (customers, contacts) onto one frame of the contract's columns.

    The contacts file's rows follow the customers file's, their cells placed after the
    customers file's (`c{width}`...), with `_file` naming the contacts file so that their
    issues name it. A contact row takes its customer's columns from the customers file (findings
    on them are the customer row's); a contact whose customer number is not in the customers
    file is an `unknown_customer` error of the contacts file.
    """
    assert profile.contacts is not None
    first = map_export(customers, customers_header, profile)
    width_a = len(customers_header)
    width_b = len(contacts_header)
    header_b = _Header(contacts_header)
    labels_b = source_labels(contacts_header, profile.model_copy(update={"columns": {}}))
    values_b, problems_b = _evaluate(
        profile.contacts.columns, contacts, header_b, profile, labels_b
    )
    errors = list(first.header.file_errors)
    for column in (KEY, "contact_email"):
        if column not in values_b:
            errors.append(
                FileError(
                    code=FileErrorCode.MISSING_COLUMN,
                    message=f"{contacts_name}: column '{column}' is missing: the header has "
                    f"no '{' or '.join(profile.contacts.columns[column].headers)}'"
                    if column in profile.contacts.columns
                    else f"{contacts_name}: the profile maps no {column} for the contacts file",
                )
            )
    unknown_b, unknown_issues_b = _unknown_issues(header_b)
    unknown_issues_b = unknown_issues_b.with_columns(
        message=pl.format("{}: {}", pl.lit(contacts_name), pl.col("message"))
    )
    if errors:
        return Mapped(
            rows=first.rows,
            header=HeaderMap(
                columns=first.header.columns,
                unknown=first.header.unknown,
                file_errors=errors,
                issues=pl.concat([first.header.issues, unknown_issues_b]),
                source_width=width_a,
            ),
        )
    canonical = first.header.columns  # column -> index in first.rows
    a_values = {c: first.rows.get_column(f"c{i}") for c, i in canonical.items()}
    keys_b = values_b[KEY].str.strip_chars()
    customer_columns = [c for c in CUSTOMER_COLUMNS if c in a_values and c != KEY]
    companies = (
        pl.DataFrame({KEY: a_values[KEY].str.strip_chars()})
        .with_columns(**{c: a_values[c] for c in customer_columns}, _found=pl.lit(True))
        .filter(pl.col(KEY).is_not_null())
        .unique(KEY, keep="last", maintain_order=True)
    )
    joined = pl.DataFrame({KEY: keys_b}).join(companies, on=KEY, how="left", maintain_order="left")
    orphan = joined.get_column("_found").is_null() & (keys_b.fill_null("") != "")
    height_a = customers.height
    columns_order = [c for c in ALL_COLUMNS if c in a_values or c in values_b]

    def none(n: int, name: str) -> pl.Series:
        return pl.Series(name, [None] * n, dtype=pl.String)

    combined: dict[str, pl.Series] = {}
    for column in columns_order:
        top = a_values.get(column, none(height_a, column))
        if column == KEY:
            bottom = values_b[KEY]
        elif column in customer_columns:
            bottom = joined.get_column(column)
        else:
            bottom = values_b.get(column, none(contacts.height, column))
        combined[column] = pl.concat([top.cast(pl.String), bottom.cast(pl.String)]).rename(column)
    if profile.phones == "e164" and "contact_phone" in values_b:
        countries = combined.get("billing_country")
        phones, warnings = normalise_phones(
            combined["contact_phone"].slice(height_a),
            countries.slice(height_a) if countries is not None else None,
        )
        combined["contact_phone"] = pl.concat(
            [combined["contact_phone"].slice(0, height_a), phones]
        )
        problems_b.append(warnings)

    source_a = customers.select(pl.all())
    source_b = contacts.rename({f"c{i}": f"c{width_a + i}" for i in range(width_b)}).with_columns(
        (pl.col("_nfields") - width_b + width_a).cast(pl.Int32).alias("_nfields"),
        pl.lit(contacts_name).alias("_file"),
    )
    rows = pl.concat(
        [source_a.with_columns(pl.lit(None, dtype=pl.String).alias("_file")), source_b],
        how="diagonal_relaxed",
    )
    base = width_a + width_b
    rows = rows.with_columns(
        combined[column].alias(f"c{base + i}") for i, column in enumerate(columns_order)
    )
    labels = dict(first.header.labels)
    for column, label in labels_b.items():
        if label and column not in labels:
            labels[column] = label
    offset = pl.col("_row") + height_a
    prior_parts = [first.prior]
    prior_parts += [
        p.select(list(ROW_ISSUE_SCHEMA))
        .cast({n: d for n, d in ROW_ISSUE_SCHEMA.items()})
        .with_columns(offset.cast(pl.UInt32))
        for p in problems_b
    ]
    orphans = pl.DataFrame({"_row": orphan.arg_true().cast(pl.UInt32)}).with_columns(
        (pl.col("_row") + height_a).cast(pl.UInt32),
        column=pl.lit(KEY),
        value=keys_b.filter(orphan),
        code=pl.lit(str(IssueCode.UNKNOWN_CUSTOMER)),
        message=pl.format(
            "customer '{}' of this contact is not in the customers file", keys_b.filter(orphan)
        ),
    )
    prior_parts.append(orphans.select(list(ROW_ISSUE_SCHEMA)))
    prior = pl.concat([p.cast({n: d for n, d in ROW_ISSUE_SCHEMA.items()}) for p in prior_parts])
    contact_rows = pl.Series("_row", range(height_a, height_a + contacts.height), pl.UInt32)
    shadow = pl.concat(
        [
            first.shadow,
            prior.select("_row", "column"),
            pl.DataFrame({"_row": contact_rows}).join(
                pl.DataFrame({"column": [*customer_columns]}, schema={"column": pl.String}),
                how="cross",
            ),
        ]
    ).unique(maintain_order=True)
    header = HeaderMap(
        columns={column: base + i for i, column in enumerate(columns_order)},
        unknown=[*first.header.unknown, *((width_a + i, n) for i, n in unknown_b)],
        file_errors=[],
        issues=pl.concat([first.header.issues, unknown_issues_b]),
        source_width=width_a,
        labels=labels,
    )
    return Mapped(rows=rows, header=header, prior=prior, shadow=shadow)
