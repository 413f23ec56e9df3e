"""SQL for viewings, the agent's blocked periods and calendar token. Every query is scoped to an agent."""

from __future__ import annotations

from datetime import datetime

import psycopg2
from psycopg2.extras import Json

from execution.lib.db import Connection

ACTIVE = ("booked", "confirmed")

_COLUMNS = """v.id, v.organization_id, v.agent_id, v.conversation_id, v.property_id, v.starts_at, v.ends_at,
              v.blocked_until, v.status, v.booked_by, v.language, v.moved_to, v.cancel_reason, v.feedback,
              v.feedback_at, v.feedback_asked_at, v.created_at, v.updated_at,
              p.reference, p.project_name, p.district, p.district_ar, p.city, p.latitude, p.longitude"""


class SlotTaken(Exception):
    """The agent has another viewing overlapping this one (the exclusion constraint said so)."""


def viewing_agent(conn: Connection, *, agent_id: int) -> dict | None:
    """What scheduling needs about an agent: time zone, hours, own rules."""
    with conn.cursor() as cur:
        cur.execute("SELECT id, organization_id, name, phone, language, gender, timezone, working_hours, "
                    "viewing_rules, arabic_digits FROM agents WHERE id = %s", (agent_id,))
        return cur.fetchone()


def busy(conn: Connection, *, agent_id: int, start: datetime, end: datetime,
         except_viewing: int | None = None) -> tuple[list, list]:
    """(booked, blocked): the agent's active viewings as (starts_at, blocked_until) and blocked periods."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT starts_at, blocked_until FROM viewings
             WHERE agent_id = %s AND status IN ('booked', 'confirmed') AND blocked_until > %s AND starts_at < %s
               AND id IS DISTINCT FROM %s
            """,
            (agent_id, start, end, except_viewing),
        )
        booked = [(r["starts_at"], r["blocked_until"]) for r in cur.fetchall()]
        cur.execute(
            """
            SELECT lower(during) AS s, upper(during) AS e FROM agent_blocked_periods
             WHERE agent_id = %s AND during && tstzrange(%s, %s)
            """,
            (agent_id, start, end),
        )
        blocked = [(r["s"], r["e"]) for r in cur.fetchall()]
    return booked, blocked


def insert_viewing(conn: Connection, *, organization_id: int, agent_id: int, conversation_id: int,
                   property_id: int, starts_at: datetime, ends_at: datetime, blocked_until: datetime,
                   booked_by: str, language: str, idempotency_key: str) -> tuple[dict, bool]:
    """(the viewing, created?) — the same key returns the first booking; an overlap raises SlotTaken."""
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT book_viewing")
        try:
            cur.execute(
                """
                INSERT INTO viewings (organization_id, agent_id, conversation_id, property_id, starts_at, ends_at,
                                      blocked_until, booked_by, language, idempotency_key)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id
                """,
                (organization_id, agent_id, conversation_id, property_id, starts_at, ends_at, blocked_until,
                 booked_by, language, idempotency_key),
            )
        except psycopg2.errors.ExclusionViolation:
            cur.execute("ROLLBACK TO SAVEPOINT book_viewing")
            raise SlotTaken() from None
        row = cur.fetchone()
        cur.execute("RELEASE SAVEPOINT book_viewing")
        if row is None:
            cur.execute("SELECT id FROM viewings WHERE idempotency_key = %s AND agent_id = %s",
                        (idempotency_key, agent_id))
            found = cur.fetchone()
            if found is None:
                raise SlotTaken()   # the key belongs to another agent's booking: never shown here
            return get_viewing(conn, agent_id=agent_id, viewing_id=found["id"]), False
        return get_viewing(conn, agent_id=agent_id, viewing_id=row["id"]), True


def get_viewing(conn: Connection, *, agent_id: int, viewing_id: int, for_update: bool = False) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {_COLUMNS} FROM viewings v JOIN properties p ON p.id = v.property_id
             WHERE v.id = %s AND v.agent_id = %s {"FOR UPDATE OF v" if for_update else ""}
            """,
            (viewing_id, agent_id),
        )
        return cur.fetchone()


def set_status(conn: Connection, *, viewing_id: int, status: str, cancel_reason: str | None = None,
               moved_to: int | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE viewings SET status = %s, cancel_reason = coalesce(%s, cancel_reason),
                   moved_to = coalesce(%s, moved_to), updated_at = now()
             WHERE id = %s
            """,
            (status, cancel_reason, moved_to, viewing_id),
        )


