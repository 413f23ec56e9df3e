"""An agent's viewing rules, blocked periods and a listing's viewing windows.

Reads/writes: agents.viewing_rules (slot length, buffer, notice: the viewing_rules directive's
defaults where unset), agent_blocked_periods, properties.viewing_windows, audit_log. Working hours
and the time zone are `manage_agents set --working-hours / --timezone`.
Guard: every value checked (ranges as the directive's schema; windows as {"sat": ["10:00", "14:00"]});
a listing must be the agent's own.

usage: python -m execution.viewing_settings --agent sara@nile.example --show
       python -m execution.viewing_settings --agent sara@nile.example --slot-minutes 30 --buffer-minutes 10 --notice-hours 4
       python -m execution.viewing_settings --agent sara@nile.example --block 2026-12-24T00:00 2026-12-27T00:00 --reason "holiday"
       python -m execution.viewing_settings --agent sara@nile.example --listing NH-0001 --windows '{"sat": ["10:00", "14:00"]}'
       python -m execution.viewing_settings --agent sara@nile.example --listing NH-0001 --windows none
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from execution.lib import cli, tenant_store, viewing_store
from execution.lib.directive_schemas import working_week
from execution.lib.errors import BadRequest, NotFound
from execution.viewing_messages import parse_local

_LIMITS = {"slot_minutes": (15, 240), "buffer_minutes": (0, 240), "min_notice_hours": (0, 168)}


def set_rules(conn, *, agent: dict, changes: dict) -> dict:
    for key, value in changes.items():
        low, high = _LIMITS[key]
        if not low <= value <= high:
            raise BadRequest(f"{key}: {low} to {high}")
    current = dict(viewing_store.viewing_agent(conn, agent_id=agent["id"])["viewing_rules"] or {})
    current.update(changes)
    viewing_store.set_viewing_rules(conn, agent_id=agent["id"], rules=current)
    return current


def set_windows(conn, *, agent: dict, reference: str, windows: str) -> dict:
    value = None if windows.strip().lower() == "none" else _json(windows)
    if value is not None:
        problems = working_week(value, "windows")
        if problems:
            raise BadRequest("; ".join(f"{w}: {why}" for w, why in problems))
    found = viewing_store.set_listing_windows(conn, agent_id=agent["id"], reference=reference, windows=value)
    if found is None:
        raise NotFound(f"no listing {reference!r} for {agent['email']}")
    return {"reference": found, "viewing_windows": value}


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequest('windows: JSON such as {"sat": ["10:00", "14:00"]}, or none') from None


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    p.add_argument("--show", action="store_true")
    p.add_argument("--slot-minutes", type=int)
    p.add_argument("--buffer-minutes", type=int)
    p.add_argument("--notice-hours", type=int)
    p.add_argument("--block", nargs=2, metavar=("FROM", "TO"), help="a period with no viewings (agent's time zone)")
    p.add_argument("--reason")
    p.add_argument("--listing", help="a listing reference, with --windows")
    p.add_argument("--windows", help='per weekday, e.g. {"sat": ["10:00", "14:00"]}; none: any working hour')
    args = p.parse_args(argv)

    def work(res):
        with res.db.transaction() as conn:
            agent = tenant_store.agent_by_email(conn, email=args.agent)
            if agent is None:
                raise NotFound(f"no agent {args.agent}")
            timing = viewing_store.viewing_agent(conn, agent_id=agent["id"])
            out: dict = {"agent": agent["email"], "timezone": timing["timezone"]}
            changes = {k: v for k, v in (("slot_minutes", args.slot_minutes), ("buffer_minutes", args.buffer_minutes),
                                         ("min_notice_hours", args.notice_hours)) if v is not None}
            if changes:
                out["viewing_rules"] = set_rules(conn, agent=agent, changes=changes)
            if args.block:
                start, end = (parse_local(t, timing["timezone"]) for t in args.block)
                if end <= start:
                    raise BadRequest("--block: the end must come after the start")
                out["blocked"] = viewing_store.add_blocked_period(
                    conn, organization_id=agent["organization_id"], agent_id=agent["id"], start=start, end=end,
                    reason=args.reason)
            if args.listing or args.windows:
                if not (args.listing and args.windows):
                    raise BadRequest("--listing and --windows go together")
                out["listing"] = set_windows(conn, agent=agent, reference=args.listing, windows=args.windows)
            if changes or args.block or args.listing:
                tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli",
                                          action="viewing_settings", entity="agent", entity_id=agent["id"],
                                          details={k: v for k, v in out.items() if k != "agent"})
            if args.show or len(out) == 2:
                out["viewing_rules"] = timing["viewing_rules"] if not changes else out["viewing_rules"]
                out["working_hours"] = timing["working_hours"] or "the viewing_rules directive's"
                _, blocked = viewing_store.busy(conn, agent_id=agent["id"], start=datetime.now(timezone.utc),
                                                end=datetime(9999, 1, 1, tzinfo=timezone.utc))
                out["blocked_periods"] = [[s.isoformat(), e.isoformat()] for s, e in blocked]
        return out

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
