"""SQL for webhook_events: durable intake, claims with leases, and outcomes."""

from __future__ import annotations

import psycopg2
from psycopg2 import errorcodes
from psycopg2.extras import Json, execute_values

from execution.lib.db import Connection


def insert_events(conn: Connection, *, rows: list[tuple]) -> dict[tuple[str, str], int]:
    """Store many webhooks in one statement; returns {(provider, event_key): id} of the new ones.

    rows: (provider, channel_id, event_key, event_type, payload, chat_id). Keys already stored, or
    repeated within the batch, are skipped by ON CONFLICT DO NOTHING. One row the database refuses
    fails the statement: the caller stores the batch row by row to find it (`store_events`).
    """
    if not rows:
        return {}
    with conn.cursor() as cur:
        returned = execute_values(
            cur,
            """
            INSERT INTO webhook_events (provider, channel_id, event_key, event_type, payload, chat_id)
            VALUES %s
            ON CONFLICT (provider, event_key) DO NOTHING
            RETURNING id, provider, event_key
            """,
            [(p, c, k, t, Json(payload), chat) for p, c, k, t, payload, chat in rows],
            page_size=len(rows),
            fetch=True,
        )
    return {(r["provider"], r["event_key"]): r["id"] for r in returned}


# SQLSTATE classes that are one row's fault, not the database's: data exceptions (jsonb refusing
# NUL or a lone surrogate), integrity violations, program limits (an index entry too large).
_ROW_ERROR_CLASSES = ("22", "23", "54")


def row_refusal(exc: BaseException) -> str | None:
    """Why the database refused a row, as a code and its name (never the data); None if the failure is not the row's."""
    if isinstance(exc, psycopg2.Error):
        code = exc.pgcode or ""
        if code[:2] not in _ROW_ERROR_CLASSES:
            return None
        try:
            return f"{code} {errorcodes.lookup(code).lower()}"
        except KeyError:
            return code
    if isinstance(exc, (ValueError, TypeError)):   # psycopg2 could not adapt a value
        return f"unadaptable value ({type(exc).__name__})"
    return None


def insert_events_row_by_row(
    conn: Connection, *, rows: list[tuple]
) -> tuple[dict[tuple[str, str], int], dict[int, str]]:
    """Store each row in its own statement, so one refused row fails only itself.

    Returns ({(provider, event_key): id} of the new rows, {row index: reason} of the refused ones).
    `conn` must be in autocommit (each INSERT its own transaction): a failed statement inside a
    transaction would abort the rows after it. Any failure that is not a row's own is raised.
    """
    ids: dict[tuple[str, str], int] = {}
    refused: dict[int, str] = {}
    for index, row in enumerate(rows):
        try:
            ids.update(insert_events(conn, rows=[row]))
        except (psycopg2.Error, ValueError, TypeError) as exc:
            reason = row_refusal(exc)
            if reason is None:
                raise
            refused[index] = reason
    return ids, refused


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
            RETURNING e.id, e.provider, e.channel_id, e.chat_id, e.event_type, e.payload, e.attempts,
                      e.claim_token::text
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
