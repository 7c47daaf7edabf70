"""Stored customer numbers in the form imports now give them: NFC, format characters removed.

Why: invisible differences made different customers. `Z-1` and `Z<zero-width space>-1`, a key
behind a byte order mark or with a soft hyphen, and the NFD and NFC spellings of `KÜ-1` were
stored as separate customers. Imports now normalise erp_customer_number (trimmed, Unicode NFC,
every format character of Unicode category Cf removed), so a stored key still spelled the old
way would never match its file again: the next import would add a second customer beside it.
This migration brings the stored keys to the same form in SQL.

PostgreSQL's regular expressions know no `\\p{Cf}`, so the class of format characters is built
here from Python's Unicode database (as ranges) and passed as a bound parameter; trimming
strips the characters that Unicode calls White_Space, as the importer does. normalize() needs a
UTF-8 database. Before changing anything the migration looks for keys of one organisation that
would become equal (or blank): it refuses, naming them, and changes nothing; someone who knows
the customers must merge or rename them first. Import history (import_issue) keeps the keys as
they were reported.

Downgrade changes nothing: the original spellings are not kept, and they were the defect.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sys
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Unicode White_Space: what the importer trims from a key (polars `str.strip_chars()`).
WHITE_SPACE = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)

#: Collisions named in the error at most (the rest are counted).
SHOWN_COLLISIONS = 20


class KeyCollisionError(RuntimeError):
    """Stored customer numbers of one organisation would become equal, or blank, once normalised."""


def _format_ranges() -> list[tuple[int, int]]:
    """Every code point of Unicode category Cf, as (first, last) ranges."""
    ranges: list[tuple[int, int]] = []
    for point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(point)) == "Cf":
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1] = (ranges[-1][0], point)
            else:
                ranges.append((point, point))
    return ranges


def _escape(point: int) -> str:
    """A code point as a PostgreSQL regex escape (\\uXXXX or \\UXXXXXXXX)."""
    return f"\\u{point:04X}" if point <= 0xFFFF else f"\\U{point:08X}"


def _bracket(ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> str:
    """A bracket expression (without its brackets) of ranges of code points."""
    return "".join(
        _escape(low) if low == high else f"{_escape(low)}-{_escape(high)}" for low, high in ranges
    )


def _format_class() -> str:
    """The bracket expression of every format character (built when the migration runs: the
    scan of all code points takes most of a second, and every command loads this file to learn
    the latest revision)."""
    return f"[{_bracket(_format_ranges())}]"


EDGES = f"^[{_bracket(WHITE_SPACE)}]+|[{_bracket(WHITE_SPACE)}]+$"

# Only non-ASCII keys can change (every format character, every decomposable character and every
# White_Space character that the importer did not already trim is beyond ASCII).
NORMALISED = """
    SELECT c.id, c.org_id, c.erp_customer_number AS stored,
           regexp_replace(
               normalize(regexp_replace(c.erp_customer_number, :format_class, '', 'g'), NFC),
               :edges, '', 'g'
           ) AS normalised
    FROM customer c
    WHERE octet_length(c.erp_customer_number) <> char_length(c.erp_customer_number)
"""

# Groups of keys that would be equal afterwards: changed keys among themselves, and changed keys
# with keys already stored in the normalised form.
COLLISIONS = f"""
    WITH changed AS ({NORMALISED}),
    after AS (
        SELECT org_id, normalised AS key, stored FROM changed WHERE normalised <> stored
        UNION ALL
        SELECT c.org_id, c.erp_customer_number, c.erp_customer_number
        FROM customer c
        JOIN changed n ON n.org_id = c.org_id AND n.normalised = c.erp_customer_number
        WHERE n.normalised <> n.stored
    )
    SELECT o.slug, a.key, array_agg(DISTINCT a.stored) AS stored
    FROM after a JOIN org o ON o.id = a.org_id
    GROUP BY o.slug, a.key
    HAVING count(DISTINCT a.stored) > 1 OR a.key = ''
"""

ANY_NON_ASCII = r"""
    SELECT EXISTS (SELECT 1 FROM customer WHERE erp_customer_number !~ '^[\x01-\x7F]*$')
"""

UPDATE = f"""
    UPDATE customer c SET erp_customer_number = n.normalised
    FROM ({NORMALISED}) n
    WHERE c.id = n.id AND n.normalised <> n.stored
"""


def _shown(key: str) -> str:
    """A key as Python writes it, escaped where a reader could not tell two spellings apart."""
    return repr(key) if unicodedata.is_normalized("NFC", key) else ascii(key)


def _collision_message(rows: list[sa.Row]) -> str:
    lines = []
    for slug, key, stored in sorted(rows)[:SHOWN_COLLISIONS]:
        shown = [_shown(k) for k in sorted(stored)]
        keys = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        becomes = "blank" if key == "" else _shown(key)
        lines.append(f"  organisation {slug!r}: {keys} would become {becomes}")
    if len(rows) > SHOWN_COLLISIONS:
        lines.append(f"  ... and {len(rows) - SHOWN_COLLISIONS} more")
    return (
        "migration 0004 changed nothing: stored customer numbers would become equal, or blank, "
        "once normalised (trimmed, Unicode NFC, invisible format characters removed). Merge or "
        "rename these customers, then run the upgrade again:\n" + "\n".join(lines)
    )


def upgrade() -> None:
    params = {"format_class": _format_class(), "edges": EDGES}
    if op.get_context().as_sql:
        # offline (--sql): no collision check possible; the unique constraint still refuses one
        op.execute(sa.text(UPDATE).bindparams(**params))
        return
    bind = op.get_bind()
    encoding = bind.execute(sa.text("SELECT current_setting('server_encoding')")).scalar_one()
    if encoding != "UTF8":
        if not bind.execute(sa.text(ANY_NON_ASCII)).scalar_one():
            return  # nothing to normalise
        raise RuntimeError(
            f"migration 0004 needs a UTF-8 database (this one is {encoding}): Unicode "
            "normalisation of customer numbers is only available in UTF-8 databases; copy the "
            "data into a UTF-8 database, then upgrade that one"
        )
    collisions = bind.execute(sa.text(COLLISIONS), params).all()
    if collisions:
        raise KeyCollisionError(_collision_message(list(collisions)))
    bind.execute(sa.text(UPDATE), params)


def downgrade() -> None:
    """Change nothing: the original spellings were not kept (and were the defect)."""
