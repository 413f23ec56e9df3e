import json
import shutil
import threading

import psycopg2
import pytest

from execution import migrate as migrate_cmd
from execution.lib.db import connect
from execution.lib.errors import MigrationError, PendingMigrations
from execution.migrate import MIGRATIONS_DIR, migrate, migration_status, read_migration_files, require_migrated


@pytest.fixture
def scratch(make_database):
    c = connect(make_database())
    yield c
    c.close()


def _tables(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in cur.fetchall()}


def test_applies_from_zero_then_is_idempotent(scratch):
    first = migrate(scratch)
    assert first.applied == [f.path.name for f in read_migration_files()]
    assert {"organizations", "agents", "channels", "contacts", "conversations", "messages",
            "webhook_events", "outbox", "audit_log", "schema_migrations"} <= _tables(scratch)
    second = migrate(scratch)
    assert second.applied == [] and second.already_applied == len(first.applied)
    with scratch.cursor() as cur:
        cur.execute("SELECT version, checksum, applied_at FROM schema_migrations")
        rows = cur.fetchall()
    assert len(rows) == len(first.applied)
    assert all(len(r["checksum"]) == 64 and r["applied_at"] is not None for r in rows)


def test_refuses_an_edited_applied_file(scratch, tmp_path):
    mig = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mig)
    migrate(scratch, migrations_dir=mig)
    first = sorted(mig.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after it ran\n")
    with pytest.raises(MigrationError, match=first.name):
        migrate(scratch, migrations_dir=mig)
    with pytest.raises(MigrationError):
        require_migrated(scratch, migrations_dir=mig)
    assert [s.state for s in migration_status(scratch, migrations_dir=mig)][0] == "changed"


def test_a_failing_file_leaves_no_trace(scratch, tmp_path):
    mig = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mig)
    (mig / "900_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    with pytest.raises(psycopg2.errors.UndefinedFunction):
        migrate(scratch, migrations_dir=mig)
    assert "half_done" not in _tables(scratch)
    states = {s.version: s.state for s in migration_status(scratch, migrations_dir=mig)}
    assert states["900"] == "pending" and states["001"] == "applied"


def test_pending_migrations_are_reported(scratch):
    with pytest.raises(PendingMigrations, match="001_initial_schema"):
        require_migrated(scratch)
    dry = migrate(scratch, dry_run=True)
    assert dry.would_apply == [f.path.name for f in read_migration_files()] and dry.applied == []
    assert "organizations" not in _tables(scratch)


def test_badly_named_file_is_refused(tmp_path):
    (tmp_path / "1-init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_snake_case"):
        read_migration_files(tmp_path)


def test_concurrent_runs_apply_each_file_once(make_database):
    dsn = make_database()
    results, errors = [], []
    barrier = threading.Barrier(3)

    def run():
        c = connect(dsn)
        try:
            barrier.wait()
            results.append(migrate(c).applied)
        except Exception as exc:  # surfaced through the assertion below
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, len(read_migration_files())]


def test_cli_list_and_dry_run(resources, capsys):
    assert migrate_cmd.main(["--list"], resources=resources) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["version"], s["state"]) for s in listed][0] == ("001", "applied")
    assert migrate_cmd.main(["--dry-run"], resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["applied"] == []
