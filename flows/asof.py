"""The as-of time of an export: from its file name, else given on the command line, else none.

Built in: a date `YYYY-MM-DD` or `YYYYMMDD`, optionally followed by a time `THHMM` or
`THHMMSS` (`kunden_2026-11-20.csv`, `export_20261120T0200.csv`). A setting
(`ERP_SYNC_AS_OF_PATTERN`) may name another regular expression with the groups `year`,
`month`, `day` and optionally `hour`, `minute`, `second`. Times without a zone are UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

#: The built-in forms; the digits must not run on into other digits (no 9-digit "dates").
BUILT_IN_PATTERNS: tuple[str, ...] = (
    r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})?)?(?!\d)",
    r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})?)?(?!\d)",
)


class AsOfPatternError(ValueError):
    """The as-of pattern setting is not a regular expression with year, month and day groups."""


@lru_cache(maxsize=8)
def _compiled(pattern: str | None) -> tuple[re.Pattern[str], ...]:
    if pattern is None:
        return tuple(re.compile(p) for p in BUILT_IN_PATTERNS)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        message = f"ERP_SYNC_AS_OF_PATTERN is not a regular expression: {exc}"
        raise AsOfPatternError(message) from exc
    missing = {"year", "month", "day"} - set(compiled.groupindex)
    if missing:
        raise AsOfPatternError(
            f"ERP_SYNC_AS_OF_PATTERN lacks the group(s) {', '.join(sorted(missing))}"
        )
    return (compiled,)


def as_of_from_name(name: str, pattern: str | None = None) -> datetime | None:
    """The as-of time a file name holds (the first valid match), or None."""
    for regex in _compiled(pattern):
        for match in regex.finditer(name):
            parts = match.groupdict()
            try:
                return datetime(
                    int(parts["year"]),
                    int(parts["month"]),
                    int(parts["day"]),
                    int(parts.get("hour") or 0),
                    int(parts.get("minute") or 0),
                    int(parts.get("second") or 0),
                    tzinfo=UTC,
                )
            except ValueError:  # 2026-13-45: not a date, look further
                continue
    return None


def as_utc(moment: datetime | None) -> datetime | None:
    """moment with a time zone (UTC when it has none)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
