"""Seed the demo organization, its agent and a sandbox channel; print the login.

Writes: organizations, agents, channels, audit_log (upserts, safe to re-run).
Guard: natural keys (organization slug, agent email, provider + instance id).
The password comes from DEMO_AGENT_PASSWORD (quickstart generates one into .env).

usage: python -m execution.seed_demo
"""

from __future__ import annotations

from dataclasses import dataclass

from execution.lib import cli, store
from execution.lib.db import Connection, transaction
from execution.lib.errors import ConfigError, NotFound
from execution.lib.security import hash_password, hash_token, sandbox_webhook_token

DEMO_ORGANIZATION = ("nile-homes", "Nile Homes (demo)")
DEMO_AGENT_NAME = "Sara (demo)"
SANDBOX_INSTANCE_ID = "1100000000"  # numeric like a Green API idInstance; no such real instance


@dataclass(frozen=True)
class DemoSeed:
    organization_id: int
    agent_id: int
    channel_id: int
    login_email: str
    login_password: str
    app_url: str = "http://127.0.0.1:8000"


def seed_demo(
    conn: Connection, *, email: str, password: str, secret_key: str, base_url: str = "http://127.0.0.1:8000"
) -> DemoSeed:
    if not password:
        raise ConfigError("DEMO_AGENT_PASSWORD is empty; run `python -m execution.init_env` or set it in .env")
    with transaction(conn):
        org = store.upsert_organization(conn, slug=DEMO_ORGANIZATION[0], name=DEMO_ORGANIZATION[1])
        agent = store.upsert_agent(
            conn,
            organization_id=org["id"],
            email=email,
            name=DEMO_AGENT_NAME,
            password_hash=hash_password(password),
        )
        if agent is None:
            raise NotFound(f"{email} already belongs to another organization")
        channel = store.upsert_channel(
            conn,
            organization_id=org["id"],
            agent_id=agent["id"],
            provider="sandbox",
            instance_id=SANDBOX_INSTANCE_ID,
            webhook_token_hash=hash_token(sandbox_webhook_token(secret_key, SANDBOX_INSTANCE_ID)),
        )
        store.insert_audit(
            conn,
            organization_id=org["id"],
            actor="cli",
            action="seed_demo",
            entity="agent",
            entity_id=agent["id"],
        )
    return DemoSeed(org["id"], agent["id"], channel["id"], agent["email"], password, base_url)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        s = res.settings
        with res.db.connection() as conn:
            seed = seed_demo(
                conn,
                email=s.demo_agent_email,
                password=s.demo_agent_password or "",
                secret_key=s.secret_key,
                base_url=f"http://{s.host}:{s.port}",
            )
        # The login is printed on purpose: this is the operator's own demo set-up.
        return seed

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
