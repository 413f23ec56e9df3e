"""Manage an agent's listings: add, update, delete, show, list, import a .csv/.xlsx file, export, add an area alias.

Writes: properties (upsert by agent + reference), location_aliases (alias), audit_log.
Guard: UNIQUE (agent_id, reference): re-importing a file changes only what changed.
Import is all-or-nothing unless --partial; --dry-run reports exactly what would change.
Exit codes: 0 done; 65 rows or fields rejected (each error gives line, field and reason); 4 not found.

usage: python -m execution.manage_properties import listings.csv --agent sara@nile-homes.example [--dry-run]
       python -m execution.manage_properties add --agent EMAIL --set reference=NH-1 property_type=villa ...
       python -m execution.manage_properties update NH-0001 --agent EMAIL --set price=7100000 status=reserved
       python -m execution.manage_properties {show,delete} NH-0001 --agent EMAIL
       python -m execution.manage_properties list --agent EMAIL [--status available]
       python -m execution.manage_properties export --agent EMAIL [--output listings.csv]
       python -m execution.manage_properties alias --agent EMAIL --area new-cairo --name "Katameya" [--language en]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from execution.lib import cli, property_store, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import InvalidData, NotFound
from execution.lib.listing_import import import_listings, resolve_area
from execution.lib.listings import COLUMNS, listing_to_row, validate_row


def _save(conn: Connection, *, agent: dict, fields: dict, actor: str, action: str) -> dict:
    listing, errors = validate_row(fields, line=0)
    if errors:
        raise InvalidData("listing refused", problems=[f"{e.field}: {e.reason}" for e in errors])
    if listing.agent_email and listing.agent_email != agent["email"]:
        raise InvalidData("listing refused", problems=[f"agent_email: names another agent than {agent['email']}"])
    with transaction(conn):
        aliases = property_store.load_aliases(conn, organization_id=agent["organization_id"])
        property_store.upsert_properties(
            conn, organization_id=agent["organization_id"], agent_id=agent["id"],
            listings=[(listing, resolve_area(listing, aliases))],
        )
        row = property_store.get_property(conn, agent_id=agent["id"], reference=listing.reference)
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor=actor, action=action,
                           entity="property", entity_id=row["id"], details={"reference": listing.reference})
    return row


def add_property(conn: Connection, *, agent: dict, fields: dict, actor: str = "cli") -> dict:
    """Create a listing from field → value (the import's column names); refuses an existing reference."""
    if property_store.get_property(conn, agent_id=agent["id"], reference=str(fields.get("reference", ""))):
        raise InvalidData("listing refused", problems=[f"reference: {fields['reference']} already exists"])
    return _save(conn, agent=agent, fields=fields, actor=actor, action="add_property")


def update_property(conn: Connection, *, agent: dict, reference: str, changes: dict, actor: str = "cli") -> dict:
    """Change some fields of one listing; the result is validated as a whole."""
    current = property_store.get_property(conn, agent_id=agent["id"], reference=reference)
    if current is None:
        raise NotFound(f"no listing {reference!r} for {agent['email']}")
    if "reference" in changes and changes["reference"] != current["reference"]:
        raise InvalidData("listing refused", problems=["reference: cannot be changed; add a new listing instead"])
    fields = {**listing_to_row(current), "agent_email": "", **changes}
    return _save(conn, agent=agent, fields=fields, actor=actor, action="update_property")


def delete_property(conn: Connection, *, agent: dict, reference: str, actor: str = "cli") -> dict:
    with transaction(conn):
        row = property_store.delete_property(conn, agent_id=agent["id"], reference=reference)
        if row is None:
            raise NotFound(f"no listing {reference!r} for {agent['email']}")
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor=actor, action="delete_property",
                           entity="property", entity_id=row["id"], details={"reference": reference})
    return {"deleted": reference}


def export_properties(conn: Connection, *, agent: dict, out) -> int:
    """Write every listing of the agent as CSV in the import's columns; returns the row count."""
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    count, offset = 0, 0
    while True:
        page = property_store.list_properties(conn, agent_id=agent["id"], limit=1000, offset=offset)
        for row in page:
            writer.writerow({**listing_to_row(row), "agent_email": agent["email"]})
        count, offset = count + len(page), offset + len(page)
        if len(page) < 1000:
            return count


