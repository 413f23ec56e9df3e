"""SQL for contacts and conversations: identity, mode, preferences and the reply schedule."""

from __future__ import annotations

from psycopg2.extras import Json

from execution.lib.db import Connection
from execution.lib.errors import NotFound
from execution.lib.inbox_store import shown_references


def upsert_contact(conn: Connection, *, organization_id: int, phone: str, display_name: str | None) -> int:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO contacts (organization_id, phone, display_name) VALUES (%s, %s, %s)
            ON CONFLICT (organization_id, phone)
            DO UPDATE SET display_name = COALESCE(contacts.display_name, EXCLUDED.display_name)
            RETURNING id
            """,
            (organization_id, phone, display_name),
        )
        return cur.fetchone()["id"]


def upsert_conversation(
    conn: Connection,
    *,
    channel: dict,
    chat_id: str,
    contact_id: int | None,
    is_group: bool,
    title: str | None,
) -> dict:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO conversations (organization_id, agent_id, channel_id, contact_id, chat_id, is_group, title)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (channel_id, chat_id)
            DO UPDATE SET title = COALESCE(conversations.title, EXCLUDED.title)
            RETURNING id, organization_id, agent_id, channel_id, chat_id, is_group, mode, mode_version, status
            """,
            (channel["organization_id"], channel["agent_id"], channel["id"], contact_id, chat_id, is_group, title),
        )
        return cur.fetchone()


def get_conversation(conn: Connection, *, conversation_id: int, for_update: bool = False) -> dict | None:
    sql = """
        SELECT id, organization_id, agent_id, channel_id, contact_id, chat_id, is_group, mode, mode_version,
               mode_reason, mode_changed_at, status, unread_count, last_inbound_at, last_message_at
          FROM conversations WHERE id = %s
    """
    with conn.cursor() as cur:
        cur.execute(sql + (" FOR UPDATE" if for_update else ""), (conversation_id,))
        return cur.fetchone()


def require_conversation(conn: Connection, *, conversation_id: int) -> dict:
    """The conversation, or NotFound with its id (for commands run by hand)."""
    found = get_conversation(conn, conversation_id=conversation_id)
    if found is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    return found


def touch_conversation(conn: Connection, *, conversation_id: int, inbound: bool) -> None:
    """Keep the inbox ordering, the unread count and the 24 h window's last inbound time."""
    with conn.cursor() as cur:
        if inbound:
            cur.execute(
                """
                UPDATE conversations
                   SET unread_count = unread_count + 1, last_inbound_at = now(), last_message_at = now()
                 WHERE id = %s
                """,
                (conversation_id,),
            )
        else:
            cur.execute("UPDATE conversations SET last_message_at = now() WHERE id = %s", (conversation_id,))


def change_mode(conn: Connection, *, conversation_id: int, mode: str, reason: str) -> dict | None:
    """Set the mode and bump mode_version; None when the conversation is already in that mode."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE conversations
               SET mode = %s, mode_version = mode_version + 1, mode_reason = %s, mode_changed_at = now()
             WHERE id = %s AND mode <> %s
            RETURNING id, organization_id, mode, mode_version
            """,
            (mode, reason, conversation_id, mode),
        )
        return cur.fetchone()


def lock_preferences(conn: Connection, *, conversation_id: int) -> dict | None:
    """The conversation's stored preferences, row locked; None when there is no such conversation."""
    with conn.cursor() as cur:
        cur.execute("SELECT preferences FROM conversations WHERE id = %s FOR UPDATE", (conversation_id,))
        row = cur.fetchone()
        return None if row is None else row["preferences"]


def set_preferences(conn: Connection, *, conversation_id: int, preferences: dict) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE conversations SET preferences = %s WHERE id = %s", (Json(preferences), conversation_id))


