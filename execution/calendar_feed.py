"""An agent's viewings as an iCalendar feed, for Google Calendar, Outlook or the phone's calendar.

Reads: viewings with their listings and the customer's display name (never a phone number).
Writes: agents.calendar_token_hash (`--new-token` makes a token and prints the feed URL once;
only its hash is stored; `--revoke` ends the old URL at once).
Guard: the token is 32 random bytes, looked up by hash; a disabled agent's feed is gone.
`GET /calendar/{token}.ics` serves the same text.

usage: python -m execution.calendar_feed --agent sara@nile-homes.example --new-token [--public-url https://assistant.example.com]
       python -m execution.calendar_feed --agent sara@nile-homes.example --revoke
       python -m execution.calendar_feed --agent sara@nile-homes.example --print
"""

from __future__ import annotations

import secrets
import sys
from datetime import datetime, timedelta, timezone

from execution.lib import cli, formatting, tenant_store, viewing_store
from execution.lib.db import Connection
from execution.lib.errors import NotFound
from execution.lib.security import hash_token

_STATUS = {"booked": "TENTATIVE", "confirmed": "CONFIRMED", "done": "CONFIRMED", "cancelled": "CANCELLED",
           "moved": "CANCELLED"}


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued with a space (RFC 5545 3.1), never splitting a character."""
    out, current = [], ""
    for ch in line:
        if len((current + ch).encode()) > (75 if not out else 74):
            out.append(current)
            current = ""
        current += ch
    out.append(current)
    return "\r\n ".join(out)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def render_feed(agent: dict, viewings: list[dict], *, host: str = "wa-assistant") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//wa-assistant//viewings//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_escape('Viewings - ' + agent['name'])}",
             f"X-WR-TIMEZONE:{agent['timezone']}"]
    now = _stamp(datetime.now(timezone.utc))
    for v in viewings:
        title = f"Viewing {v['reference']}" + (f" ({v['project_name']})" if v.get("project_name") else "")
        who = v.get("customer_name") or "a customer"
        about = f"With {who}. Booked by {v['booked_by'].split(':')[0]}. Status: {v['status']}."
        lines += ["BEGIN:VEVENT", f"UID:viewing-{v['id']}@{host}", f"DTSTAMP:{now}",
                  f"DTSTART:{_stamp(v['starts_at'])}", f"DTEND:{_stamp(v['ends_at'])}",
                  f"SUMMARY:{_escape(title)}", f"LOCATION:{_escape(formatting.address_text(v, lang='en'))}",
                  f"DESCRIPTION:{_escape(about)}",
                  f"STATUS:{_STATUS.get(v['status'], 'TENTATIVE')}",
                  f"SEQUENCE:{int(v['updated_at'].timestamp()) - int(v['created_at'].timestamp())}"]
        if v.get("latitude") is not None and v.get("longitude") is not None:
            lines.append(f"GEO:{float(v['latitude']):.6f};{float(v['longitude']):.6f}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def feed_for_token(conn: Connection, *, token: str, days_back: int = 30) -> str:
    agent = viewing_store.agent_by_calendar_token(conn, token_hash=hash_token(token))
    if agent is None:
        raise NotFound("no such calendar (the link was revoked or never existed)")
    viewings = viewing_store.viewings_for_agent(conn, agent_id=agent["id"],
                                                since=datetime.now(timezone.utc) - timedelta(days=days_back))
    return render_feed(agent, viewings)


def new_token(conn: Connection, *, agent_id: int) -> str:
    token = secrets.token_urlsafe(32)
    viewing_store.set_calendar_token(conn, agent_id=agent_id, token_hash=hash_token(token))
    return token


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--new-token", action="store_true", help="a new feed URL (the old one stops working)")
    mode.add_argument("--revoke", action="store_true", help="stop the feed")
    mode.add_argument("--print", action="store_true", help="print the feed as the URL serves it")
    p.add_argument("--public-url", default="http://127.0.0.1:8000", help="where the app is reached")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            agent = tenant_store.agent_by_email(conn, email=args.agent)
            if agent is None:
                raise NotFound(f"no agent {args.agent}")
            if args.print:
                found = viewing_store.viewing_agent(conn, agent_id=agent["id"])
                sys.stdout.write(render_feed(found, viewing_store.viewings_for_agent(
                    conn, agent_id=agent["id"], since=datetime.now(timezone.utc) - timedelta(days=30))))
                return None
            if args.revoke:
                viewing_store.set_calendar_token(conn, agent_id=agent["id"], token_hash=None)
                tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli",
                                          action="revoke_calendar", entity="agent", entity_id=agent["id"])
                return {"revoked": True}
            token = new_token(conn, agent_id=agent["id"])
            tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli",
                                      action="new_calendar_token", entity="agent", entity_id=agent["id"])
            # Printed once, on purpose: the agent subscribes to this URL; only its hash is kept.
            return {"feed_url": f"{args.public_url.rstrip('/')}/calendar/{token}.ics"}

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
