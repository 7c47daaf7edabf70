"""Source profiles: how one ERP's export maps onto the contract's columns (CONTRACT.md 6).

A profile is a TOML file (the shipped ones are in `validators/profile_files/`). This module
loads and checks one into a typed `Profile`; `validators.mapping` applies it to a read export.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract import ALL_COLUMNS, CONTACT_COLUMNS, KEY
from validators.exceptions import ValidatorError
from validators.value_maps import BUILT_IN

#: The profile of the contract's own layout: no mapping at all, today's behaviour exactly.
DEFAULT_PROFILE: Final = "erp-sync"

_PACKAGE_FOLDER: Final = "profile_files"


class ProfileError(ValidatorError):
    """A profile cannot be loaded: it is missing, not TOML, or says something impossible."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: One way to fill a column: a source header, or several joined by the column's separator.
Alternative = tuple[str, ...]


class ColumnSpec(_Strict):
    """Which source header(s) feed one contract column, and how its values translate."""

    sources: tuple[Alternative, ...] = Field(
        default=(),
        alias="from",
        description="alternatives, first non-blank wins; an alternative that is a list joins "
        "its filled cells with `separator`",
    )
    separator: str = Field(default=" ", description="joins the parts of one alternative")
    map: dict[str, str] | None = Field(
        default=None, description="explicit value table (keys trimmed, case-insensitive)"
    )
    translate: Literal["currency_name", "language_name", "country_name", "sap_language"] | None = (
        Field(default=None, description="a built-in translation, after the explicit table")
    )
    unknown: Literal["error", "keep"] = Field(
        default="error",
        description="a value no map knows: an error of the column, or kept for the contract's "
        "own rule to judge",
    )
    value: str | None = Field(default=None, description="a constant instead of a source column")
    when: str | None = Field(
        default=None, description="only on rows where this source column is filled"
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _alternatives(cls, value: Any) -> Any:
        if isinstance(value, str):
            return ((value,),)
        if isinstance(value, list | tuple):
            return tuple((item,) if isinstance(item, str) else tuple(item) for item in value)
        return value

    @property
    def headers(self) -> tuple[str, ...]:
        """Every source header the column reads (the `when` column aside), in order."""
        return tuple(dict.fromkeys(h for alternative in self.sources for h in alternative))

    @property
    def has_map(self) -> bool:
        """Whether values go through a map."""
        return self.map is not None or self.translate is not None


def _column_spec(value: Any) -> Any:
    """`"NAME1"` and `["External ID", "ref"]` are short for `{from = ...}`."""
    if isinstance(value, str | list):
        return {"from": value}
    return value


Columns = dict[str, Annotated[ColumnSpec, Field()]]


class FileOptions(_Strict):
    """How the source writes its files; detection stays the default for what is not set."""

    encoding: str | None = Field(
        default=None, description="utf-8, windows-1252, utf-16 ...; default: detected"
    )
    delimiter: str | None = Field(default=None, description="default: detected from the header")
    skip_lines: int = Field(default=0, ge=0, description="lines before the header, always skipped")
    skip_lines_starting_with: tuple[str, ...] = Field(
        default=(),
        description="lines before the header that start with one of these (quotes ignored) "
        "are skipped, such as DATEV's `EXTF` line",
    )

    @field_validator("delimiter")
    @classmethod
    def _one_of_four(cls, value: str | None) -> str | None:
        if value is not None and value not in (",", ";", "\t", "|"):
            raise ValueError("delimiter must be a comma, semicolon, tab or pipe")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        import codecs

        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r}") from None
        return value


class Booleans(_Strict):
    """Extra yes/no words of the source, besides the contract's own (true/false, x/blank...)."""

    true: tuple[str, ...] = ()
    false: tuple[str, ...] = ()


class ContactsLayout(_Strict):
    """Where the contacts are when they are not on the customer's own row."""

    parent: str | None = Field(
        default=None,
        description="one file: a row whose cell in this column is filled is a contact of the "
        "row it names",
    )
    parent_key: str | None = Field(
        default=None, description="the column of the named row that `parent` refers to"
    )
    files: tuple[str, str] | None = Field(
        default=None,
        description="two files: glob patterns of the customers and the contacts file in an inbox",
    )
    columns: Columns = Field(default_factory=dict, description="the contact rows' own columns")

    @field_validator("columns", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: _column_spec(spec) for name, spec in value.items()}
        return value


