"""SQL for operators: how much work is waiting, and which channels cannot send."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from psycopg2.extras import Json

from execution.lib.db import Connection, Database, transaction


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


def beat(conn: Connection, *, name: str, loop: str) -> None:
    """This loop is alive now."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO loop_heartbeats (name, loop) VALUES (%s, %s)
            ON CONFLICT (name) DO UPDATE SET beat_at = now()
            """,
            (name, loop),
        )


def stop_beating(conn: Connection, *, name: str) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM loop_heartbeats WHERE name = %s", (name,))


def heartbeats(conn: Connection, *, fresh_s: float) -> dict:
    """Per loop kind: how many beat within `fresh_s`, and seconds since the latest beat."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT loop, count(*) FILTER (WHERE beat_at > now() - make_interval(secs => %s)) AS alive,
                   extract(epoch FROM now() - max(beat_at))::float8 AS last_beat_s
              FROM loop_heartbeats GROUP BY loop ORDER BY loop
            """,
            (fresh_s,),
        )
        return {r["loop"]: {"alive": r["alive"], "last_beat_s": r["last_beat_s"]} for r in cur.fetchall()}


def model_ok(conn: Connection, *, backend: str, model: str) -> None:
    """The backend answered. Written at most every few seconds while healthy (one row per backend)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO model_health (backend, model, last_ok_at) VALUES (%s, %s, now())
            ON CONFLICT (backend) DO UPDATE SET last_ok_at = now(), model = EXCLUDED.model, updated_at = now()
             WHERE model_health.last_ok_at IS NULL OR model_health.last_ok_at < now() - interval '5 seconds'
                OR model_health.last_error_at >= model_health.last_ok_at OR model_health.model <> EXCLUDED.model
            """,
            (backend, model),
        )


def model_error(conn: Connection, *, backend: str, model: str, kind: str, error: str) -> str:
    """The backend failed; returns the outage's key (the same for every failure since the last success)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO model_health (backend, model, last_error_at, last_error_kind, last_error)
            VALUES (%s, %s, now(), %s, %s)
            ON CONFLICT (backend) DO UPDATE SET last_error_at = now(), last_error_kind = EXCLUDED.last_error_kind,
                   last_error = EXCLUDED.last_error, model = EXCLUDED.model, updated_at = now()
            RETURNING extract(epoch FROM coalesce(last_ok_at, 'epoch'::timestamptz))::bigint AS since
            """,
            (backend, model, kind, error[:200]),
        )
        return f"{backend}:{cur.fetchone()['since']}"


def model_health(conn: Connection) -> list[dict]:
    """Per backend: the last success and the last error (kind and status), newest state first."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT backend, model, last_ok_at, last_error_at, last_error_kind, last_error,
                   coalesce(last_error_at > coalesce(last_ok_at, '-infinity'::timestamptz), false) AS failing
              FROM model_health ORDER BY updated_at DESC
            """
        )
        return [dict(r) for r in cur.fetchall()]


def model_status(conn: Connection) -> dict | None:
    """The backends used in the last day: `error` when the latest call was rejected (configuration),
    `unavailable` when it failed after the SDK's retries, else `ok`; None when no model has been used."""
    rows = [r for r in model_health(conn)
            if max(t for t in (r["last_ok_at"], r["last_error_at"]) if t is not None)
            > datetime.now(timezone.utc) - timedelta(days=1)]
    if not rows:
        return None
    failing = [r for r in rows if r["failing"]]
    status = ("error" if any(r["last_error_kind"] == "rejected" for r in failing)
              else "unavailable" if failing else "ok")
    return {"status": status, "backends": [
        {"backend": r["backend"], "model": r["model"], "failing": r["failing"], "last_error": r["last_error"],
         "last_error_kind": r["last_error_kind"],
         "last_ok_at": r["last_ok_at"] and r["last_ok_at"].isoformat(),
         "last_error_at": r["last_error_at"] and r["last_error_at"].isoformat()} for r in rows]}


def record_directive_change(conn: Connection, *, outcome: str, details: list[dict], actor: str) -> bool:
    """One audit_log row per directive edit applied or refused, however many processes saw it.

    `details`: the changes (id, version, hash) or the problems (file, field, reason); never content.
    Returns whether this call wrote the row (another process may have written it first).
    """
    key = json.dumps([outcome, details], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    with transaction(conn), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"directive:{digest}",))
        cur.execute(
            """
            INSERT INTO audit_log (organization_id, actor, action, entity, entity_id, details)
            SELECT NULL, %s, %s, 'directive', NULL, %s
             WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE entity = 'directive'
                                  AND details->>'key' = %s AND created_at > now() - interval '1 day')
            """,
            (actor, f"directive_{outcome}", Json({"key": digest, "items": details}), digest),
        )
        return cur.rowcount == 1


def directive_recorder(db: Database, *, actor: str):
    """The DirectiveStore's on_change for a process: each apply / refusal into the audit log."""
    def record(outcome: str, details: list[dict]) -> None:
        with db.connection() as conn:
            record_directive_change(conn, outcome=outcome, details=details, actor=actor)
    return record
