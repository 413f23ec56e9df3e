"""Backups: `execution.backup` dumps a live database and restores it into a new one that serves the same
conversations, with nothing left to migrate; it never overwrites a file or restores over tables, and the
password stays off every command line and out of what it prints."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from execution.backup import libpq_target, pg_tool
from execution.lib import tenant_store
from execution.lib.db import Database, connect
from execution.lib.errors import ConfigError
from execution.lib.security import encrypt_secret, hash_token
from execution.list_conversations import viewer_for
from execution.migrate import migrate
from execution.show_conversation import show_conversation
from execution.worker import run_once
from tests.conftest import INSTANCE_ID, SNAPSHOT, WEBHOOK_TOKEN, load_fixture, post_green_api

ROOT = Path(__file__).resolve().parents[1]
SECRET = "backup-test-secret-key-0123456789abcdef01"
EMAIL = "agent@backup.example"
CHAT = "201000000077@c.us"


def command(*args: str, database_url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """A command as an operator runs it, on `database_url` (the environment wins over any .env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_"))}
    env.update(APP_ENV="development", DATABASE_URL=database_url, APP_SECRET_KEY=SECRET,
               DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="INFO")
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def fill(db: Database) -> int:
    """An agency, an agent, a Green API number and one chat: two customer messages and a reply typed on the phone."""
    with db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="backup", name="Backup Homes")
        agent = tenant_store.upsert_agent(c, organization_id=org["id"], email=EMAIL, name="Agent",
                                          password_hash=None, phone="15550000000")
        tenant_store.upsert_channel(
            c, organization_id=org["id"], agent_id=agent["id"], provider="green_api", instance_id=INSTANCE_ID,
            api_url="http://127.0.0.1:9", api_token_encrypted=encrypt_secret(SECRET, "api-token-not-real"),
            webhook_token_hash=hash_token(WEBHOOK_TOKEN))
    for n, (fixture, text) in enumerate([("greenapi_incoming_text.json", "Is the villa in Sheikh Zayed free?"),
                                         ("greenapi_incoming_text.json", "And the price?"),
                                         ("greenapi_outgoing_from_phone.json", "Let me call you")]):
        body = load_fixture(fixture)
        body["idMessage"] = f"BACKUP{n:010d}"
        body["senderData"]["chatId"] = CHAT
        if "incoming" in fixture:
            body["senderData"]["sender"] = CHAT
        body["messageData"]["textMessageData"]["textMessage"] = text
        assert post_green_api(db, body).event_id
    assert run_once(db, snapshot=SNAPSHOT).done == 3
    with db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT id FROM conversations WHERE chat_id = %s", (CHAT,))
        return cur.fetchone()["id"]


def thread(dsn: str, conversation_id: int) -> dict:
    db = Database(dsn, minconn=1, maxconn=2, wait_s=5).open()
    try:
        with db.connection() as c:
            viewer = viewer_for(c, EMAIL)
        return show_conversation(db, viewer=viewer, conversation_id=conversation_id)
    finally:
        db.close()


@pytest.mark.slow
def test_a_backup_restored_into_a_new_database_serves_the_same_conversation(make_database, tmp_path):
    source = make_database()
    conn = connect(source)
    try:
        migrate(conn)
    finally:
        conn.close()
    db = Database(source, minconn=1, maxconn=4, wait_s=5).open()
    try:
        conversation_id = fill(db)
    finally:
        db.close()
    before = thread(source, conversation_id)
    assert [m["author"] for m in before["messages"] if m["author"] in ("customer", "agent")] == [
        "customer", "customer", "agent"]

    dump = tmp_path / "assistant.dump"
    made = command("execution.backup", "--output", str(dump), database_url=source, tmp_path=tmp_path)
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert report["file"] == str(dump) and report["bytes"] == dump.stat().st_size > 0
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    conn = connect(source)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")
            assert report["tables"] == cur.fetchone()["n"] > 10
    finally:
        conn.close()
    assert "APP_SECRET_KEY" in report["reminder"]
    assert source not in made.stdout + made.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []     # no partial file left

    again = command("execution.backup", "--output", str(dump), database_url=source, tmp_path=tmp_path)
    assert again.returncode != 0 and "exists" in json.loads(again.stderr.splitlines()[-1])["message"]

    target = make_database()
    restored = command("execution.backup", "--restore", str(dump), "--database-url", target,
                       database_url=source, tmp_path=tmp_path)
    assert restored.returncode == 0, restored.stderr
    outcome = json.loads(restored.stdout)
    assert outcome["tables"] == report["tables"] and outcome["migrations_pending"] == []

    assert thread(target, conversation_id) == before
    listed = command("execution.migrate", "--list", database_url=target, tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    states = json.loads(listed.stdout)
    assert states and {s["state"] for s in states} == {"applied"}

    over = command("execution.backup", "--restore", str(dump), "--database-url", target,
                   database_url=source, tmp_path=tmp_path)
    assert over.returncode != 0
    assert "already has" in json.loads(over.stderr.splitlines()[-1])["message"]
    assert thread(target, conversation_id) == before


def test_the_password_goes_to_the_environment_never_to_the_command_line():
    conninfo, env = libpq_target("postgresql://app:s3cr%40t@db.internal:5433/assistant?sslmode=require")
    assert env == {"PGPASSWORD": "s3cr@t"}
    assert "s3cr" not in conninfo
    assert {"host=db.internal", "port=5433", "user=app", "dbname=assistant", "sslmode=require"} <= set(conninfo.split())
    assert libpq_target("postgresql://postgres@127.0.0.1/x") == ("user=postgres dbname=x host=127.0.0.1", {})


def test_a_tool_older_than_the_server_is_refused_with_how_to_get_one():
    with pytest.raises(ConfigError, match=r"pg_dump 99 or newer .* postgresql-client-99"):
        pg_tool("pg_dump", server_major=99)
