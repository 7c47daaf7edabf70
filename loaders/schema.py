"""The schema's migrations: Alembic's configuration, revisions, upgrade and downgrade."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loaders.exceptions import SchemaBehindError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant would do: it only has to be the same for every erp-sync process.
MIGRATION_LOCK_KEY = 0x6572_7073_796E_63  # "erpsync"


def alembic_config(engine: Engine) -> Any:
    """An Alembic Config pointing at migrations/ and bound to engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


_REVISION = re.compile(r"""^revision(?:\s*:[^=]*)?\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+)$", re.MULTILINE)


def head_revision(engine: Engine | None = None) -> str:
    """The latest revision in migrations/, read from the revision files' identifier lines.

    Every command checks the schema against it: importing Alembic and executing each revision
    file would cost a few tenths of a second per command. A test checks that Alembic's own
    reading (`alembic_heads`) agrees.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision = _REVISION.search(text)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None:
            parents.update(re.findall(r"""["']([^"']+)["']""", down.group(1)))
    heads = sorted(revisions - parents)
    if len(heads) != 1:
        raise RuntimeError(f"the migration history has {len(heads)} heads: {heads}")
    return heads[0]


def alembic_heads(engine: Engine) -> list[str]:
    """The heads of the migration history as Alembic reads it (loading every revision file)."""
    from alembic.script import ScriptDirectory

    return [str(head) for head in ScriptDirectory.from_config(alembic_config(engine)).get_heads()]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        has_table = conn.execute(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not has_table.scalar_one():
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to revision (under a lock, so concurrent processes take turns)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to revision."""
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def ensure_schema_current(engine: Engine, *, migrate: bool) -> None:
    """Migrate (embedded server) or insist that the schema is at head (a named server)."""
    head = head_revision(engine)
    current = current_revision(engine)
    if current == head:
        return
    if migrate:
        upgrade(engine)
        return
    where = f"at revision {current}" if current else "not created yet"
    raise SchemaBehindError(
        f"the erp-sync schema is {where} (the latest is {head}): run `erp-sync db upgrade`"
    )
