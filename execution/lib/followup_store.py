"""SQL for follow-ups: messages the assistant will send later, and tasks it promised for the agent."""

from __future__ import annotations

from execution.lib.db import Connection


def cancel_followups(conn: Connection, *, conversation_id: int, reason: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE followups SET status = 'cancelled', cancel_reason = %s, updated_at = now()
             WHERE conversation_id = %s AND status = 'pending' AND owner = 'assistant'
            """,
            (reason, conversation_id),
        )
        return cur.rowcount


def insert_agent_task(conn: Connection, *, organization_id: int, conversation_id: int, message_id: int,
                      kind: str, key: str | None = None) -> int | None:
    """A task for the agent (a promise a reply made, or a flag); once per customer message and kind,
    or once per `key` when given."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO followups (organization_id, conversation_id, kind, due_at, owner, message_id, idempotency_key)
            VALUES (%s, %s, %s, now(), 'agent', %s, %s)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
            """,
            (organization_id, conversation_id, kind, message_id, key or f"promise:{message_id}:{kind}"),
        )
        row = cur.fetchone()
        cur.execute("UPDATE conversations SET needs_attention = true WHERE id = %s", (conversation_id,))
        return row["id"] if row else None
