import json

import pytest
import redis as redis_lib
from fastapi.testclient import TestClient

from execution import check_health as health_cmd
from execution.lib.db import Database
from execution.lib.errors import PendingMigrations
from execution.lib.resources import Resources
from execution.migrate import read_migration_files
from main import create_app


def test_health_is_200_when_everything_is_ready(resources):
    with TestClient(create_app(resources)) as client:
        r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    assert body["database"]["ok"] and body["redis"]["ok"]
    applied = len(read_migration_files())
    assert body["migrations"] == {"ok": True, "applied": applied, "pending": [], "changed": [], "error": None}


def test_health_is_degraded_not_503_when_redis_is_down(resources):
    # Intake keeps storing webhooks without Redis: a load balancer must not pull the process.
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    broken = Resources(resources.settings, resources.db, dead, "test", "external")
    with TestClient(create_app(broken)) as client:
        r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["ok"] is False and r.json()["status"] == "degraded" and "redis" in r.json()["reason"]
    assert r.json()["redis"]["ok"] is False and r.json()["database"]["ok"] is True


def test_health_is_503_when_the_database_goes_away(resources, make_database):
    db = Database(make_database(), minconn=1, maxconn=2, wait_s=0.5).open()
    try:
        report = health_cmd.check_health(db, resources.redis, database_kind="t", redis_kind="t")
        assert report.ok is False and report.migrations.pending[0] == "001_initial_schema"
        db.close()
        report = health_cmd.check_health(db, resources.redis, database_kind="t", redis_kind="t")
        assert report.ok is False and report.database.ok is False and "pool is not open" in report.database.error
    finally:
        db.close()


def test_app_refuses_to_start_with_pending_migrations(resources, make_database):
    db = Database(make_database(), minconn=1, maxconn=2).open()
    try:
        app = create_app(Resources(resources.settings, db, resources.redis, "test", "test"))
        with pytest.raises(PendingMigrations):
            with TestClient(app):
                pass
    finally:
        db.close()


def test_cli_prints_the_report_and_exits_by_health(resources, capsys):
    assert health_cmd.main([], resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_cli_says_degraded_and_not_ok_when_it_exits_1_for_the_directives(resources, capsys, monkeypatch):
    from execution.lib.directives import DirectivesInvalid

    def invalid(*a, **k):
        raise DirectivesInvalid(["core/viewing_rules.md: working_hours: sun: the closing time must come after the "
                                 "opening time"])

    monkeypatch.setattr(health_cmd, "load_directives", invalid)
    assert health_cmd.main([], resources=resources) == 1
    out = json.loads(capsys.readouterr().out)
    assert (out["ok"], out["status"]) == (False, "degraded")
    assert out["directives"]["errors"] and "directive edit was refused" in out["reason"]


def test_health_shows_a_refused_directive_edit_while_the_old_version_serves(resources, tmp_path):
    import shutil

    from execution.lib.directives import DIRECTIVES_ROOT, DirectiveStore

    root = tmp_path / "directives"
    shutil.copytree(DIRECTIVES_ROOT, root)
    store = DirectiveStore(root, reload_interval_s=0)
    version = store.current()["message_sending_rules"].version
    with TestClient(create_app(resources, directives=store)) as client:
        body = client.get("/health").json()
        assert body["directives"]["ok"] is True and body["directives"]["versions"]["message_sending_rules"] == version
        path = root / "core" / "message_sending_rules.md"
        path.write_text(path.read_text().replace(f"version: {version}", f"version: {version + 1}")
                        .replace("burst_cap_s: 6", "burst_cap_s: x"))
        r = client.get("/health")
        assert r.status_code == 200   # still serving, with the previous version
        assert r.json()["directives"]["ok"] is False
        # one verdict: degraded, not ok, and why (before: "status": "ok", "ok": true beside the refusal)
        assert (r.json()["status"], r.json()["ok"]) == ("degraded", False)
        assert "directive edit was refused" in r.json()["reason"]
        assert r.json()["directives"]["errors"] == [
            "core/message_sending_rules.md: burst_cap_s: must be a number, got str"]
        assert store.current()["message_sending_rules"]["burst_cap_s"] == 6
        path.write_text(path.read_text().replace("burst_cap_s: x", "burst_cap_s: 4"))
        body = client.get("/health").json()
        assert (body["status"], body["ok"]) == ("ok", True)
        assert body["directives"] == {"ok": True, "versions": {**body["directives"]["versions"],
                                                                 "message_sending_rules": version + 1}, "errors": [],
                                      "hashes": body["directives"]["hashes"]}
        assert body["directives"]["hashes"]["message_sending_rules"] == store.current()["message_sending_rules"].checksum
        assert store.current()["message_sending_rules"]["burst_cap_s"] == 4
