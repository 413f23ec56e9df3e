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


def schedule_nudge(conn: Connection, *, organization_id: int, conversation_id: int, message_id: int, n: int,
                   due_at) -> int | None:
    """The assistant's n-th follow-up after the reply to customer message `message_id` (once each)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO followups (organization_id, conversation_id, kind, due_at, owner, message_id, idempotency_key)
            VALUES (%s, %s, %s, %s, 'assistant', %s, %s)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
            """,
            (organization_id, conversation_id, f"nudge_{n}", due_at, message_id, f"nudge:{message_id}:{n}"),
        )
        row = cur.fetchone()
        return row["id"] if row else None


def get_followup(conn: Connection, *, followup_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM followups WHERE id = %s", (followup_id,))
        return cur.fetchone()


def finish_followup(conn: Connection, *, followup_id: int, status: str, reason: str | None = None) -> bool:
    with conn.cursor() as cur:
        cur.execute("UPDATE followups SET status = %s, cancel_reason = %s, updated_at = now() "
                    "WHERE id = %s AND status = 'pending'", (status, reason, followup_id))
        return cur.rowcount == 1


def customer_texts_since(conn: Connection, *, conversation_id: int, after_id: int) -> tuple[int, list[str]]:
    """(how many customer messages came after `after_id`, the texts of the last 30 customer messages)."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE id > %s) AS since FROM messages "
                    "WHERE conversation_id = %s AND author = 'customer'", (after_id, conversation_id))
        since = cur.fetchone()["since"]
        cur.execute("SELECT body FROM messages WHERE conversation_id = %s AND author = 'customer' AND body IS NOT NULL "
                    "ORDER BY id DESC LIMIT 30", (conversation_id,))
        return since, [r["body"] for r in cur.fetchall()]


def agent_tasks(conn: Connection, *, conversation_id: int) -> list[dict]:
    """What replies promised the agent would do here (and flags), still to do."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, kind, created_at FROM followups WHERE conversation_id = %s AND owner = 'agent' "
                    "AND status = 'pending' ORDER BY id", (conversation_id,))
        return cur.fetchall()


def finish_agent_task(conn: Connection, *, conversation_id: int, task_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("UPDATE followups SET status = 'done', updated_at = now() WHERE id = %s AND conversation_id = %s "
                    "AND owner = 'agent' AND status = 'pending'", (task_id, conversation_id))
        return cur.rowcount == 1