def viewings_for_conversation(conn: Connection, *, agent_id: int, conversation_id: int,
                              active_only: bool = False) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {_COLUMNS} FROM viewings v JOIN properties p ON p.id = v.property_id
             WHERE v.agent_id = %s AND v.conversation_id = %s
               {"AND v.status IN ('booked', 'confirmed')" if active_only else ""}
             ORDER BY v.starts_at
            """,
            (agent_id, conversation_id),
        )
        return cur.fetchall()


def viewings_for_agent(conn: Connection, *, agent_id: int, since: datetime, limit: int = 500) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT {_COLUMNS}, ct.display_name AS customer_name
              FROM viewings v JOIN properties p ON p.id = v.property_id
              JOIN conversations c ON c.id = v.conversation_id
              LEFT JOIN contacts ct ON ct.id = c.contact_id
             WHERE v.agent_id = %s AND v.ends_at >= %s
             ORDER BY v.starts_at LIMIT %s
            """,
            (agent_id, since, limit),
        )
        return cur.fetchall()


def awaiting_feedback(conn: Connection, *, conversation_id: int, within_hours: int, first_id: int) -> dict | None:
    """The viewing whose feedback question was asked here, within the window, and not answered yet by a
    customer message before `first_id` (so only the first reply after the question counts)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT v.id, v.agent_id FROM viewings v
             WHERE v.conversation_id = %s AND v.feedback_asked_at IS NOT NULL AND v.feedback IS NULL
               AND v.feedback_asked_at > now() - make_interval(hours => %s)
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = v.conversation_id
                                  AND m.author = 'customer' AND m.created_at > v.feedback_asked_at AND m.id < %s)
             ORDER BY v.feedback_asked_at DESC LIMIT 1
            """,
            (conversation_id, within_hours, first_id),
        )
        return cur.fetchone()


def mark_feedback_asked(conn: Connection, *, viewing_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE viewings SET feedback_asked_at = coalesce(feedback_asked_at, now()), "
                    "status = CASE WHEN status IN ('booked', 'confirmed') THEN 'done' ELSE status END, "
                    "updated_at = now() WHERE id = %s", (viewing_id,))


def store_feedback(conn: Connection, *, viewing_id: int, text: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("UPDATE viewings SET feedback = %s, feedback_at = now(), updated_at = now() "
                    "WHERE id = %s AND feedback IS NULL", (text[:2000], viewing_id))
        return cur.rowcount == 1


def set_calendar_token(conn: Connection, *, agent_id: int, token_hash: str | None) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE agents SET calendar_token_hash = %s WHERE id = %s", (token_hash, agent_id))


def agent_by_calendar_token(conn: Connection, *, token_hash: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT id, name, timezone FROM agents WHERE calendar_token_hash = %s AND disabled_at IS NULL",
                    (token_hash,))
        return cur.fetchone()


def add_blocked_period(conn: Connection, *, organization_id: int, agent_id: int, start: datetime, end: datetime,
                       reason: str | None) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO agent_blocked_periods (organization_id, agent_id, during, reason) "
            "VALUES (%s, %s, tstzrange(%s, %s), %s) RETURNING id",
            (organization_id, agent_id, start, end, reason),
        )
        return cur.fetchone()["id"]


def set_viewing_rules(conn: Connection, *, agent_id: int, rules: dict | None) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE agents SET viewing_rules = %s WHERE id = %s", (Json(rules) if rules else None, agent_id))


def last_ai_generation(conn: Connection, *, conversation_id: int) -> dict | None:
    """How the assistant's last reply here was made (its references, the viewing times it offered)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT generation FROM messages
             WHERE conversation_id = %s AND author = 'ai' AND direction = 'outbound'
               AND delivery_status IS DISTINCT FROM 'suppressed' AND message_type = 'text'
             ORDER BY id DESC LIMIT 1
            """,
            (conversation_id,),
        )
        row = cur.fetchone()
    return (row or {}).get("generation") or None


def zone(agent: dict):
    from zoneinfo import ZoneInfo

    return ZoneInfo(agent.get("timezone") or "Africa/Cairo")


def owner(conn: Connection, *, viewing_id: int) -> dict | None:
    """Whose viewing this is (agent and time zone), for commands given only its id."""
    with conn.cursor() as cur:
        cur.execute("SELECT v.agent_id, a.timezone FROM viewings v JOIN agents a ON a.id = v.agent_id "
                    "WHERE v.id = %s", (viewing_id,))
        return cur.fetchone()


def listing_windows(conn: Connection, *, property_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT viewing_windows FROM properties WHERE id = %s", (property_id,))
        row = cur.fetchone()
    return row["viewing_windows"] if row else None


def set_listing_windows(conn: Connection, *, agent_id: int, reference: str, windows: dict | None) -> str | None:
    """The listing's viewing windows (None: any working hour); its reference, or None when not the agent's."""
    with conn.cursor() as cur:
        cur.execute("UPDATE properties SET viewing_windows = %s, updated_at = now() "
                    "WHERE agent_id = %s AND upper(reference) = upper(%s) RETURNING reference",
                    (Json(windows) if windows is not None else None, agent_id, reference))
        row = cur.fetchone()
    return row["reference"] if row else None
