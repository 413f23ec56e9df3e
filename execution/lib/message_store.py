"""SQL for messages and the outbox: the timeline, delivery statuses and sends."""

from __future__ import annotations

from datetime import datetime

from psycopg2.extras import Json

from execution.lib.db import Connection

# Delivery only moves forward; failed and no_account are terminal.
_RANK_SQL = "CASE {col} WHEN 'pending' THEN 0 WHEN 'unknown' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 9 END"


def insert_message(
    conn: Connection,
    *,
    organization_id: int,
    conversation_id: int,
    direction: str,
    author: str,
    message_type: str = "text",
    body: str | None = None,
    media: dict | None = None,
    sender_id: str | None = None,
    provider_message_id: str | None = None,
    quoted_provider_id: str | None = None,
    delivery_status: str | None = None,
    outbox_id: int | None = None,
    webhook_event_id: int | None = None,
    provider_timestamp: datetime | None = None,
    directive_versions: dict | None = None,
    generation: dict | None = None,
) -> int | None:
    """Insert one message; None if this provider message id is already stored for the conversation."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO messages (organization_id, conversation_id, direction, author, message_type, body, media,
                                  sender_id, provider_message_id, quoted_provider_id, delivery_status, outbox_id,
                                  webhook_event_id, provider_timestamp, directive_versions, generation)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (conversation_id, provider_message_id) WHERE provider_message_id IS NOT NULL DO NOTHING
            RETURNING id
            """,
            (
                organization_id,
                conversation_id,
                direction,
                author,
                message_type,
                body,
                Json(media) if media is not None else None,
                sender_id,
                provider_message_id,
                quoted_provider_id,
                delivery_status,
                outbox_id,
                webhook_event_id,
                provider_timestamp,
                Json(directive_versions) if directive_versions is not None else None,
                Json(generation) if generation is not None else None,
            ),
        )
        row = cur.fetchone()
        return row["id"] if row else None


def update_delivery_status(
    conn: Connection, *, channel_id: int, provider_message_id: str, status: str, detail: str | None
) -> int:
    """Move a message's delivery status forward only; returns how many rows changed (0 or 1)."""
    rank_new = _RANK_SQL.format(col="%(status)s::text")
    rank_old = _RANK_SQL.format(col="m.delivery_status")
    with conn.cursor() as cur:
        cur.execute(
            f"""
            UPDATE messages m
               SET delivery_status = %(status)s,
                   status_detail = COALESCE(%(detail)s, m.status_detail)
              FROM conversations c
             WHERE c.id = m.conversation_id AND c.channel_id = %(channel)s
               AND m.provider_message_id = %(pmid)s
               AND (m.delivery_status IS NULL OR m.delivery_status NOT IN ('failed', 'no_account', 'suppressed'))
               AND (%(status)s IN ('failed', 'no_account') OR {rank_new} > COALESCE({rank_old}, -1))
            """,
            {"status": status, "detail": detail, "channel": channel_id, "pmid": provider_message_id},
        )
        return cur.rowcount


