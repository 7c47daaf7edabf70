"""`erp-sync org`: register and list organisations (tenants)."""

from __future__ import annotations

import json
import re

import click

from flows.cli.common import UsageError, open_database

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@click.group("org")
def org() -> None:
    """Organisations (tenants).

    \b
    Example:
      erp-sync org add acme --name "ACME GmbH"
    """


@org.command("add")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
def org_add(slug: str, name: str | None) -> None:
    """Register the organisation SLUG (idempotent) and print its id.

    \b
    Example:
      erp-sync org add acme --name "ACME GmbH"
    """
    from loaders.orgs import add_org

    if not _valid_slug(slug):
        raise UsageError(
            f"invalid organisation slug {slug!r}: use lower-case letters, digits, '-' and '_'"
        )
    handle = open_database()
    with handle.engine.begin() as conn:
        organisation = add_org(conn, slug, name)
    click.echo(str(organisation.id))


@org.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def org_list(as_json: bool) -> None:
    """List the organisations.

    \b
    Example:
      erp-sync org list --json
    """
    from loaders.orgs import list_orgs

    handle = open_database()
    with handle.engine.connect() as conn:
        organisations = list_orgs(conn)
    if as_json:
        items = [{"id": str(o.id), "slug": o.slug, "name": o.name} for o in organisations]
        click.echo(json.dumps(items, indent=2))
        return
    if not organisations:
        click.echo("no organisations yet: add one with `erp-sync org add SLUG`")
        return
    width = max(len(o.slug) for o in organisations)
    for o in organisations:
        click.echo(f"{o.slug:<{width}}  {o.id}  {o.name}")


def _valid_slug(slug: str) -> bool:
    return _SLUG.fullmatch(slug) is not None
