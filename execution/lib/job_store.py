"""SQL for jobs due at a time: enqueue (in the caller's transaction), claim with a lease, finish, retry.

A job's `key` is unique: enqueueing the same key twice is one job, and the handler's side effects
use the key as their idempotency key, so a job re-run after a crash acts once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg2.extras import Json

from execution.lib.db import Connection


def enqueue(conn: Connection, *, organization_id: int, kind: str, key: str, run_at: datetime,
            payload: dict | None = None, max_attempts: int = 5) -> int | None:
    """The job's id, or None when a job with this key exists already (it is not changed)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO jobs (organization_id, kind, key, payload, run_at, max_attempts)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (key) DO NOTHING
            RETURNING id
            """,
            (organization_id, kind, key, Json(payload or {}), run_at, max_attempts),
        )
        row = cur.fetchone()
        return row["id"] if row else None


def cancel_for_viewing(conn: Connection, *, organization_id: int, viewing_id: int, reason: str) -> int:
    """Cancel a viewing's pending reminders and feedback question (matched by payload, in its organization)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE jobs SET status = 'cancelled', outcome = %s, updated_at = now(), finished_at = now()
             WHERE status = 'pending' AND organization_id = %s AND kind IN ('viewing_reminder', 'viewing_feedback')
               AND (payload->>'viewing_id')::bigint = %s
            """,
            (reason[:200], organization_id, viewing_id),
        )
        return cur.rowcount


def claim(conn: Connection, *, batch: int, lease_s: float, kinds: tuple[str, ...] | None = None) -> list[dict]:
    """Up to `batch` due jobs (and any whose claimer's lease ran out), oldest first, leased to us."""
    token = str(uuid.uuid4())
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE jobs j SET status = 'running', claim_token = %s, attempts = j.attempts + 1,
                   lease_until = now() + make_interval(secs => %s), updated_at = now()
              FROM (SELECT id FROM jobs
                     WHERE ((status = 'pending' AND run_at <= now()) OR (status = 'running' AND lease_until < now()))
                       AND (%s::text[] IS NULL OR kind = ANY(%s::text[]))
                     ORDER BY run_at, id
                     LIMIT %s
                     FOR UPDATE SKIP LOCKED) due
             WHERE j.id = due.id
            RETURNING j.*
            """,
            (token, lease_s, list(kinds) if kinds else None, list(kinds) if kinds else None, batch),
        )
        return sorted(cur.fetchall(), key=lambda r: (r["run_at"], r["id"]))


def finish(conn: Connection, *, job_id: int, claim_token, status: str, outcome: str | None) -> bool:
    """Record the outcome, only while the claim is still ours (a lease taken over means another ran it)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE jobs SET status = %s, outcome = %s, lease_until = NULL, updated_at = now(), finished_at = now()
             WHERE id = %s AND claim_token = %s AND status = 'running'
            """,
            (status, (outcome or "")[:500] or None, job_id, str(claim_token)),
        )
        return cur.rowcount == 1


def retry_later(conn: Connection, *, job_id: int, claim_token, error: str, delay_s: float) -> str:
    """Back to pending after `delay_s`, or `failed` once its attempts are used up; returns the new status."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
                   run_at = CASE WHEN attempts >= max_attempts THEN run_at
                                 ELSE now() + make_interval(secs => %s) END,
                   finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                   last_error = %s, lease_until = NULL, updated_at = now()
             WHERE id = %s AND claim_token = %s AND status = 'running'
            RETURNING status
            """,
            (delay_s, error[:500], job_id, str(claim_token)),
        )
        row = cur.fetchone()
        return row["status"] if row else "lost"


def lock_claimed(conn: Connection, *, job_id: int, claim_token) -> dict | None:
    """Re-lock our claimed job inside the handler's transaction (None: the claim was taken over)."""
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM jobs WHERE id = %s AND claim_token = %s AND status = 'running' FOR UPDATE",
                    (job_id, str(claim_token)))
        return cur.fetchone()


def listing(conn: Connection, *, status: str, limit: int = 100, due_only: bool = False) -> list[dict]:
    """Jobs of one status, soonest first, with the conversation each is for (its viewing's or follow-up's)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT j.id, j.organization_id, j.kind, j.key, j.run_at, j.status, j.attempts, j.max_attempts,
                   j.outcome, j.last_error, j.updated_at,
                   coalesce(v.conversation_id, f.conversation_id) AS conversation_id, c.chat_id
              FROM jobs j
              LEFT JOIN viewings v ON j.payload ? 'viewing_id' AND v.id = (j.payload->>'viewing_id')::bigint
                                  AND v.organization_id = j.organization_id
              LEFT JOIN followups f ON j.payload ? 'followup_id' AND f.id = (j.payload->>'followup_id')::bigint
                                   AND f.organization_id = j.organization_id
              LEFT JOIN conversations c ON c.id = coalesce(v.conversation_id, f.conversation_id)
             WHERE j.status = %s {"AND j.run_at <= now()" if due_only else ""}
             ORDER BY j.run_at, j.id LIMIT %s
            """,
            (status, limit),
        )
        return cur.fetchall()


def retry_now(conn: Connection, *, job_id: int) -> dict | None:
    """A failed (or cancelled) job back to pending, due now, with fresh attempts."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE jobs SET status = 'pending', run_at = now(), attempts = 0, finished_at = NULL, updated_at = now()
             WHERE id = %s AND status IN ('failed', 'cancelled')
            RETURNING id, kind, key, status, run_at
            """,
            (job_id,),
        )
        return cur.fetchone()


def due_summary(conn: Connection) -> dict:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) FILTER (WHERE status = 'pending' AND run_at <= now()) AS jobs_due,
                   extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'pending' AND run_at <= now()))
                       ::float8 AS oldest_job_due_s,
                   count(*) FILTER (WHERE status = 'failed') AS jobs_failed
              FROM jobs WHERE status IN ('pending', 'failed')
            """
        )
        return dict(cur.fetchone())
