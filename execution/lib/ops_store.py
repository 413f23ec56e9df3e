"""SQL for operators: how much work is waiting, and which channels cannot send."""

from __future__ import annotations

from execution.lib.db import Connection


def backlog(conn: Connection) -> dict:
    """Counts and ages of the work that is waiting: events, due replies, queued and unsettled sends."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT
              (SELECT count(*) FROM webhook_events WHERE status IN ('pending', 'processing')) AS events_waiting,
              (SELECT extract(epoch FROM now() - min(received_at))::float8 FROM webhook_events
                WHERE status IN ('pending', 'processing')) AS oldest_event_s,
              (SELECT count(*) FROM webhook_events WHERE status = 'failed') AS events_failed,
              (SELECT count(*) FROM conversations WHERE reply_due_at <= now()) AS replies_due,
              (SELECT extract(epoch FROM now() - min(reply_due_at))::float8 FROM conversations
                WHERE reply_due_at <= now()) AS oldest_reply_due_s,
              (SELECT count(*) FROM conversations WHERE reply_claim_until > now()) AS replies_in_progress,
              (SELECT count(*) FROM outbox WHERE status = 'unknown') AS sends_unknown,
              (SELECT count(*) FROM conversations WHERE needs_attention) AS conversations_flagged
            """
        )
        report = dict(cur.fetchone())
        cur.execute(
            """
            SELECT channel_id, count(*) AS queued,
                   extract(epoch FROM now() - min(created_at))::float8 AS oldest_s
              FROM outbox WHERE status IN ('retrying', 'pending') GROUP BY channel_id ORDER BY channel_id
            """
        )
        report["sends_queued"] = [dict(r) for r in cur.fetchall()]
        return report


def failing_channels(conn: Connection, *, at_least: int = 1, bad_states: list[str] = ()) -> list[dict]:
    """Channels whose last `at_least` sends or more all failed (reset by a success), or whose provider
    last reported one of `bad_states` (logged out, blocked)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id AS channel_id, provider, send_failures, provider_state, provider_state_at,
                   last_send_error_at, last_sent_at
              FROM channels WHERE status = 'active' AND (send_failures >= %s OR provider_state = ANY(%s))
             ORDER BY id
            """,
            (at_least, list(bad_states)),
        )
        return [dict(r) for r in cur.fetchall()]
