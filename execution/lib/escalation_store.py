"""SQL for escalations: what needed the agent, and whether the agent was told."""

from __future__ import annotations

from execution.lib.db import Connection


def insert_escalation(conn: Connection, *, organization_id: int, conversation_id: int, message_id: int, rule: str,
                      category: str, reason: str | None = None) -> int | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO escalations (organization_id, conversation_id, message_id, rule, category, reason)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (conversation_id, message_id) DO NOTHING RETURNING id
            """,
            (organization_id, conversation_id, message_id, rule, category, reason),
        )
        row = cur.fetchone()
        cur.execute("UPDATE conversations SET needs_attention = true WHERE id = %s", (conversation_id,))
        return row["id"] if row else None


def set_alert_status(conn: Connection, *, escalation_id: int, status: str) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE escalations SET alert_status = %s WHERE id = %s", (status, escalation_id))


def resolve_escalations(conn: Connection, *, conversation_id: int) -> int:
    """The agent handed back or resolved them: open escalations are dealt with and the inbox flag goes
    down; how many were open."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE escalations SET status = 'resolved', resolved_at = now() WHERE conversation_id = %s AND status = 'open'",
            (conversation_id,),
        )
        resolved = cur.rowcount
        cur.execute("UPDATE conversations SET needs_attention = false WHERE id = %s", (conversation_id,))
        return resolved
