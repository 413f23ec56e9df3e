"""SQL for the agent's inbox. Every query is scoped to a viewer: the agent's own conversations, or
their organization's when the viewer is an organization admin. Nothing here takes a bare id alone.

A viewer is {"agent_id", "organization_id", "role"} (agent_sessions.session_viewer returns one).
"""

from __future__ import annotations

import base64
from datetime import datetime

from execution.lib.db import Connection
from execution.lib.text import normalize

_SCOPE = "(c.agent_id = %(agent)s OR (%(admin)s AND c.organization_id = %(org)s))"
FILTERS = {
    "all": "TRUE",
    "ai": "c.mode = 'AI'",
    "human": "c.mode = 'HUMAN'",
    "needs_reply": "(c.needs_attention OR c.unread_count > 0)",
    "escalated": "EXISTS (SELECT 1 FROM escalations e WHERE e.conversation_id = c.id AND e.status = 'open')",
}


def scope(viewer: dict) -> dict:
    return {"agent": viewer["agent_id"], "org": viewer["organization_id"], "admin": viewer.get("role") == "admin"}


def encode_cursor(at: datetime | None, conversation_id: int) -> str:
    raw = f"{at.isoformat() if at else ''}|{conversation_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[str | None, int]:
    at, _, cid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    return at or None, int(cid)


def list_conversations(conn: Connection, *, viewer: dict, filter: str, q: str | None, before: tuple | None,
                       limit: int) -> list[dict]:
    """Newest activity first; `before` (last_message_at, id) continues a page. The agent's alerts chat
    (their own number) is not a customer conversation and is left out."""
    params = {**scope(viewer), "limit": limit, "q": f"%{normalize(q)}%" if q else None,
              "qdigits": f"%{''.join(ch for ch in q if ch.isdigit())}%" if q and any(ch.isdigit() for ch in q) else None,
              "before_at": before[0] if before else None, "before_id": before[1] if before else None}
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT c.id, coalesce(ct.display_name, c.title, ct.phone, c.chat_id) AS title, ct.phone, c.mode,
                   c.unread_count AS unread, c.needs_attention, c.last_message_at,
                   lm.author AS lm_author, lm.body AS lm_body, lm.message_type AS lm_type, lm.created_at AS lm_at,
                   e.id AS e_id, e.category AS e_category, e.rule AS e_rule, e.reason AS e_reason,
                   e.created_at AS e_at
              FROM conversations c
              LEFT JOIN contacts ct ON ct.id = c.contact_id
              LEFT JOIN LATERAL (SELECT author, body, message_type, created_at FROM messages m
                                  WHERE m.conversation_id = c.id AND m.direction <> 'internal'
                                    AND coalesce(m.delivery_status, '') <> 'suppressed'
                                  ORDER BY m.id DESC LIMIT 1) lm ON true
              LEFT JOIN LATERAL (SELECT id, category, rule, reason, created_at FROM escalations e
                                  WHERE e.conversation_id = c.id AND e.status = 'open'
                                  ORDER BY e.id DESC LIMIT 1) e ON true
             WHERE {_SCOPE} AND {FILTERS[filter]} AND c.mode_reason IS DISTINCT FROM 'agent_alerts'
               AND (%(q)s::text IS NULL OR normalize_text(coalesce(ct.display_name, '') || ' ' || coalesce(c.title, ''))
                      LIKE %(q)s OR ct.phone LIKE %(qdigits)s
                    OR EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id AND s.body IS NOT NULL
                                 AND normalize_text(s.body) LIKE %(q)s))
               AND (%(before_id)s::bigint IS NULL
                    OR (coalesce(c.last_message_at, '-infinity'), c.id)
                       < (coalesce(%(before_at)s::timestamptz, '-infinity'), %(before_id)s::bigint))
             ORDER BY coalesce(c.last_message_at, '-infinity') DESC, c.id DESC
             LIMIT %(limit)s
            """,
            params,
        )
        return cur.fetchall()


def conversation(conn: Connection, *, viewer: dict, conversation_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT c.id, c.organization_id, c.agent_id, c.channel_id, c.chat_id,
                   coalesce(ct.display_name, c.title, ct.phone, c.chat_id) AS title, ct.phone, c.mode,
                   c.mode_version, c.mode_reason, c.unread_count AS unread, c.needs_attention, c.lead, c.preferences,
                   c.last_message_at
              FROM conversations c LEFT JOIN contacts ct ON ct.id = c.contact_id
             WHERE c.id = %(cid)s AND {_SCOPE}
            """,
            {**scope(viewer), "cid": conversation_id},
        )
        return cur.fetchone()