def _pairs(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in COLUMNS:
            raise InvalidData("bad --set", problems=[f"{item!r}: use FIELD=VALUE with FIELD one of {', '.join(COLUMNS)}"])
        out[name] = value
    return out


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("action", choices=("add", "update", "delete", "show", "list", "import", "export", "alias"))
    p.add_argument("target", nargs="?", help="a reference (update/delete/show) or a file (import)")
    p.add_argument("--agent", help="the agent's email (import: else each row's agent_email)")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", help="fields for add/update")
    p.add_argument("--partial", action="store_true", help="import: write the valid rows, report the rest")
    p.add_argument("--dry-run", action="store_true", help="import: report what would change, write nothing")
    p.add_argument("--status", choices=("available", "reserved", "sold"), help="list: only this status")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--output", type=Path, help="export: file to write (default standard output)")
    p.add_argument("--area", help="alias: the area's slug, e.g. new-cairo")
    p.add_argument("--name", help="alias: the name customers use")
    p.add_argument("--language", choices=("en", "ar", "arabizi"), default="en")
    args = p.parse_args(argv)
    needs_target = {"update", "delete", "show", "import"}
    if args.action in needs_target and not args.target:
        p.error(f"{args.action} needs a {'file' if args.action == 'import' else 'reference'}")
    if args.action != "import" and not args.agent:
        p.error(f"{args.action} needs --agent")

    def work(res):
        with res.db.connection() as conn:
            agent = None
            if args.agent:
                agent = tenant_store.agent_by_email(conn, email=args.agent)
                if agent is None:
                    raise NotFound(f"no agent {args.agent}")
            if args.action == "import":
                return import_listings(conn, path=Path(args.target), agent=agent, partial=args.partial,
                                       dry_run=args.dry_run)
            if args.action == "add":
                return add_property(conn, agent=agent, fields=_pairs(args.set))
            if args.action == "update":
                return update_property(conn, agent=agent, reference=args.target, changes=_pairs(args.set))
            if args.action == "delete":
                return delete_property(conn, agent=agent, reference=args.target)
            if args.action == "show":
                row = property_store.get_property(conn, agent_id=agent["id"], reference=args.target)
                if row is None:
                    raise NotFound(f"no listing {args.target!r} for {agent['email']}")
                return row
            if args.action == "list":
                return {"counts": property_store.count_properties(conn, agent_id=agent["id"]),
                        "listings": [{k: r[k] for k in ("reference", "property_type", "listing_type", "district",
                                                         "bedrooms", "price", "currency", "status")}
                                     for r in property_store.list_properties(conn, agent_id=agent["id"],
                                                                             status=args.status, limit=args.limit)]}
            if args.action == "export":
                if args.output:
                    with args.output.open("w", encoding="utf-8", newline="") as out:
                        return {"exported": export_properties(conn, agent=agent, out=out), "file": args.output}
                export_properties(conn, agent=agent, out=sys.stdout)
                return None
            return _alias(conn, agent=agent, area=args.area, name=args.name, language=args.language)

    return cli.run_command(work, resources=resources)


def _alias(conn: Connection, *, agent: dict, area: str | None, name: str | None, language: str) -> dict:
    if not area or not name:
        raise InvalidData("alias refused", problems=["--area and --name are both required"])
    rows = property_store.areas_by_slug(conn, slugs=[area])
    if not rows:
        raise NotFound(f"no area {area!r}")
    with transaction(conn):
        added = property_store.add_alias(conn, organization_id=agent["organization_id"], area_id=rows[0]["id"],
                                         alias=name.strip(), language=language)
        if added:
            tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli", action="add_alias",
                               entity="location_area", entity_id=rows[0]["id"], details={"alias": name.strip()})
    return {"area": area, "alias": name.strip(), "added": added}


if __name__ == "__main__":
    raise SystemExit(main())