def message_exists(conn: Connection, *, channel_id: int, provider_message_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE c.channel_id = %s AND m.provider_message_id = %s
            """,
            (channel_id, provider_message_id),
        )
        return cur.fetchone() is not None


def outbox_by_provider_id(conn: Connection, *, channel_id: int, provider_message_id: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, status, author FROM outbox WHERE channel_id = %s AND provider_message_id = %s",
            (channel_id, provider_message_id),
        )
        return cur.fetchone()


def insert_outbox(
    conn: Connection,
    *,
    conversation: dict,
    idempotency_key: str,
    kind: str,
    author: str,
    payload: dict,
    mode_version: int | None,
    claim_s: float,
    horizon_s: float,
) -> tuple[int, str] | None:
    """Write the outbox row; None if the idempotency key was used before.

    It is `pending` with a claim of `claim_s` (the sender is with the provider until then), or
    `retrying`, due now, when another send of the channel is queued or in flight: a channel sends
    one message at a time, in order, so a new one queues behind them. Returns (id, status).
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO outbox (organization_id, conversation_id, channel_id, idempotency_key, kind, author,
                                payload, mode_version, status, claimed_until, attempt_started_at,
                                next_attempt_at, give_up_at)
            SELECT %(org)s, %(cid)s, %(channel)s, %(key)s, %(kind)s, %(author)s, %(payload)s, %(mv)s,
                   CASE WHEN q.waiting THEN 'retrying' ELSE 'pending' END,
                   CASE WHEN q.waiting THEN NULL ELSE now() + make_interval(secs => %(claim)s) END,
                   CASE WHEN q.waiting THEN NULL ELSE now() END,
                   CASE WHEN q.waiting THEN now() END,
                   now() + make_interval(secs => %(horizon)s)
              FROM (SELECT EXISTS (SELECT 1 FROM outbox WHERE channel_id = %(channel)s
                                      AND (status = 'retrying'
                                           OR status = 'pending' AND claimed_until > now())) AS waiting) q
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id, status
            """,
            {"org": conversation["organization_id"], "cid": conversation["id"], "channel": conversation["channel_id"],
             "key": idempotency_key, "kind": kind, "author": author, "payload": Json(payload), "mv": mode_version,
             "claim": claim_s, "horizon": horizon_s},
        )
        row = cur.fetchone()
        return (row["id"], row["status"]) if row else None


def get_outbox(conn: Connection, *, idempotency_key: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT o.id, o.conversation_id, o.status, o.provider_message_id, o.last_error, m.id AS message_id
              FROM outbox o LEFT JOIN messages m ON m.outbox_id = o.id
             WHERE o.idempotency_key = %s
            """,
            (idempotency_key,),
        )
        return cur.fetchone()


def finish_outbox(
    conn: Connection,
    *,
    outbox_id: int,
    status: str,
    provider_message_id: str | None,
    delivery_status: str,
    error: str | None,
    attempts: int = 1,
    retry_in_s: float | None = None,
) -> None:
    """Record the provider's answer (after `attempts` HTTP tries) on the outbox row and its timeline message."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE outbox
               SET status = %s, provider_message_id = COALESCE(%s, provider_message_id),
                   attempts = attempts + %s, last_error = %s, claimed_until = NULL,
                   next_attempt_at = CASE WHEN %s::float8 IS NULL THEN NULL
                                          ELSE now() + make_interval(secs => %s::float8) END,
                   sent_at = CASE WHEN %s = 'sent' THEN now() ELSE sent_at END
             WHERE id = %s
            """,
            (status, provider_message_id, attempts, error, retry_in_s, retry_in_s, status, outbox_id),
        )
        cur.execute(
            """
            UPDATE messages
               SET provider_message_id = COALESCE(%s, provider_message_id), delivery_status = %s, status_detail = %s
             WHERE outbox_id = %s
            """,
            (provider_message_id, delivery_status, error, outbox_id),
        )


def sandbox_chat_timeline(conn: Connection, *, channel_id: int, chat_id: str, after_id: int = 0,
                          limit: int = 200) -> dict:
    """One sandbox chat's messages after `after_id` as the customer sees them (the simulator's view).

    Only a sandbox channel's chats: the simulator has no login, so it never reads a real customer's.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT cv.id, cv.mode, cv.mode_reason FROM conversations cv JOIN channels ch ON ch.id = cv.channel_id
             WHERE cv.channel_id = %s AND cv.chat_id = %s AND ch.provider = 'sandbox'
            """,
            (channel_id, chat_id))
        convo = cur.fetchone()
        if convo is None:
            return {"mode": None, "messages": []}
        cur.execute(
            """
            SELECT id, author, message_type, body, media, delivery_status, created_at FROM messages
             WHERE conversation_id = %s AND id > %s AND direction <> 'internal'
               AND coalesce(delivery_status, '') <> 'suppressed'
             ORDER BY id LIMIT %s
            """,
            (convo["id"], after_id, limit),
        )
        return {"mode": convo["mode"], "mode_reason": convo["mode_reason"], "messages": cur.fetchall()}


