"""Seed two demo agencies, each with an agent, a sandbox channel and its listings; print the logins.

Writes: organizations, agents, channels, properties, audit_log (upserts, safe to re-run).
Guard: natural keys (organization slug, agent email, provider + instance id, agent + reference).
Listings come from execution/demo_data/ (the project's own copy of the demo files).
The password comes from DEMO_AGENT_PASSWORD (quickstart generates one into .env); the first
agent's email from DEMO_AGENT_EMAIL.

Refused with APP_ENV=production: demo agencies with sandbox numbers have no place on a live
service (set up a real agency with `manage_organizations` and `manage_agents`).

usage: python -m execution.seed_demo
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from execution.lib import cli, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import ConfigError, Forbidden, InvalidData, NotFound
from execution.lib.listing_import import import_listings
from execution.lib.security import hash_password, hash_token, sandbox_webhook_token

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"


@dataclass(frozen=True)
class DemoAgency:
    slug: str
    organization: str
    email: str | None          # None: DEMO_AGENT_EMAIL
    agent_name: str            # as customers see it in replies: no "(demo)" there
    gender: str                # Arabic replies agree with it
    instance_id: str           # numeric like a Green API idInstance; no such real instance
    listings: str


DEMO_AGENCIES = (
    DemoAgency("nile-homes", "Nile Homes", None, "Sara", "female", "1100000000", "listings_nile_homes.csv"),
    DemoAgency("delta-realty", "Delta Realty", "omar@delta-realty.example", "Omar", "male", "1100000001",
               "listings_delta_realty.csv"),
)
SANDBOX_INSTANCE_ID = DEMO_AGENCIES[0].instance_id


@dataclass(frozen=True)
class DemoAgent:
    organization_id: int
    agent_id: int
    channel_id: int
    email: str
    listings: int


@dataclass(frozen=True)
class DemoSeed:
    agents: tuple[DemoAgent, ...]
    login_email: str
    login_password: str
    app_url: str = "http://127.0.0.1:8000"


def seed_demo(
    conn: Connection, *, email: str, password: str, secret_key: str, base_url: str = "http://127.0.0.1:8000"
) -> DemoSeed:
    if not password:
        raise ConfigError("DEMO_AGENT_PASSWORD is empty; run `python -m execution.init_env` or set it in .env")
    with transaction(conn):
        seeded = tuple(
            _seed_agency(conn, agency, email=agency.email or email, password=password, secret_key=secret_key)
            for agency in DEMO_AGENCIES
        )
    return DemoSeed(seeded, seeded[0].email, password, base_url)


def _seed_agency(conn: Connection, agency: DemoAgency, *, email: str, password: str, secret_key: str) -> DemoAgent:
    org = tenant_store.upsert_organization(conn, slug=agency.slug, name=agency.organization)
    agent = tenant_store.upsert_agent(
        conn,
        organization_id=org["id"],
        email=email,
        name=agency.agent_name,
        password_hash=hash_password(password),
        gender=agency.gender,
    )
    if agent is None:
        raise NotFound(f"{email} already belongs to another organization")
    channel = tenant_store.upsert_channel(
        conn,
        organization_id=org["id"],
        agent_id=agent["id"],
        provider="sandbox",
        instance_id=agency.instance_id,
        webhook_token_hash=hash_token(sandbox_webhook_token(secret_key, agency.instance_id)),
    )
    tenant_store.insert_audit(
        conn,
        organization_id=org["id"],
        actor="cli",
        action="seed_demo",
        entity="agent",
        entity_id=agent["id"],
    )
    owner = {**agent, "organization_id": org["id"]}
    # The demo agent's email may be changed in .env; the file's rows belong to whoever it is.
    report = import_listings(conn, path=DEMO_DATA / agency.listings, agent=owner, reassign=True, actor="seed_demo")
    if report.errors:
        raise InvalidData(f"demo listings {agency.listings} did not import", problems=list(report.errors))
    return DemoAgent(org["id"], agent["id"], channel["id"], agent["email"], report.rows)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        s = res.settings
        if s.is_production:
            raise Forbidden("seed_demo makes demo agencies with sandbox numbers and is refused in production; "
                            "create the agency with `python -m execution.manage_organizations create` and its "
                            "agents with `python -m execution.manage_agents create`")
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