def merge_lead(conn: Connection, *, conversation_id: int, details: dict) -> dict:
    """Add what the customer told about themselves to the conversation's lead details; the result."""
    with conn.cursor() as cur:
        cur.execute("UPDATE conversations SET lead = lead || %s WHERE id = %s RETURNING lead",
                    (Json(details), conversation_id))
        row = cur.fetchone()
        return row["lead"] if row else {}


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
    """Conversations whose burst window has closed and that no other responder holds, channels in turn.

    Each channel's due conversations are taken in their order, but round by round across channels:
    a number flooded by hundreds of customers gets one turn per round like any other number, so it
    cannot hold back another number's first reply (its own replies wait for its pacing anyway).
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            WITH ranked AS (
                SELECT id, reply_due_at,
                       row_number() OVER (PARTITION BY channel_id ORDER BY reply_due_at, id) AS turn
                  FROM conversations
                 WHERE reply_due_at IS NOT NULL
                   AND (%(cid)s::bigint IS NOT NULL AND id = %(cid)s::bigint
                        OR %(cid)s::bigint IS NULL AND reply_due_at <= now())
                   AND (reply_claim_until IS NULL OR reply_claim_until < now())
            ), due AS (
                SELECT c.id FROM conversations c JOIN ranked r ON r.id = c.id
                 ORDER BY r.turn, r.reply_due_at LIMIT %(limit)s
                 FOR UPDATE OF c SKIP LOCKED
            )
            UPDATE conversations c SET reply_claim_until = now() + make_interval(secs => %(lease)s)
              FROM due
             WHERE c.id = due.id
            RETURNING c.id, c.reply_due_at, c.reply_pending_since
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


def conversation_for_agent(conn: Connection, *, agent_id: int, conversation_id: int) -> dict | None:
    """One conversation, only for the agent who owns it (the inbox's getter); None for anyone else's."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, organization_id, agent_id, channel_id, chat_id, is_group, title, mode, mode_version,
                   mode_reason, mode_changed_at, status, unread_count, needs_attention, preferences,
                   last_inbound_at, last_message_at
              FROM conversations WHERE id = %s AND agent_id = %s
            """,
            (conversation_id, agent_id),
        )
        return cur.fetchone()


def conversations_for_agent(conn: Connection, *, agent_id: int, limit: int = 50) -> list[dict]:
    """The agent's conversations, newest activity first (the inbox list)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, chat_id, title, mode, unread_count, needs_attention, last_message_at
              FROM conversations WHERE agent_id = %s
             ORDER BY last_message_at DESC NULLS LAST, id DESC LIMIT %s
            """,
            (agent_id, limit),
        )
        return cur.fetchall()


def extend_claims(conn: Connection, *, conversation_ids: list[int], lease_s: float) -> None:
    """A live responder still answering these: their claims last another `lease_s`."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE conversations SET reply_claim_until = now() + make_interval(secs => %s) "
            "WHERE id = ANY(%s) AND reply_claim_until IS NOT NULL",
            (lease_s, conversation_ids),
        )


def model_context(conn: Connection, *, conversation_id: int, before_id: int, turns: int) -> dict:
    """What a model reads besides the new messages: the last `turns` messages of the thread before
    `before_id` (customer, assistant and agent; suppressed drafts left out), the listings replies have
    shown, the lead details, and the hand-back brief if the agent's last mode change gave one."""
    with conn.cursor() as cur:
        # One round trip: the recent thread, the last mode change and the lead (a reply's hot path).
        cur.execute(
            """
            SELECT (SELECT coalesce(json_agg(json_build_object('author', r.author, 'message_type', r.message_type,
                                                               'body', r.body) ORDER BY r.id), '[]'::json)
                      FROM (SELECT id, author, message_type, body FROM messages
                             WHERE conversation_id = c.id AND id < %(before)s
                               AND author IN ('customer', 'ai', 'agent')
                               AND direction IN ('inbound', 'outbound') AND body IS NOT NULL
                               AND coalesce(delivery_status, '') <> 'suppressed'
                             ORDER BY id DESC LIMIT %(turns)s) r) AS history,
                   (SELECT media FROM messages WHERE conversation_id = c.id AND message_type = 'mode_change'
                     ORDER BY id DESC LIMIT 1) AS last_change,
                   c.lead, c.preferences
              FROM conversations c WHERE c.id = %(cid)s
            """,
            {"cid": conversation_id, "before": before_id, "turns": turns},
        )
        row = cur.fetchone() or {}
    change = row.get("last_change") or {}
    brief = change.get("brief") if change.get("mode") == "AI" else None
    shown = shown_references(conn, conversation_id=conversation_id, limit=10)
    return {"history": row.get("history") or [], "shown": shown, "brief": brief, "lead": row.get("lead") or {},
            "preferences": row.get("preferences") or {}}
