"""The canonical input columns of an ERP customer export, and how they group into tables."""

from __future__ import annotations

from typing import Final

KEY: Final = "erp_customer_number"

REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "erp_customer_number",
    "name",
    "default_currency",
    "default_language",
)

ADDRESS_PARTS: Final[tuple[str, ...]] = ("street", "city", "postal_code", "country")

# address JSON column on `customer` -> {JSON key: canonical input column}
ADDRESS_COLUMNS: Final[dict[str, dict[str, str]]] = {
    kind: {part: f"{kind.removesuffix('_address')}_{part}" for part in ADDRESS_PARTS}
    for kind in ("billing_address", "shipping_address")
}

# customer fields that are copied from one input column each (besides the key)
CUSTOMER_FIELDS: Final[tuple[str, ...]] = (
    "name",
    "email",
    "default_currency",
    "default_language",
    "notes",
)

# every input column that describes the customer (the key included)
CUSTOMER_COLUMNS: Final[tuple[str, ...]] = (
    KEY,
    *CUSTOMER_FIELDS,
    *(col for parts in ADDRESS_COLUMNS.values() for col in parts.values()),
)

# input column -> field name in the `contacts` frame (the `contact_` prefix dropped)
CONTACT_COLUMNS: Final[dict[str, str]] = {
    "contact_email": "email",
    "contact_name": "name",
    "contact_phone": "phone",
    "contact_role": "role",
    "contact_is_primary": "is_primary",
}

# every canonical column, in the order of the contract's table
ALL_COLUMNS: Final[tuple[str, ...]] = (*CUSTOMER_COLUMNS, *CONTACT_COLUMNS)

# columns whose values repeat on every row of a customer and must agree (last row wins)
REPEATED_CUSTOMER_COLUMNS: Final[tuple[str, ...]] = CUSTOMER_COLUMNS[1:]
