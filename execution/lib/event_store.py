"""SQL for webhook_events: durable intake, claims with leases, and outcomes."""

from __future__ import annotations

from psycopg2.extras import Json, execute_values

from execution.lib.db import Connection


def insert_events(conn: Connection, *, rows: list[tuple]) -> dict[tuple[str, str], int]:
    """Store many webhooks in one statement; returns {(provider, event_key): id} of the new ones.

    rows: (provider, channel_id, event_key, event_type, payload). Keys already stored, or repeated
    within the batch, are skipped by ON CONFLICT DO NOTHING.
    """
    if not rows:
        return {}
    with conn.cursor() as cur:
        returned = execute_values(
            cur,
            """
            INSERT INTO webhook_events (provider, channel_id, event_key, event_type, payload)
            VALUES %s
            ON CONFLICT (provider, event_key) DO NOTHING
            RETURNING id, provider, event_key
            """,
            [(p, c, k, t, Json(payload)) for p, c, k, t, payload in rows],
            page_size=len(rows),
            fetch=True,
        )
    return {(r["provider"], r["event_key"]): r["id"] for r in returned}


def claim_events(conn: Connection, *, limit: int, lease_s: float, event_id: int | None = None) -> list[dict]:
    """Lease up to `limit` due events (or the one `event_id`) to the caller; SKIP LOCKED."""
    with conn.cursor() as cur:
        cur.execute(
            """
            WITH picked AS (
                SELECT id FROM webhook_events
                 WHERE (%(event_id)s::bigint IS NULL OR id = %(event_id)s)
                   AND (
                        (status = 'pending' AND (available_at <= now() OR %(event_id)s::bigint IS NOT NULL))
                     OR (status = 'processing' AND lease_until < now())
                     OR (%(event_id)s::bigint IS NOT NULL AND status IN ('failed', 'ignored', 'done'))
                   )
                 ORDER BY id
                 LIMIT %(limit)s
                 FOR UPDATE SKIP LOCKED
            )
            UPDATE webhook_events e
               SET status = 'processing',
                   claim_token = gen_random_uuid(),
                   lease_until = now() + make_interval(secs => %(lease)s),
                   attempts = e.attempts + 1
              FROM picked
             WHERE e.id = picked.id
            RETURNING e.id, e.provider, e.channel_id, e.event_type, e.payload, e.attempts, e.claim_token::text
            """,
            {"event_id": event_id, "limit": limit, "lease": lease_s},
        )
        return sorted(cur.fetchall(), key=lambda r: r["id"])


def lock_claimed(conn: Connection, *, event_id: int, claim_token: str) -> bool:
    """Lock the event row for the processing transaction; False if our claim was lost."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id FROM webhook_events
             WHERE id = %s AND claim_token = %s::uuid AND status = 'processing'
               FOR UPDATE
            """,
            (event_id, claim_token),
        )
        return cur.fetchone() is not None


def finish_event(conn: Connection, *, event_id: int, status: str, error: str | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE webhook_events
               SET status = %s, last_error = %s, processed_at = now(), lease_until = NULL, claim_token = NULL
             WHERE id = %s
            """,
            (status, error, event_id),
        )


def release_for_retry(conn: Connection, *, event_id: int, claim_token: str, delay_s: float, error: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE webhook_events
               SET status = 'pending', available_at = now() + make_interval(secs => %s),
                   last_error = %s, lease_until = NULL, claim_token = NULL
             WHERE id = %s AND claim_token = %s::uuid
            """,
            (delay_s, error, event_id, claim_token),
        )
        return cur.rowcount == 1


def fail_event(conn: Connection, *, event_id: int, claim_token: str, error: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE webhook_events
               SET status = 'failed', last_error = %s, processed_at = now(), lease_until = NULL, claim_token = NULL
             WHERE id = %s AND claim_token = %s::uuid
            """,
            (error, event_id, claim_token),
        )
        return cur.rowcount == 1


def get_event(conn: Connection, *, event_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, provider, channel_id, event_type, status, attempts, last_error FROM webhook_events WHERE id = %s",
            (event_id,),
        )
        return cur.fetchone()
