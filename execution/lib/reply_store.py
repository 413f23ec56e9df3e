"""SQL for answering: the burst-window schedule, claims on due conversations, escalations, follow-ups."""

from __future__ import annotations

from execution.lib.db import Connection


def schedule_reply(conn: Connection, *, conversation_id: int, window_s: float, cap_s: float) -> None:
    """Answer after `window_s` of quiet, but never later than `cap_s` after the first unanswered message."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE conversations
               SET reply_pending_since = COALESCE(reply_pending_since, now()),
                   reply_due_at = LEAST(now() + make_interval(secs => %s),
                                        COALESCE(reply_pending_since, now()) + make_interval(secs => %s))
             WHERE id = %s
            """,
            (window_s, max(cap_s, window_s), conversation_id),
        )


def clear_reply(conn: Connection, *, conversation_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE conversations SET reply_due_at = NULL, reply_pending_since = NULL, reply_claim_until = NULL "
            "WHERE id = %s",
            (conversation_id,),
        )


def claim_due_replies(conn: Connection, *, limit: int, lease_s: float, conversation_id: int | None = None) -> list[dict]:
    """Conversations whose burst window has closed and that no other responder holds."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE conversations c SET reply_claim_until = now() + make_interval(secs => %(lease)s)
              FROM (SELECT id FROM conversations
                     WHERE reply_due_at IS NOT NULL
                       AND (%(cid)s::bigint IS NOT NULL AND id = %(cid)s::bigint
                            OR %(cid)s::bigint IS NULL AND reply_due_at <= now())
                       AND (reply_claim_until IS NULL OR reply_claim_until < now())
                     ORDER BY reply_due_at LIMIT %(limit)s
                     FOR UPDATE SKIP LOCKED) due
             WHERE c.id = due.id
            RETURNING c.id, c.reply_due_at
            """,
            {"lease": lease_s, "limit": limit, "cid": conversation_id},
        )
        return cur.fetchall()


def finish_reply(conn: Connection, *, conversation_id: int, through_message_id: int) -> None:
    """Done up to this message: clear the schedule unless a newer customer message arrived meanwhile."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE conversations
               SET reply_claim_until = NULL,
                   reply_due_at = CASE WHEN newer.id IS NULL THEN NULL ELSE reply_due_at END,
                   reply_pending_since = CASE WHEN newer.id IS NULL THEN NULL ELSE reply_pending_since END
              FROM (SELECT max(id) AS id FROM messages
                     WHERE conversation_id = %(cid)s AND author = 'customer' AND id > %(mid)s) newer
             WHERE conversations.id = %(cid)s
            """,
            {"cid": conversation_id, "mid": through_message_id},
        )


def release_reply(conn: Connection, *, conversation_id: int, retry_in_s: float) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE conversations SET reply_claim_until = NULL, "
            "reply_due_at = now() + make_interval(secs => %s) WHERE id = %s AND reply_due_at IS NOT NULL",
            (retry_in_s, conversation_id),
        )


def unanswered_customer_messages(conn: Connection, *, conversation_id: int) -> list[dict]:
    """Customer messages after the last message the assistant or the agent sent."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, message_type, body, created_at FROM messages
             WHERE conversation_id = %(cid)s AND author = 'customer'
               AND id > COALESCE((SELECT max(id) FROM messages
                                   WHERE conversation_id = %(cid)s AND author IN ('ai', 'agent')
                                     AND coalesce(delivery_status, '') <> 'suppressed'), 0)
             ORDER BY id
            """,
            {"cid": conversation_id},
        )
        return cur.fetchall()


def last_customer_message_id(conn: Connection, *, conversation_id: int) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) AS id FROM messages WHERE conversation_id = %s AND author = 'customer'",
                    (conversation_id,))
        return cur.fetchone()["id"]


def has_replied_before(conn: Connection, *, conversation_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = %s AND author IN ('ai', 'agent') "
            "AND coalesce(delivery_status, '') <> 'suppressed') AS replied",
            (conversation_id,),
        )
        return cur.fetchone()["replied"]


def insert_escalation(conn: Connection, *, organization_id: int, conversation_id: int, message_id: int, rule: str,
                      category: str) -> int | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO escalations (organization_id, conversation_id, message_id, rule, category)
            VALUES (%s, %s, %s, %s, %s) ON CONFLICT (conversation_id, message_id) DO NOTHING RETURNING id
            """,
            (organization_id, conversation_id, message_id, rule, category),
        )
        row = cur.fetchone()
        cur.execute("UPDATE conversations SET needs_attention = true WHERE id = %s", (conversation_id,))
        return row["id"] if row else None


def set_alert_status(conn: Connection, *, escalation_id: int, status: str) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE escalations SET alert_status = %s WHERE id = %s", (status, escalation_id))


def cancel_followups(conn: Connection, *, conversation_id: int, reason: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE followups SET status = 'cancelled', cancel_reason = %s, updated_at = now()
             WHERE conversation_id = %s AND status = 'pending'
            """,
            (reason, conversation_id),
        )
        return cur.rowcount


def resolve_escalations(conn: Connection, *, conversation_id: int) -> None:
    """The agent handed back: their open escalations are dealt with and the inbox flag goes down."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE escalations SET status = 'resolved', resolved_at = now() WHERE conversation_id = %s AND status = 'open'",
            (conversation_id,),
        )
        cur.execute("UPDATE conversations SET needs_attention = false WHERE id = %s", (conversation_id,))


def conversation_state(conn: Connection, *, conversation_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.id AS conversation_id, c.mode, c.mode_version, c.mode_reason, c.mode_changed_at,
                   c.needs_attention, c.reply_due_at,
                   (SELECT count(*) FROM escalations e WHERE e.conversation_id = c.id AND e.status = 'open')
                       AS open_escalations,
                   (SELECT count(*) FROM followups f WHERE f.conversation_id = c.id AND f.status = 'pending')
                       AS pending_followups,
                   (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id
                       AND m.delivery_status = 'suppressed') AS suppressed_drafts
              FROM conversations c WHERE c.id = %s
            """,
            (conversation_id,),
        )
        return cur.fetchone()


def resume_idle_human_conversations(conn: Connection, *, after_hours: int) -> list[int]:
    """HUMAN conversations whose agent has written nothing for `after_hours` (auto-resume candidates)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.id FROM conversations c
             WHERE c.mode = 'HUMAN' AND c.mode_changed_at < now() - make_interval(hours => %(h)s)
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.author = 'agent'
                                  AND m.created_at > now() - make_interval(hours => %(h)s))
             ORDER BY c.id LIMIT 100
            """,
            {"h": after_hours},
        )
        return [r["id"] for r in cur]