def thread_for_agent(conn: Connection, *, agent_id: int, conversation_id: int, after_id: int = 0,
                     limit: int = 200) -> list[dict] | None:
    """A conversation's whole timeline, for the agent who owns it only; None for anyone else's."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM conversations WHERE id = %s AND agent_id = %s", (conversation_id, agent_id))
        if cur.fetchone() is None:
            return None
        cur.execute(
            """
            SELECT id, direction, author, message_type, body, media, delivery_status, status_detail,
                   directive_versions, created_at
              FROM messages WHERE conversation_id = %s AND id > %s ORDER BY id LIMIT %s
            """,
            (conversation_id, after_id, limit),
        )
        return cur.fetchall()


_UNSETTLED_COLUMNS = """
    o.id, o.organization_id, o.conversation_id, o.channel_id, o.idempotency_key, o.kind, o.author, o.payload,
    o.mode_version, o.status, o.attempts, o.created_at, o.give_up_at, o.attempt_started_at, o.call_started_at,
    c.chat_id
"""


def claim_due_retries(conn: Connection, *, limit: int, claim_s: float) -> list[dict]:
    """Queued sends that are due: the oldest of each channel, and none of a channel with one in flight."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            WITH picked AS (
                SELECT o.id FROM outbox o
                 WHERE o.status = 'retrying' AND o.next_attempt_at <= now()
                   AND (o.give_up_at > now() OR o.last_error IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel_id = o.channel_id
                                      AND (p.status = 'retrying' AND p.id < o.id
                                           OR p.status = 'pending' AND p.claimed_until > now()))
                 ORDER BY o.id LIMIT %(limit)s
                 FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox o SET status = 'pending', claimed_until = now() + make_interval(secs => %(claim)s),
                   attempt_started_at = now()
              FROM picked, conversations c
             WHERE o.id = picked.id AND c.id = o.conversation_id
            RETURNING {_UNSETTLED_COLUMNS}
            """,
            {"limit": limit, "claim": claim_s},
        )
        return sorted(cur.fetchall(), key=lambda r: r["id"])


def claim_stranded(conn: Connection, *, limit: int, claim_s: float) -> list[dict]:
    """Sends whose sender's claim ran out before it recorded the provider's answer (a crash)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            WITH picked AS (
                SELECT id FROM outbox WHERE status = 'pending' AND coalesce(claimed_until, created_at) < now()
                 ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox o SET claimed_until = now() + make_interval(secs => %(claim)s)
              FROM picked, conversations c
             WHERE o.id = picked.id AND c.id = o.conversation_id
            RETURNING {_UNSETTLED_COLUMNS}
            """,
            {"limit": limit, "claim": claim_s},
        )
        return sorted(cur.fetchall(), key=lambda r: r["id"])


def expire_retries(conn: Connection) -> list[dict]:
    """Sends the provider kept refusing past their horizon become failed; returns them (the agent must be told).

    A send only waiting for its pacing slot (no error yet) never expires: it is on its way.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE outbox SET status = 'failed', claimed_until = NULL,
                   last_error = 'provider unavailable until the retry horizon passed: ' || coalesce(last_error, '')
             WHERE status = 'retrying' AND give_up_at <= now() AND last_error IS NOT NULL
            RETURNING id, conversation_id, channel_id
            """
        )
        rows = cur.fetchall()
        if rows:
            cur.execute("UPDATE messages SET delivery_status = 'failed', status_detail = 'not delivered: provider "
                        "unavailable' WHERE outbox_id = ANY(%s)", ([r["id"] for r in rows],))
        return rows


def settle_by_text(conn: Connection, *, channel_id: int, chat_id: str, text: str, provider_message_id: str) -> int | None:
    """Our send seen in the provider's echo: the one unsettled row with that text, now sent with that id.

    Only when exactly one unsettled row of the chat has that text and the id is not recorded yet:
    with two alike, the echo cannot tell which went, so nothing is settled (each is resolved on its own).
    """
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM outbox WHERE channel_id = %s AND provider_message_id = %s",
                    (channel_id, provider_message_id))
        if cur.fetchone() is not None:
            return None
        cur.execute(
            """
            SELECT o.id FROM outbox o JOIN conversations c ON c.id = o.conversation_id
             WHERE o.channel_id = %(channel)s AND c.chat_id = %(chat)s
               AND o.status IN ('pending', 'unknown', 'retrying') AND o.provider_message_id IS NULL
               AND o.payload->>'text' = %(text)s
             ORDER BY o.id LIMIT 2 FOR UPDATE OF o
            """,
            {"channel": channel_id, "chat": chat_id, "text": text},
        )
        rows = cur.fetchall()
        if len(rows) != 1:
            return None
        outbox_id = rows[0]["id"]
        cur.execute("UPDATE outbox SET status = 'sent', provider_message_id = %s, claimed_until = NULL, "
                    "sent_at = coalesce(sent_at, now()) WHERE id = %s", (provider_message_id, outbox_id))
        cur.execute("UPDATE messages SET provider_message_id = %s, delivery_status = 'sent', status_detail = NULL "
                    "WHERE outbox_id = %s", (provider_message_id, outbox_id))
        return outbox_id


def provider_id_recorded(conn: Connection, *, channel_id: int, provider_message_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM outbox WHERE channel_id = %s AND provider_message_id = %s",
                    (channel_id, provider_message_id))
        return cur.fetchone() is not None


def suppress_outbox(conn: Connection, *, outbox_id: int, reason: str) -> None:
    """A queued AI message that lost the fence before it went out: kept for the agent, never sent."""
    with conn.cursor() as cur:
        cur.execute("UPDATE outbox SET status = 'suppressed', claimed_until = NULL, last_error = %s WHERE id = %s",
                    (reason, outbox_id))
        cur.execute("UPDATE messages SET delivery_status = 'suppressed', status_detail = %s WHERE outbox_id = %s",
                    (reason, outbox_id))


def flag_conversation(conn: Connection, *, conversation_id: int) -> None:
    """Raise the inbox flag: the agent must look (a send that failed, or whose fate is unknown)."""
    with conn.cursor() as cur:
        cur.execute("UPDATE conversations SET needs_attention = true WHERE id = %s", (conversation_id,))


def next_due_in_s(conn: Connection) -> float | None:
    """Seconds until the earliest queued send is due (0 if one is due now); None when nothing is queued."""
    with conn.cursor() as cur:
        cur.execute("SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - now()))::float8 AS s "
                    "FROM outbox WHERE status = 'retrying'")
        return cur.fetchone()["s"]


def unapplied_person_events(conn: Connection, *, channel_id: int, chat_id: str, event_types: tuple[str, ...]) -> int:
    """Received-but-not-applied events in which a person wrote in this chat (the takeover fence)."""
    if not event_types:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) AS n FROM webhook_events
             WHERE channel_id = %s AND chat_id = %s AND status IN ('pending', 'processing')
               AND event_type = ANY(%s)
            """,
            (channel_id, chat_id, list(event_types)),
        )
        return cur.fetchone()["n"]


