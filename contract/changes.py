"""What a run changed, as the reports show it: counts per field and the first changes.

Plain data handed from the loaders (through the flows) to the report pages, which read no
database.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldCount:
    """How many customers (or contacts) a run changed in one field."""

    entity: str
    """customer or contact"""
    field: str
    changes: int


@dataclass(frozen=True)
class ShownChange:
    """One changed field of one customer or contact, its values as JSON text."""

    erp_customer_number: str
    contact_email: str | None
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class ChangeOverview:
    """The "What changed" section of a run's report."""

    counts: tuple[FieldCount, ...] = ()
    first: tuple[ShownChange, ...] = ()
    shown_limit: int = 0
    inserted: dict[str, int] = field(default_factory=dict)
    """entity -> rows the run inserted"""