def thread(conn: Connection, *, conversation_id: int, limit: int = 300) -> list[dict]:
    """The last `limit` messages, oldest first; a send whose fate is unknown is marked resendable."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT * FROM (
                SELECT m.id, m.author, m.direction, m.message_type, m.body, m.media, m.delivery_status,
                       m.status_detail, m.created_at, m.generation, m.outbox_id,
                       (o.status = 'unknown') AS resendable
                  FROM messages m LEFT JOIN outbox o ON o.id = m.outbox_id
                 WHERE m.conversation_id = %s ORDER BY m.id DESC LIMIT %s) t
             ORDER BY id
            """,
            (conversation_id, limit),
        )
        return cur.fetchall()


def escalations(conn: Connection, *, conversation_id: int) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, category, rule, reason, status, created_at FROM escalations WHERE conversation_id = %s "
            "ORDER BY id DESC LIMIT 20",
            (conversation_id,),
        )
        return cur.fetchall()


def shown_references(conn: Connection, *, conversation_id: int, limit: int = 12) -> list[str]:
    """The listings the assistant's replies quoted (their `generation.references`), latest first."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT ref FROM (SELECT ref, max(m.id) AS last_id FROM messages m,
                                    jsonb_array_elements_text(coalesce(m.generation->'references', '[]'::jsonb)) ref
                              WHERE m.conversation_id = %s AND m.author = 'ai' GROUP BY ref) s
             ORDER BY last_id DESC LIMIT %s
            """,
            (conversation_id, limit),
        )
        return [r["ref"] for r in cur.fetchall()]


def message_in(conn: Connection, *, conversation_id: int, message_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT m.id, m.author, m.body, m.media, m.delivery_status, m.message_type, o.status AS outbox_status
              FROM messages m LEFT JOIN outbox o ON o.id = m.outbox_id
             WHERE m.id = %s AND m.conversation_id = %s
            """,
            (message_id, conversation_id),
        )
        return cur.fetchone()


def mark_read(conn: Connection, *, conversation_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE conversations SET unread_count = 0 WHERE id = %s AND unread_count <> 0", (conversation_id,))


def events_after(conn: Connection, *, viewer: dict, after_id: int, limit: int = 500) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT c.id, c.conversation_id, c.kind FROM inbox_events c
             WHERE c.id > %(after)s AND {_SCOPE} ORDER BY c.id LIMIT %(limit)s
            """,
            {**scope(viewer), "after": after_id, "limit": limit},
        )
        return cur.fetchall()


def all_events_after(conn: Connection, *, after_id: int, also: list[int] = (), limit: int = 2000) -> list[dict]:
    """Every agent's new events, and those of `also` (ids skipped while their transaction was open), which
    commit after a higher id was read: ids are taken at INSERT, rows become visible at COMMIT."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, organization_id, agent_id, conversation_id, kind FROM inbox_events "
                    "WHERE id > %s OR id = ANY(%s::bigint[]) ORDER BY id LIMIT %s", (after_id, list(also), limit))
        return cur.fetchall()


def event_ids_after(conn: Connection, *, after_id: int, also: list[int] = (), limit: int = 2000) -> list[dict]:
    """all_events_after's ids alone: what the hub reads to keep its place while no tab listens."""
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM inbox_events WHERE id > %s OR id = ANY(%s::bigint[]) ORDER BY id LIMIT %s",
                    (after_id, list(also), limit))
        return cur.fetchall()


def last_event_id(conn: Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) AS id FROM inbox_events")
        return cur.fetchone()["id"]


def prune_events(conn: Connection, *, older_than_s: int) -> int:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM inbox_events WHERE created_at < now() - make_interval(secs => %s)", (older_than_s,))
        return cur.rowcount
