"""Bulk import of listings: validate every row, then upsert by reference in one transaction.

All-or-nothing unless `partial`: one bad row and nothing is written. `dry_run` performs the
writes and rolls them back, so what it reports (created / updated / unchanged) is exact.
A column the file has overwrites that field of an existing listing (an empty cell clears it); a
column the file lacks leaves the field as it is: a sheet of references and prices updates prices only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from execution.lib import property_store, tenant_store
from execution.lib.criteria import find_areas
from execution.lib.db import Connection, transaction
from execution.lib.listings import FileProblem, Listing, RowError, read_rows, validate_row
from execution.lib.text import normalize

MAX_REPORTED = 200


@dataclass(frozen=True)
class ImportReport:
    file: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    written: bool = False
    dry_run: bool = False
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()          # columns the file lacks: existing listings keep those fields
    changes: tuple[str, ...] = ()       # "NH-0001: price, payment_plan": what each updated listing changes
    exit_code: int = field(default=0, repr=False)


class _RollBack(Exception):
    """Ends a dry run's transaction."""


def resolve_area(listing: Listing, aliases: list[property_store.Alias]) -> int | None:
    """The location_areas row a listing's district (or city) names, through the aliases."""
    by_name = {a.normalized: a for a in aliases}
    for name in (listing.district, listing.district_ar, listing.city):
        if not name:
            continue
        exact = by_name.get(normalize(name).strip())
        if exact:
            return exact.area_id
        found, _ = find_areas(normalize(name), aliases)
        if len(found) == 1:
            return found[0].area_id
    return None


def import_listings(
    conn: Connection,
    *,
    path: Path,
    agent: dict | None = None,
    partial: bool = False,
    dry_run: bool = False,
    reassign: bool = False,
    actor: str = "cli",
) -> ImportReport:
    """Import a .csv or .xlsx file for `agent`, or for the agent each row's agent_email names."""
    try:
        raw_rows = list(read_rows(path))
    except FileProblem as exc:
        return ImportReport(str(path), 0, errors=(f"file: {exc}",), exit_code=65)

    errors: list[RowError] = []
    by_agent: dict[int, tuple[dict, list[tuple[int, Listing]]]] = {}
    first_seen: dict[tuple[int, str], int] = {}
    agents: dict[str, dict | None] = {}
    for line, raw in raw_rows:
        listing, row_errors = validate_row(raw, line=line)
        if row_errors:
            errors += row_errors
            continue
        owner = _owner(conn, listing, line, agent=agent, reassign=reassign, cache=agents, errors=errors)
        if owner is None:
            continue
        key = (owner["id"], listing.reference)
        if key in first_seen:
            errors.append(RowError(line, "reference", f"duplicate of line {first_seen[key]} ({listing.reference})"))
            continue
        first_seen[key] = line
        by_agent.setdefault(owner["id"], (owner, []))[1].append((line, listing))

    rejected_lines = {e.line for e in errors}
    report = ImportReport(
        str(path), len(raw_rows), rejected=len(rejected_lines), dry_run=dry_run,
        errors=tuple(str(e) for e in errors[:MAX_REPORTED])
        + ((f"… and {len(errors) - MAX_REPORTED} more",) if len(errors) > MAX_REPORTED else ()),
        exit_code=65 if errors else 0,
    )
    if errors and not partial:
        return report
    columns = frozenset(name for _, raw in raw_rows for name in raw)
    report = replace(report, kept=tuple(c for c in property_store.FILE_COLUMNS if c not in columns))
    try:
        with transaction(conn):
            report = _write(conn, report, by_agent, actor=actor, path=path, columns=columns)
            if dry_run:
                raise _RollBack
    except _RollBack:
        pass
    return replace(report, written=not dry_run and (report.created + report.updated) > 0)


def _owner(conn, listing: Listing, line: int, *, agent, reassign, cache, errors) -> dict | None:
    if agent is not None:
        if listing.agent_email and listing.agent_email != agent["email"] and not reassign:
            errors.append(RowError(line, "agent_email", f"names another agent than {agent['email']}"))
            return None
        return agent
    if not listing.agent_email:
        errors.append(RowError(line, "agent_email", "is required when no --agent is given"))
        return None
    if listing.agent_email not in cache:
        cache[listing.agent_email] = tenant_store.agent_by_email(conn, email=listing.agent_email)
    owner = cache[listing.agent_email]
    if owner is None:
        errors.append(RowError(line, "agent_email", f"no agent {listing.agent_email}"))
    return owner


def _write(conn, report: ImportReport, by_agent: dict, *, actor: str, path: Path, columns: frozenset) -> ImportReport:
    created = updated = unchanged = 0
    warnings: list[str] = []
    changes: list[str] = []
    for owner, rows in by_agent.values():
        aliases = property_store.load_aliases(conn, organization_id=owner["organization_id"])
        resolved, areas = [], {}
        for line, listing in rows:
            place = (listing.district, listing.district_ar, listing.city)
            if place not in areas:
                areas[place] = resolve_area(listing, aliases)
            area_id = areas[place]
            if area_id is None and (listing.district or listing.city):
                warnings.append(f"line {line}: district: {listing.district or listing.city!r} is not a known area; "
                                "customers can find it by name but not by area (add an alias)")
            resolved.append((listing, area_id))
        changes += [f"{ref}: {', '.join(cols)}" for ref, cols in property_store.changed_columns(
            conn, agent_id=owner["id"], listings=resolved, file_columns=columns).items()]
        changed = property_store.upsert_properties(
            conn, organization_id=owner["organization_id"], agent_id=owner["id"], listings=resolved,
            file_columns=columns,
        )
        c = sum(1 for inserted in changed.values() if inserted)
        created, updated, unchanged = created + c, updated + len(changed) - c, unchanged + len(rows) - len(changed)
        tenant_store.insert_audit(
            conn, organization_id=owner["organization_id"], actor=actor, action="import_listings",
            entity="agent", entity_id=owner["id"],
            details={"file": path.name, "created": c, "updated": len(changed) - c, "rows": len(rows)},
        )
    return replace(report, created=created, updated=updated, unchanged=unchanged,
                   warnings=tuple(warnings[:MAX_REPORTED]), changes=tuple(changes[:MAX_REPORTED]))
