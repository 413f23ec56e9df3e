"""Agents log in to the inbox, are recognised by their session, and log out (here or everywhere).

Reads: agents (email, argon2 password hash, disabled), agent_sessions.
Writes: agent_sessions (a random token per login; only its sha256 is stored, with a CSRF token),
the password hash when it was made with older parameters (rehashed at login), audit_log.
Guards: failed logins are counted in Redis per account and per address (ratelimit:login:*); past
`ACCOUNT_LIMIT` / `ADDRESS_LIMIT` failures in `WINDOW_S` the login is refused with 429 before the
password is even checked. An unknown email costs the same hash as a known one, and answers the same
"wrong email or password". Sessions expire after `TTL_S`, or `IDLE_S` without use.

usage: python -m execution.agent_sessions --agent sara@nile-homes.example --list
       python -m execution.agent_sessions --agent sara@nile-homes.example --revoke-all
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from execution.lib import cli, guards, session_store, tenant_store
from execution.lib.db import Database
from execution.lib.errors import NotFound, TooManyAttempts, Unauthorized
from execution.lib.security import hash_password, hash_token, needs_rehash, verify_password

TTL_S = 30 * 86_400
IDLE_S = 14 * 86_400
WINDOW_S = 15 * 60
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 30
_DUMMY = None


@dataclass(frozen=True)
class Login:
    token: str            # the cookie value; never stored
    csrf_token: str
    agent_id: int


def _scopes(email: str, address: str) -> tuple[str, str]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"account:{account}", f"address:{address}"


def log_in(db: Database, redis, *, email: str, password: str, address: str) -> Login:
    global _DUMMY
    if not email or any(ord(ch) < 32 for ch in email + password):
        raise Unauthorized("wrong email or password")
    account, place = _scopes(email, address)
    for scope, limit in ((account, ACCOUNT_LIMIT), (place, ADDRESS_LIMIT)):
        count, left = guards.failures(redis, scope)
        if count >= limit:
            minutes = max(1, (left + 59) // 60)
            raise TooManyAttempts(f"too many attempts; try again in {minutes} minute{'s' * (minutes > 1)}",
                                  retry_after_s=left or WINDOW_S)
    with db.connection() as conn:
        agent = session_store.agent_for_login(conn, email=email)
    if agent is None or not agent["password_hash"]:
        _DUMMY = _DUMMY or hash_password(secrets.token_urlsafe(16))
        verify_password(password, _DUMMY)          # the same cost as a real check
        ok = False
    else:
        ok = verify_password(password, agent["password_hash"]) and agent["disabled_at"] is None
    if not ok:
        guards.count_failure(redis, account, window_s=WINDOW_S)
        guards.count_failure(redis, place, window_s=WINDOW_S)
        raise Unauthorized("wrong email or password")
    guards.clear_failures(redis, account)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with db.transaction() as conn:
        if needs_rehash(agent["password_hash"]):
            session_store.set_password_hash(conn, agent_id=agent["id"], password_hash=hash_password(password))
        session_store.insert_session(conn, agent=agent, token_hash=hash_token(token), csrf_token=csrf, ttl_s=TTL_S)
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor=f"inbox:{agent['id']}",
                                  action="login", entity="agent", entity_id=agent["id"], details={})
    return Login(token, csrf, agent["id"])


def viewer(db: Database, token: str | None) -> dict | None:
    """Who this session token belongs to (agent id, organization, role, language ...), or None."""
    if not token or len(token) > 200:
        return None
    with db.connection() as conn:
        return session_store.session_viewer(conn, token_hash=hash_token(token), idle_s=IDLE_S)


def log_out(db: Database, token: str | None) -> int:
    if not token:
        return 0
    with db.connection() as conn:
        return session_store.revoke_session(conn, token_hash=hash_token(token))


def log_out_everywhere(db: Database, *, agent_id: int, organization_id: int, actor: str) -> int:
    with db.transaction() as conn:
        revoked = session_store.revoke_all(conn, agent_id=agent_id)
        tenant_store.insert_audit(conn, organization_id=organization_id, actor=actor, action="logout_everywhere",
                                  entity="agent", entity_id=agent_id, details={"sessions": revoked})
    return revoked


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="the agent's live sessions")
    what.add_argument("--revoke-all", action="store_true", help="log the agent out everywhere")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            agent = session_store.agent_for_login(conn, email=args.agent)
            if agent is None:
                raise NotFound(f"no agent {args.agent}")
            if args.list:
                return {"agent": agent["email"], "sessions": session_store.live_sessions(conn, agent_id=agent["id"])}
        return {"agent": agent["email"], "revoked": log_out_everywhere(
            res.db, agent_id=agent["id"], organization_id=agent["organization_id"], actor="cli")}

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
