"""Move, cancel or confirm a booked viewing; the customer is told and the agent alerted.

Reads: the viewing (scoped to its agent), the viewing_rules directive. Writes, in one transaction:
the viewing's status (a move marks the old one `moved` and books the new time as a new row linked
by `moved_to`, under the same exclusion constraint), its pending reminder and feedback jobs
cancelled (and the new time's scheduled), an audit row; then the `moved` / `cancelled` message to
the customer and an alert to the agent. Confirming only marks it confirmed (the agent saw it).
Guard: the viewing row lock; idempotency keys `move:{id}:{time}`, `viewing:{id}:moved`,
`viewing:{id}:cancelled`, `viewing:{id}:alert:{status}`.

usage: python -m execution.change_viewing move --viewing 7 --at 2026-11-30T12:00
       python -m execution.change_viewing cancel --viewing 7 [--reason "customer bought elsewhere"]
       python -m execution.change_viewing confirm --viewing 7
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from execution.book_viewing import BookingReport, insert_booking
from execution.lib import cli, conversation_store, job_store, property_store, tenant_store, viewing_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import BadRequest, NotFound
from execution.lib.providers import ProviderRegistry
from execution.viewing_messages import notify_agent, notify_customer, parse_local

log = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, report: BookingReport) -> None:
        super().__init__(report.outcome)
        self.report = report


def _locked(conn, *, agent_id: int, viewing_id: int, done: str | None = None) -> dict:
    """The viewing, locked; an inactive one raises, unless it is already `done` (a repeated request)."""
    viewing = viewing_store.get_viewing(conn, agent_id=agent_id, viewing_id=viewing_id, for_update=True)
    if viewing is None:
        raise NotFound(f"no viewing {viewing_id}")
    if viewing["status"] not in viewing_store.ACTIVE and viewing["status"] != done:
        raise BadRequest(f"viewing {viewing_id} is {viewing['status']}")
    return viewing


def _cancel_jobs(conn, viewing: dict, why: str) -> int:
    return job_store.cancel_for_viewing(conn, organization_id=viewing["organization_id"], viewing_id=viewing["id"],
                                        reason=why)


def reschedule_viewing(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, agent_id: int,
                       viewing_id: int, starts_at: datetime, actor: str, now: datetime | None = None,
                       tell_customer: bool = True, tell_agent: bool = True) -> BookingReport:
    now = now or datetime.now(timezone.utc)
    try:
        old, new = _move(db, snapshot=snapshot, agent_id=agent_id, viewing_id=viewing_id, starts_at=starts_at,
                         actor=actor, now=now)
    except _Refused as refused:
        return refused.report            # rolled back: the old viewing stays as it was
    sends = notify_customer(db, redis, providers, snapshot=snapshot, viewing=new, message="moved",
                            key=f"viewing:{new['id']}:moved", booked_by=actor) if tell_customer else ()
    if tell_agent:
        sends += (notify_agent(db, redis, providers, snapshot=snapshot, viewing=new, status="moved",
                               key=f"viewing:{new['id']}:alert:moved"),)
    log.info("viewing %s moved to %s by %s", old["id"], new["id"], actor.split(":")[0])
    return BookingReport("moved", new["id"], new["starts_at"], new["reference"], sends=sends)


def _move(db: Database, *, snapshot: Snapshot, agent_id: int, viewing_id: int, starts_at: datetime, actor: str,
          now: datetime) -> tuple[dict, dict]:
    with db.transaction() as conn:
        old = _locked(conn, agent_id=agent_id, viewing_id=viewing_id, done="moved")
        if old["status"] == "moved":               # the same move asked again: the first one's result
            new = old["moved_to"] and viewing_store.get_viewing(conn, agent_id=agent_id, viewing_id=old["moved_to"])
            if new is None or new["starts_at"] != starts_at:
                raise BadRequest(f"viewing {viewing_id} was moved already (to viewing {old['moved_to']})")
            return old, new
        viewing_store.set_status(conn, viewing_id=old["id"], status="moved")   # frees its time for the new one
        conversation = conversation_store.get_conversation(conn, conversation_id=old["conversation_id"])
        listing = property_store.get_property(conn, agent_id=agent_id, reference=old["reference"])
        new, refusal = insert_booking(conn, snapshot=snapshot, conversation=conversation, listing=listing,
                                      starts_at=starts_at, booked_by=actor, language=old["language"],
                                      key=f"move:{old['id']}:{starts_at:%Y%m%d%H%M}", now=now)
        if new is None:
            raise _Refused(refusal)
        viewing_store.set_status(conn, viewing_id=old["id"], status="moved", moved_to=new["id"])
        _cancel_jobs(conn, old, f"moved to viewing {new['id']}")
        tenant_store.insert_audit(conn, organization_id=old["organization_id"], actor=actor, action="move_viewing",
                                  entity="viewing", entity_id=old["id"], details={"to": new["id"]})
    return old, new


def cancel_viewing(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, agent_id: int,
                   viewing_id: int, actor: str, reason: str | None = None, tell_customer: bool = True,
                   tell_agent: bool = True) -> BookingReport:
    with db.transaction() as conn:
        viewing = _locked(conn, agent_id=agent_id, viewing_id=viewing_id, done="cancelled")
        if viewing["status"] == "cancelled":       # asked twice (a double tap, a retried reply): once is enough
            return BookingReport("already_cancelled", viewing_id, viewing["starts_at"], viewing["reference"])
        viewing_store.set_status(conn, viewing_id=viewing_id, status="cancelled", cancel_reason=(reason or "")[:300])
        _cancel_jobs(conn, viewing, "viewing cancelled")
        tenant_store.insert_audit(conn, organization_id=viewing["organization_id"], actor=actor,
                                  action="cancel_viewing", entity="viewing", entity_id=viewing_id, details={})
    sends = notify_customer(db, redis, providers, snapshot=snapshot, viewing=viewing, message="cancelled",
                            key=f"viewing:{viewing_id}:cancelled", booked_by=actor) if tell_customer else ()
    if tell_agent:
        sends += (notify_agent(db, redis, providers, snapshot=snapshot, viewing=viewing, status="cancelled",
                               key=f"viewing:{viewing_id}:alert:cancelled"),)
    log.info("viewing %s cancelled by %s", viewing_id, actor.split(":")[0])
    return BookingReport("cancelled", viewing_id, viewing["starts_at"], viewing["reference"], sends=sends)


def confirm_viewing(db: Database, *, agent_id: int, viewing_id: int, actor: str) -> BookingReport:
    with db.transaction() as conn:
        viewing = _locked(conn, agent_id=agent_id, viewing_id=viewing_id)
        viewing_store.set_status(conn, viewing_id=viewing_id, status="confirmed")
        tenant_store.insert_audit(conn, organization_id=viewing["organization_id"], actor=actor,
                                  action="confirm_viewing", entity="viewing", entity_id=viewing_id, details={})
    return BookingReport("confirmed", viewing_id, viewing["starts_at"], viewing["reference"])


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    for name in ("move", "cancel", "confirm"):
        one = sub.add_parser(name)
        one.add_argument("--viewing", type=int, required=True)
        if name == "move":
            one.add_argument("--at", required=True, help="the new start, YYYY-MM-DDTHH:MM in the agent's time zone")
        if name == "cancel":
            one.add_argument("--reason")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            row = viewing_store.owner(conn, viewing_id=args.viewing)
        if row is None:
            raise NotFound(f"no viewing {args.viewing}")
        providers = ProviderRegistry(secret_key=res.settings.secret_key)
        common = dict(agent_id=row["agent_id"], viewing_id=args.viewing, actor="cli")
        if args.action == "confirm":
            return confirm_viewing(res.db, **common)
        if args.action == "cancel":
            return cancel_viewing(res.db, res.redis, providers, snapshot=load_directives(), reason=args.reason,
                                  **common)
        return reschedule_viewing(res.db, res.redis, providers, snapshot=load_directives(),
                                  starts_at=parse_local(args.at, row["timezone"]), **common)

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
