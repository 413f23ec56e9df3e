"""Agencies (organizations): create, list, rename. Agents are added with `manage_agents`.

Reads/writes: organizations, audit_log; reads agents and channels for the listing.
Guard: the slug is unique; `create` refuses one that exists (rename it, or add agents to it).

usage: python -m execution.manage_organizations create --slug nile-homes --name "Nile Homes"
       python -m execution.manage_organizations list
       python -m execution.manage_organizations rename --slug nile-homes --name "Nile Homes Realty"
"""

from __future__ import annotations

import re

from execution.lib import cli, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import BadRequest, NotFound

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise BadRequest("name: 1 to 200 characters")
    return name


def create_organization(conn: Connection, *, slug: str, name: str) -> dict:
    if not _SLUG.fullmatch(slug):
        raise BadRequest("slug: 2 to 63 lower-case letters, digits and dashes, e.g. nile-homes")
    with transaction(conn), conn.cursor() as cur:
        cur.execute("INSERT INTO organizations (slug, name) VALUES (%s, %s) ON CONFLICT (slug) DO NOTHING "
                    "RETURNING id, slug, name", (slug, _name(name)))
        row = cur.fetchone()
        if row is None:
            raise BadRequest(f"slug: {slug!r} exists already (rename it, or add agents with manage_agents --org)")
        tenant_store.insert_audit(conn, organization_id=row["id"], actor="cli", action="create_organization",
                                  entity="organization", entity_id=row["id"], details={"slug": slug})
    return row


def rename_organization(conn: Connection, *, slug: str, name: str) -> dict:
    with transaction(conn), conn.cursor() as cur:
        cur.execute("UPDATE organizations SET name = %s WHERE slug = %s RETURNING id, slug, name", (_name(name), slug))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no organization {slug!r}")
        tenant_store.insert_audit(conn, organization_id=row["id"], actor="cli", action="rename_organization",
                                  entity="organization", entity_id=row["id"], details={})
    return row


def list_organizations(conn: Connection) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT o.id, o.slug, o.name, o.created_at,
                   (SELECT count(*) FROM agents a WHERE a.organization_id = o.id AND a.disabled_at IS NULL) AS agents,
                   (SELECT count(*) FROM channels c WHERE c.organization_id = o.id AND c.status = 'active') AS channels
              FROM organizations o ORDER BY o.slug
            """
        )
        return cur.fetchall()


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    for action in ("create", "rename"):
        one = sub.add_parser(action)
        one.add_argument("--slug", required=True, help="short id, e.g. nile-homes")
        one.add_argument("--name", required=True, help="the agency's name as customers know it")
    sub.add_parser("list", help="agencies with their active agents and numbers")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            if args.action == "create":
                return create_organization(conn, slug=args.slug, name=args.name)
            if args.action == "rename":
                return rename_organization(conn, slug=args.slug, name=args.name)
            return list_organizations(conn)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
