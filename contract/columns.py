"""The input columns of an ERP export and the stored fields they feed (CONTRACT.md 1 and 4)."""

from __future__ import annotations

from typing import Final

#: The customer's key, an input column and a stored column alike.
KEY: Final = "erp_customer_number"

#: The stored fingerprint of what the last applied file said about a customer.
FINGERPRINT: Final = "source_hash"

#: The stored fingerprint of a customer's raw rows when they last validated with no issue, and
#: the number of contacts they gave (migration 0009).
RAW_FINGERPRINT: Final = "raw_hash"
RAW_CONTACTS: Final = "raw_contacts"

REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    KEY,
    "name",
    "default_currency",
    "default_language",
)

#: The keys of an address JSON object, in order.
ADDRESS_PARTS: Final[tuple[str, ...]] = ("street", "city", "postal_code", "country")

#: The address JSON fields of `customer`.
ADDRESS_FIELDS: Final[tuple[str, ...]] = ("billing_address", "shipping_address")

#: address JSON field of `customer` -> {JSON key: input column}
ADDRESS_COLUMNS: Final[dict[str, dict[str, str]]] = {
    kind: {part: f"{kind.removesuffix('_address')}_{part}" for part in ADDRESS_PARTS}
    for kind in ADDRESS_FIELDS
}

#: Customer fields copied from one input column of the same name each (the key aside).
PLAIN_CUSTOMER_FIELDS: Final[tuple[str, ...]] = (
    "name",
    "email",
    "default_currency",
    "default_language",
    "notes",
)

#: Every stored customer field a file may set: the allow-list of the loaders' SQL identifiers.
CUSTOMER_FIELDS: Final[tuple[str, ...]] = (*PLAIN_CUSTOMER_FIELDS, *ADDRESS_FIELDS)

#: Every input column that describes the customer, the key included.
CUSTOMER_COLUMNS: Final[tuple[str, ...]] = (
    KEY,
    *PLAIN_CUSTOMER_FIELDS,
    *(column for parts in ADDRESS_COLUMNS.values() for column in parts.values()),
)

#: input column -> field of `customer_contact` (the `contact_` prefix dropped)
CONTACT_COLUMNS: Final[dict[str, str]] = {
    "contact_email": "email",
    "contact_name": "name",
    "contact_phone": "phone",
    "contact_role": "role",
    "contact_is_primary": "is_primary",
}

#: Stored contact fields a file may set besides the email that identifies the contact.
CONTACT_FIELDS: Final[tuple[str, ...]] = ("name", "phone", "role", "is_primary")

#: Every canonical input column, in the order of the contract's table.
ALL_COLUMNS: Final[tuple[str, ...]] = (*CUSTOMER_COLUMNS, *CONTACT_COLUMNS)

#: Columns whose values repeat on every row of a customer and must agree (last row wins).
REPEATED_CUSTOMER_COLUMNS: Final[tuple[str, ...]] = CUSTOMER_COLUMNS[1:]
