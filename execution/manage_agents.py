"""Agents and their agencies: create, list, change details, set a password, disable, link a channel.

Reads/writes: organizations, agents, channels (the agent a number answers for), agent_sessions
(a new password or disabling logs the agent out everywhere), audit_log.
Passwords are never taken as an argument (they would show in the process list): `--password-stdin`
reads one line, `--generate-password` prints a new one once. Hashes are argon2id.

usage: python -m execution.manage_agents create --org nile-homes --org-name "Nile Homes" --email sara@nile.example \
           --name Sara --phone 201001234567 --gender female --language ar --generate-password
       python -m execution.manage_agents list [--org nile-homes]
       python -m execution.manage_agents set --email sara@nile.example --persona premium --timezone Africa/Cairo \
           --working-hours '{"sun": ["09:00", "18:00"]}' --arabic-digits yes --instructions "Viewings are free"
       python -m execution.manage_agents password --email sara@nile.example --password-stdin < pw.txt
       python -m execution.manage_agents disable --email sara@nile.example      (enable: the same with `enable`)
       python -m execution.manage_agents link-channel --email sara@nile.example --channel 3
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from execution.lib import availability, cli, session_store, tenant_store
from execution.lib.errors import BadRequest, NotFound
from execution.lib.security import hash_password

STYLES = ("professional", "friendly", "casual", "premium")
_CHANGES = {"name": "name", "phone": "phone", "gender": "gender", "language": "language", "timezone": "timezone",
            "persona": "persona", "arabic_digits": "arabic_digits", "instructions": "instructions",
            "working_hours": "working_hours", "role": "role"}


def _agent(conn, email: str) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT id, organization_id, email, name, disabled_at FROM agents WHERE email = %s",
                    (email.strip().lower(),))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no agent {email}")
    return row


def _checked(changes: dict) -> dict:
    out = {k: v for k, v in changes.items() if v is not None}
    if "phone" in out and not re.fullmatch(r"\d{8,15}", out["phone"]):
        raise BadRequest("phone: digits only, with the country code (e.g. 201001234567)")
    if "timezone" in out:
        try:
            ZoneInfo(out["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest(f"timezone: {out['timezone']!r} is not a time zone (e.g. Africa/Cairo)") from None
    if "arabic_digits" in out:
        out["arabic_digits"] = {"yes": True, "no": False}[out["arabic_digits"]]
    if "working_hours" in out:
        try:
            out["working_hours"] = json.dumps(availability.parse_week(out["working_hours"]))
        except ValueError as exc:
            raise BadRequest(f"working-hours: {exc}") from None
    return out


def create_agent(conn, *, org: str, org_name: str | None, email: str, name: str, password: str | None,
                 **details) -> dict:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", org):
        raise BadRequest("org: a short slug of lower-case letters, digits and dashes")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise BadRequest(f"email: {email!r} is not an email address")
    organization = tenant_store.upsert_organization(conn, slug=org, name=org_name or org)
    with conn.cursor() as cur:
        cur.execute("SELECT organization_id FROM agents WHERE email = %s", (email.lower(),))
        existing = cur.fetchone()
    if existing and existing["organization_id"] != organization["id"]:
        raise BadRequest(f"{email} already belongs to another agency")
    agent = tenant_store.upsert_agent(conn, organization_id=organization["id"], email=email, name=name,
                                      password_hash=hash_password(password) if password else None)
    if details:
        update_agent(conn, email=email, changes=details, actor="cli")
    tenant_store.insert_audit(conn, organization_id=organization["id"], actor="cli", action="create_agent",
                              entity="agent", entity_id=agent["id"], details={"email": agent["email"]})
    out = {**agent, "organization": organization["slug"]}
    if not details.get("phone") and not agent.get("phone"):
        out["warnings"] = [NO_PHONE]
    return out


NO_PHONE = ("no --phone: when a customer needs this agent, the alert reaches the inbox only, not the agent's "
            "WhatsApp (set it with: set --email ... --phone 2010...)")


def update_agent(conn, *, email: str, changes: dict, actor: str) -> dict:
    agent = _agent(conn, email)
    values = _checked(changes)
    if values:
        assignments = ", ".join(f"{_CHANGES[k]} = %s" for k in values)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE agents SET {assignments} WHERE id = %s", (*values.values(), agent["id"]))  # noqa: S608
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor=actor, action="update_agent",
                                  entity="agent", entity_id=agent["id"],
                                  details={"fields": sorted(k for k in values if k != "instructions")})
    return list_agents(conn, email=email)[0]


def list_agents(conn, *, org: str | None = None, email: str | None = None) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.id, a.email, a.name, a.phone, a.gender, a.language, a.timezone, a.persona, a.arabic_digits,
                   a.role, a.working_hours, a.disabled_at IS NOT NULL AS disabled, o.slug AS organization,
                   (a.password_hash IS NOT NULL) AS can_log_in,
                   (SELECT array_agg(c.id ORDER BY c.id) FROM channels c WHERE c.agent_id = a.id) AS channels
              FROM agents a JOIN organizations o ON o.id = a.organization_id
             WHERE (%(org)s::text IS NULL OR o.slug = %(org)s) AND (%(email)s::text IS NULL OR a.email = %(email)s)
             ORDER BY o.slug, a.email
            """,
            {"org": org, "email": email.lower() if email else None},
        )
        return cur.fetchall()