def settle_by_key(conn: Connection, *, channel_id: int, idempotency_key: str, provider_message_id: str) -> int | None:
    """Our send named by its own key in a provider's status (Meta echoes it): record that it went, with its id."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE outbox SET status = 'sent', provider_message_id = %s, claimed_until = NULL,
                   sent_at = coalesce(sent_at, now())
             WHERE channel_id = %s AND idempotency_key = %s AND provider_message_id IS NULL
               AND status IN ('pending', 'unknown', 'retrying')
            RETURNING id
            """,
            (provider_message_id, channel_id, idempotency_key),
        )
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("UPDATE messages SET provider_message_id = %s, delivery_status = 'sent', status_detail = NULL "
                    "WHERE outbox_id = %s", (provider_message_id, row["id"]))
        return row["id"]


def requeue(conn: Connection, *, outbox_id: int, in_s: float) -> None:
    """Put a claimed send back in the queue for `in_s`, as it was (no attempt counted, its error kept)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE outbox SET status = 'retrying', claimed_until = NULL, "
            "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
            (in_s, outbox_id),
        )


def mark_calling(conn: Connection, *, outbox_id: int) -> None:
    """The provider call of this attempt begins now (before it, a crash leaves a send that never went)."""
    with conn.cursor() as cur:
        cur.execute("UPDATE outbox SET call_started_at = now() WHERE id = %s", (outbox_id,))


def recent_decisions(conn: Connection, *, days: int, limit: int = 20_000) -> list[dict]:
    """The messages a directive decides on, from the last `days`: customer texts (escalate or answer)
    and the agent's replies from the phone (take over or not), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, conversation_id, author, body FROM messages
             WHERE created_at > now() - make_interval(days => %s) AND body IS NOT NULL
               AND ((author = 'customer' AND direction = 'inbound')
                    OR (author = 'agent' AND direction = 'outbound' AND outbox_id IS NULL))
             ORDER BY id LIMIT %s
            """,
            (days, limit),
        )
        return cur.fetchall()