class Profile(_Strict):
    """One source profile: aliases, value maps, file options, the contacts' layout, phones."""

    name: str
    title: str = ""
    reads: str = Field(default="", description="which export of the source it reads")
    path: Path | None = Field(default=None, description="the file it was loaded from")
    file: FileOptions = FileOptions()
    booleans: Booleans = Booleans()
    phones: Literal["as_given", "e164"] = "as_given"
    columns: Columns = Field(default_factory=dict)
    contacts: ContactsLayout | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: _column_spec(spec) for name, spec in value.items()}
        return value

    @property
    def is_default(self) -> bool:
        """The contract's own layout: files are read exactly as without a profile."""
        return not self.columns

    @property
    def two_files(self) -> bool:
        """Whether customers and contacts come as two files."""
        return self.contacts is not None and self.contacts.files is not None


def _line_of(text: str, key: str) -> int | None:
    """The line of the first `key = ...` (or `"key" = ...`) in TOML text."""
    match = re.search(rf'^[ \t]*"?{re.escape(key)}"?[ \t]*=', text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _check(profile: Profile, text: str, where: str) -> None:
    """What pydantic cannot say: the columns must be the contract's, the layout complete."""
    known = frozenset(ALL_COLUMNS)

    def fail(key: str, message: str) -> None:
        line = _line_of(text, key)
        raise ProfileError(f"{where}{f', line {line}' if line else ''}: {message}")

    sections: list[tuple[str, Columns]] = [("columns", profile.columns)]
    if profile.contacts is not None:
        sections.append(("contacts.columns", profile.contacts.columns))
    for section, columns in sections:
        for name, spec in columns.items():
            if name not in known:
                fail(
                    name,
                    f"[{section}] names '{name}', which is not a column of the contract "
                    f"(known: {', '.join(ALL_COLUMNS)})",
                )
            if not spec.sources and spec.value is None:
                fail(name, f"[{section}] {name}: give `from` (source headers) or `value`")
            if any(not alternative for alternative in spec.sources):
                fail(name, f"[{section}] {name}: an empty list of source headers")
    contacts = profile.contacts
    if contacts is not None:
        if (contacts.parent is None) == (contacts.files is None):
            fail("contacts", "[contacts] needs either `parent` (one file) or `files` (two files)")
        if contacts.parent is not None and contacts.parent_key is None:
            fail("parent", "[contacts] `parent` needs `parent_key`")
        wrong = [name for name in contacts.columns if name != KEY and name not in CONTACT_COLUMNS]
        if wrong:
            fail(wrong[0], f"[contacts.columns] may name only contact columns, not '{wrong[0]}'")
        if contacts.files is not None and KEY not in contacts.columns:
            fail("contacts", f"[contacts.columns] of a two-file layout needs {KEY}")
    if profile.columns and KEY not in profile.columns:
        fail("columns", f"[columns] needs {KEY}")


def parse_profile(
    text: str, where: str, *, path: Path | None = None, name: str | None = None
) -> Profile:
    """Check the TOML text of a profile; `where` names it in errors (with the line)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML: {exc}") from None
    data.setdefault("name", name or (path.stem if path is not None else where))
    try:
        profile = Profile.model_validate({**data, "path": path})
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        key = next((p for p in reversed(location) if not p.isdigit()), "")
        line = _line_of(text, key) if key else None
        raise ProfileError(
            f"{where}{f', line {line}' if line else ''}: {'.'.join(location)}: {error['msg']}"
        ) from None
    _check(profile, text, where)
    return profile


def shipped_profiles() -> list[str]:
    """The names of the shipped profiles, the default first."""
    folder = resources.files("validators").joinpath(_PACKAGE_FOLDER)
    names = sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )
    return sorted(names, key=lambda name: name != DEFAULT_PROFILE)


def load_profile(name_or_path: str | Path, *, base: Path | None = None) -> Profile:
    """A shipped profile by name, or a profile file by path (relative to `base` if given)."""
    text_name = str(name_or_path)
    if text_name in shipped_profiles():
        resource = resources.files("validators").joinpath(_PACKAGE_FOLDER, f"{text_name}.toml")
        return parse_profile(
            resource.read_text(encoding="utf-8"), f"profile '{text_name}'", name=text_name
        )
    path = Path(name_or_path)
    if base is not None and not path.is_absolute():
        path = base / path
    if path.suffix != ".toml" and not path.exists():
        raise ProfileError(
            f"unknown profile '{text_name}' (shipped: {', '.join(shipped_profiles())}; "
            "or give the path of a .toml file)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the profile: {exc}") from None
    return parse_profile(text, str(path), path=path.resolve())


def default_profile() -> Profile:
    """The profile of the contract's own layout."""
    return load_profile(DEFAULT_PROFILE)


__all__ = [
    "BUILT_IN",
    "DEFAULT_PROFILE",
    "ColumnSpec",
    "ContactsLayout",
    "FileOptions",
    "Profile",
    "ProfileError",
    "default_profile",
    "load_profile",
    "parse_profile",
    "shipped_profiles",
]
