"""SQL for the agents' login sessions (the cookie holds a random token; only its hash is stored)."""

from __future__ import annotations

from execution.lib.db import Connection


def agent_for_login(conn: Connection, *, email: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, organization_id, email, password_hash, disabled_at FROM agents WHERE email = %s
            """,
            (email.strip().lower(),),
        )
        return cur.fetchone()


def set_password_hash(conn: Connection, *, agent_id: int, password_hash: str) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE agents SET password_hash = %s WHERE id = %s", (password_hash, agent_id))


def insert_session(conn: Connection, *, agent: dict, token_hash: str, csrf_token: str, ttl_s: int) -> int:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO agent_sessions (token_hash, organization_id, agent_id, csrf_token, expires_at)
            VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING id
            """,
            (token_hash, agent["organization_id"], agent["id"], csrf_token, ttl_s),
        )
        return cur.fetchone()["id"]


def session_viewer(conn: Connection, *, token_hash: str, idle_s: int, touch_s: int = 60) -> dict | None:
    """The live session's agent (name, role, language ...), touching it at most every `touch_s` (a read, not a
    write and a WAL flush, on most requests); None when unknown, expired, revoked, idle too long, or the agent
    is disabled."""
    with conn.cursor() as cur:
        cur.execute(
            """
            WITH s AS (
                SELECT s.id AS session_id, s.csrf_token, s.last_seen_at, a.id AS agent_id, a.organization_id,
                       a.email, a.name, a.role, a.language, a.arabic_digits, a.persona, o.name AS agency
                  FROM agent_sessions s JOIN agents a ON a.id = s.agent_id JOIN organizations o ON o.id = a.organization_id
                 WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()
                   AND s.last_seen_at > now() - make_interval(secs => %s) AND a.disabled_at IS NULL),
            touched AS (
                UPDATE agent_sessions SET last_seen_at = now()
                 WHERE id = (SELECT session_id FROM s) AND last_seen_at < now() - make_interval(secs => %s))
            SELECT session_id, csrf_token, agent_id, organization_id, email, name, role, language, arabic_digits,
                   persona, agency FROM s
            """,
            (token_hash, idle_s, touch_s),
        )
        return cur.fetchone()


def revoke_session(conn: Connection, *, token_hash: str) -> int:
    with conn.cursor() as cur:
        cur.execute("UPDATE agent_sessions SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
                    (token_hash,))
        return cur.rowcount


def revoke_all(conn: Connection, *, agent_id: int) -> int:
    with conn.cursor() as cur:
        cur.execute("UPDATE agent_sessions SET revoked_at = now() WHERE agent_id = %s AND revoked_at IS NULL",
                    (agent_id,))
        return cur.rowcount


def live_sessions(conn: Connection, *, agent_id: int) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, created_at, last_seen_at, expires_at FROM agent_sessions
             WHERE agent_id = %s AND revoked_at IS NULL AND expires_at > now() ORDER BY id
            """,
            (agent_id,),
        )
        return cur.fetchall()