def set_password(conn, *, email: str, password: str) -> dict:
    if len(password) < 10:
        raise BadRequest("password: at least 10 characters")
    agent = _agent(conn, email)
    session_store.set_password_hash(conn, agent_id=agent["id"], password_hash=hash_password(password))
    revoked = session_store.revoke_all(conn, agent_id=agent["id"])
    tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli", action="set_password",
                              entity="agent", entity_id=agent["id"], details={"sessions_revoked": revoked})
    return {"email": agent["email"], "sessions_revoked": revoked}


def set_disabled(conn, *, email: str, disabled: bool) -> dict:
    agent = _agent(conn, email)
    with conn.cursor() as cur:
        cur.execute("UPDATE agents SET disabled_at = CASE WHEN %s THEN coalesce(disabled_at, now()) END WHERE id = %s",
                    (disabled, agent["id"]))
    revoked = session_store.revoke_all(conn, agent_id=agent["id"]) if disabled else 0
    tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli",
                              action="disable_agent" if disabled else "enable_agent", entity="agent",
                              entity_id=agent["id"], details={"sessions_revoked": revoked})
    return {"email": agent["email"], "disabled": disabled, "sessions_revoked": revoked}


def link_channel(conn, *, email: str, channel_id: int) -> dict:
    agent = _agent(conn, email)
    with conn.cursor() as cur:
        cur.execute("UPDATE channels SET agent_id = %s WHERE id = %s AND organization_id = %s RETURNING id, provider",
                    (agent["id"], channel_id, agent["organization_id"]))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no channel {channel_id} in {agent['email']}'s agency")
    return {"email": agent["email"], "channel": row["id"], "provider": row["provider"]}


def main(argv: list[str] | None = None, *, resources=None, stdin=None) -> int:
    p = cli.parser(__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="an agent (and the agency, if new)")
    create.add_argument("--org", required=True, help="the agency's slug")
    create.add_argument("--org-name", help="the agency's name (when it is new)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    change = sub.add_parser("set", help="change an agent's details")
    change.add_argument("--email", required=True)
    change.add_argument("--name")
    for parser in (create, change):
        parser.add_argument("--phone", help="the agent's own WhatsApp number, for alerts")
        parser.add_argument("--gender", choices=("female", "male"))
        parser.add_argument("--language", choices=("en", "ar"), help="the inbox's language")
        parser.add_argument("--timezone")
        parser.add_argument("--persona", choices=STYLES, help="the assistant's style")
        parser.add_argument("--arabic-digits", choices=("yes", "no"))
        parser.add_argument("--instructions", help="private notes the assistant follows")
        parser.add_argument("--working-hours", help='the whole week as JSON, e.g. {"sun": ["09:00", "18:00"], "mon": '
                                                    '["09:00", "18:00"]}: days left out have no viewings')
        parser.add_argument("--role", choices=("agent", "admin"), help="admin: sees the agency's conversations")
    for parser in (create, sub.add_parser("password", help="set a new password (logs out everywhere)")):
        if parser.prog.endswith("password"):
            parser.add_argument("--email", required=True)
        parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        parser.add_argument("--generate-password", action="store_true", help="make one and print it once")
    listing = sub.add_parser("list", help="agents, by agency")
    listing.add_argument("--org")
    for name in ("disable", "enable"):
        sub.add_parser(name).add_argument("--email", required=True)
    link = sub.add_parser("link-channel", help="the agent a number answers for")
    link.add_argument("--email", required=True)
    link.add_argument("--channel", type=int, required=True)
    args = p.parse_args(argv)

    def password() -> str | None:
        if getattr(args, "generate_password", False):
            return secrets.token_urlsafe(12)
        if getattr(args, "password_stdin", False):
            return (stdin or sys.stdin).readline().rstrip("\n")
        return None

    def details() -> dict:
        return {k: getattr(args, k, None) for k in _CHANGES if k != "name"}

    def work(res):
        with res.db.transaction() as conn:
            if args.action == "create":
                pw = password()
                out = create_agent(conn, org=args.org, org_name=args.org_name, email=args.email, name=args.name,
                                   password=pw, **{k: v for k, v in details().items() if v is not None})
                return {**out, **({"password": pw} if args.generate_password else {})}
            if args.action == "set":
                return update_agent(conn, email=args.email, changes={"name": args.name, **details()}, actor="cli")
            if args.action == "password":
                pw = password()
                if not pw:
                    raise BadRequest("give --password-stdin or --generate-password")
                out = set_password(conn, email=args.email, password=pw)
                return {**out, **({"password": pw} if args.generate_password else {})}
            if args.action in ("disable", "enable"):
                return set_disabled(conn, email=args.email, disabled=args.action == "disable")
            if args.action == "link-channel":
                return link_channel(conn, email=args.email, channel_id=args.channel)
            return list_agents(conn, org=args.org)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
