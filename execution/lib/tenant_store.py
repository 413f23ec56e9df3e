"""SQL for tenants: organizations, agents, channels and the audit log."""

from __future__ import annotations

from psycopg2.extras import Json

from execution.lib.db import Connection


def upsert_organization(conn: Connection, *, slug: str, name: str) -> dict:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO organizations (slug, name) VALUES (%s, %s)
            ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name
            RETURNING id, slug, name
            """,
            (slug, name),
        )
        return cur.fetchone()


def upsert_agent(
    conn: Connection,
    *,
    organization_id: int,
    email: str,
    name: str,
    password_hash: str | None,
    phone: str | None = None,
    language: str = "en",
    gender: str | None = None,
) -> dict:
    """Create the agent, or update its name, phone, language and gender; a password is set only if given."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO agents (organization_id, email, name, password_hash, phone, language, gender)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (email) DO UPDATE
               SET name = EXCLUDED.name,
                   phone = EXCLUDED.phone,
                   language = EXCLUDED.language,
                   gender = EXCLUDED.gender,
                   password_hash = COALESCE(EXCLUDED.password_hash, agents.password_hash)
            WHERE agents.organization_id = EXCLUDED.organization_id
            RETURNING id, organization_id, email, name
            """,
            (organization_id, email.lower(), name, password_hash, phone, language, gender),
        )
        return cur.fetchone()


def upsert_channel(
    conn: Connection,
    *,
    organization_id: int,
    agent_id: int,
    provider: str,
    instance_id: str,
    api_url: str | None = None,
    api_token_encrypted: str | None = None,
    webhook_token_hash: str | None = None,
    webhook_secret_encrypted: str | None = None,
) -> dict:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO channels (organization_id, agent_id, provider, instance_id, api_url,
                                  api_token_encrypted, webhook_token_hash, webhook_secret_encrypted)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (provider, instance_id) DO UPDATE
               SET api_url = EXCLUDED.api_url,
                   api_token_encrypted = COALESCE(EXCLUDED.api_token_encrypted, channels.api_token_encrypted),
                   webhook_token_hash = COALESCE(EXCLUDED.webhook_token_hash, channels.webhook_token_hash),
                   webhook_secret_encrypted = COALESCE(EXCLUDED.webhook_secret_encrypted,
                                                       channels.webhook_secret_encrypted)
            WHERE channels.organization_id = EXCLUDED.organization_id
            RETURNING id, organization_id, agent_id, provider, instance_id
            """,
            (organization_id, agent_id, provider, instance_id, api_url, api_token_encrypted, webhook_token_hash,
             webhook_secret_encrypted),
        )
        return cur.fetchone()


def insert_audit(
    conn: Connection,
    *,
    organization_id: int | None,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    details: dict | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO audit_log (organization_id, actor, action, entity, entity_id, details)
            VALUES (%s, %s, %s, %s, %s, %s)
            """,
            (organization_id, actor, action, entity, entity_id, Json(details or {})),
        )


def channel_by_instance(conn: Connection, *, providers: tuple[str, ...], instance_id: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, organization_id, agent_id, provider, instance_id, api_url, api_token_encrypted,
                   webhook_token_hash, webhook_secret_encrypted, status
              FROM channels
             WHERE instance_id = %s AND provider = ANY(%s) AND status = 'active'
            """,
            (instance_id, list(providers)),
        )
        return cur.fetchone()


def channel_by_webhook_token(conn: Connection, *, providers: tuple[str, ...], token_hash: str) -> dict | None:
    """The channel a provider's verification handshake names by the hash of its token."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, provider, instance_id FROM channels WHERE provider = ANY(%s) AND webhook_token_hash = %s "
            "AND status = 'active' LIMIT 1",
            (list(providers), token_hash),
        )
        return cur.fetchone()


def get_channel(conn: Connection, *, channel_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, organization_id, agent_id, provider, instance_id, api_url, api_token_encrypted, status
              FROM channels WHERE id = %s
            """,
            (channel_id,),
        )
        return cur.fetchone()


def set_channel_state(conn: Connection, *, channel_id: int, state: str | None) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE channels SET provider_state = %s, provider_state_at = now() WHERE id = %s",
            (state, channel_id),
        )


def agent_by_email(conn: Connection, *, email: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SELECT id, organization_id, email, name FROM agents WHERE email = %s", (email.lower(),))
        return cur.fetchone()


def agent_profile(conn: Connection, *, agent_id: int) -> dict | None:
    """What replies and alerts need about an agent: name, own phone, language, agency name, and what
    scheduling needs (time zone, hours, own viewing rules), so a reply reads the agent once."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.id, a.organization_id, a.email, a.name, a.phone, a.language, a.gender, a.instructions,
                   a.persona, a.arabic_digits, a.timezone, a.working_hours, a.viewing_rules, o.name AS agency
              FROM agents a JOIN organizations o ON o.id = a.organization_id
             WHERE a.id = %s
            """,
            (agent_id,),
        )
        return cur.fetchone()


def sandbox_channels(conn: Connection) -> list[dict]:
    """Every sandbox channel with its agent and agency: the simulator's list of agents to chat with."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.id AS channel_id, c.instance_id, a.name AS agent_name, o.name AS agency
              FROM channels c JOIN agents a ON a.id = c.agent_id JOIN organizations o ON o.id = c.organization_id
             WHERE c.provider = 'sandbox' AND c.status = 'active'
             ORDER BY c.id
            """
        )
        return cur.fetchall()


def record_send_health(conn: Connection, *, channel_id: int, ok: bool, error: str | None = None) -> None:
    """Consecutive send failures of a channel (reset by a success): the channel's health."""
    with conn.cursor() as cur:
        if ok:
            cur.execute("UPDATE channels SET send_failures = 0, last_sent_at = now() WHERE id = %s", (channel_id,))
        else:
            cur.execute(
                "UPDATE channels SET send_failures = send_failures + 1, last_send_error = %s, "
                "last_send_error_at = now() WHERE id = %s",
                ((error or "")[:300], channel_id),
            )


def other_organization_names(conn: Connection, *, organization_id: int) -> list[str]:
    """Every other organization's name: a reply must never speak for, or about, another agency."""
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM organizations WHERE id <> %s", (organization_id,))
        return [r["name"] for r in cur.fetchall()]
