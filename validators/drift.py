"""Header drift: how a file's layout differs from the last applied file's (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from contract import IssueCode, Severity
from contract.frames import ISSUE_SCHEMA
from validators.header import canonical_name


@dataclass(frozen=True)
class Layout:
    """A file's header as written, its delimiter and its encoding."""

    header: tuple[str, ...]
    delimiter: str | None
    encoding: str | None


@dataclass(frozen=True)
class Drift:
    """The differences between two layouts, one message per difference."""

    lost: tuple[str, ...]
    """columns the last file had and this one lacks (renamed ones included)"""
    messages: tuple[tuple[str, str], ...]
    """(column or setting, message) per difference"""

    @property
    def issues(self) -> pl.DataFrame:
        """One `header_drift` warning per difference (line 1)."""
        return pl.DataFrame(
            {
                "line": [1] * len(self.messages),
                "erp_customer_number": [None] * len(self.messages),
                "column": [column for column, _ in self.messages],
                "value": [column for column, _ in self.messages],
                "code": [str(IssueCode.HEADER_DRIFT)] * len(self.messages),
                "severity": [str(Severity.WARNING)] * len(self.messages),
                "message": [message for _, message in self.messages],
            },
            schema=ISSUE_SCHEMA,
        )


def _names(header: Sequence[str]) -> dict[str, str]:
    return {canonical_name(name): name.strip() for name in header}


def compare_layouts(previous: Layout, current: Layout) -> Drift:
    """Name each column gone, renamed or added, and a changed delimiter or encoding."""
    old, new = _names(previous.header), _names(current.header)
    gone = [key for key in old if key not in new]
    added = [key for key in new if key not in old]
    old_at = {canonical_name(n): i for i, n in enumerate(previous.header)}
    new_at = {canonical_name(n): i for i, n in enumerate(current.header)}
    renamed: list[tuple[str, str]] = []
    for key in list(gone):
        partner = next((a for a in added if new_at[a] == old_at[key]), None)
        if partner is not None:
            renamed.append((key, partner))
            gone.remove(key)
            added.remove(partner)
    messages: list[tuple[str, str]] = []
    messages += [(old[k], f"column '{old[k]}' of the last applied file is gone") for k in gone]
    messages += [
        (new[n], f"column '{old[o]}' of the last applied file is now '{new[n]}' (renamed?)")
        for o, n in renamed
    ]
    messages += [(new[k], f"column '{new[k]}' is new since the last applied file") for k in added]
    if previous.delimiter and current.delimiter and previous.delimiter != current.delimiter:
        messages.append(
            (
                "delimiter",
                f"the delimiter changed from {previous.delimiter!r} to {current.delimiter!r}",
            )
        )
    if previous.encoding and current.encoding and previous.encoding != current.encoding:
        messages.append(
            ("encoding", f"the encoding changed from {previous.encoding} to {current.encoding}")
        )
    lost = tuple(old[k] for k in gone) + tuple(old[o] for o, _ in renamed)
    return Drift(lost=lost, messages=tuple(messages))
