"""An operator's and an SOP maintainer's findings: each test failed before its fix.

Setting up a real agency, a worker that cannot run, upgrades under running processes, migrations that
stay backward compatible, and the SOP edit loop (versions and hashes in /health, every apply and
refusal logged and audited, the file's own line numbers, JSON errors, validate a copy, --watch).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution import manage_organizations, seed_demo, validate_directives
from execution import migrate as migrate_cmd
from execution.check_health import check_health
from execution.lib import ops_store
from execution.lib.directives import DIRECTIVES_ROOT, DirectivesInvalid, DirectiveStore, load_directives
from execution.migrate import MIGRATIONS_DIR, read_migration_files, require_migrated
from execution.lib.errors import PendingMigrations
from tests.processes import ROOT, redis_url, service_env

TOGGLE = "core/ai_human_toggle_logic.md"


@pytest.fixture
def sops(tmp_path, monkeypatch):
    """A copy of the directives, in force through DIRECTIVES_DIR (as an operator keeping SOPs elsewhere)."""
    root = tmp_path / "directives"
    shutil.copytree(DIRECTIVES_ROOT, root)
    monkeypatch.setenv("DIRECTIVES_DIR", str(root))
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    # A later mtime even on a coarse clock, so a store polling the folder sees the change.
    stat = path.stat()
    import os
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


# --- 1. a real agency -------------------------------------------------------------------------------

def test_an_agency_is_created_listed_and_renamed_without_seed_demo(resources, capsys):
    assert manage_organizations.main(["create", "--slug", "delta-homes", "--name", "Delta  Homes"],
                                     resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Delta Homes"
    # The same slug twice is refused with the reason, not merged silently.
    assert manage_organizations.main(["create", "--slug", "delta-homes", "--name", "Other"], resources=resources) == 1
    assert "exists already" in capsys.readouterr().err
    assert manage_organizations.main(["create", "--slug", "Bad Slug", "--name", "x"], resources=resources) == 1
    assert "slug" in capsys.readouterr().err
    assert manage_organizations.main(["rename", "--slug", "delta-homes", "--name", "Delta Realty"],
                                     resources=resources) == 0
    capsys.readouterr()
    assert manage_organizations.main(["list"], resources=resources) == 0
    listed = {o["slug"]: o for o in json.loads(capsys.readouterr().out)}
    assert listed["delta-homes"]["name"] == "Delta Realty" and listed["delta-homes"]["agents"] == 0
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT action FROM audit_log WHERE entity = 'organization' ORDER BY id")
        assert [r["action"] for r in cur.fetchall()] == ["create_organization", "rename_organization"]


def test_seed_demo_is_refused_in_production(resources, capsys):
    production = dataclasses.replace(resources, settings=dataclasses.replace(resources.settings, app_env="production"))
    assert seed_demo.main([], resources=production) == 77
    assert "refused in production" in capsys.readouterr().err
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM organizations")
        assert cur.fetchone()["n"] == 0


# --- 3. nothing half-alive -----------------------------------------------------------------------------

def test_a_worker_started_with_an_invalid_sop_exits_with_the_reason(servers, test_dsn, redis_db_index, settings,
                                                                  sops, tmp_path):
    _edit(sops / TOGGLE, "phone_reply_takes_over: true", "phone_reply_takes_over: maybe")
    env = service_env(database_url=test_dsn, redis_url=redis_url(servers, redis_db_index),
                      secret_key=settings.secret_key, data_dir=tmp_path / "data", run_worker=False,
                      DIRECTIVES_DIR=str(sops))
    done = subprocess.run([sys.executable, "-m", "execution.worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["error"] == "DirectivesInvalid"
    assert "core/ai_human_toggle_logic.md: phone_reply_takes_over" in error["message"]
    assert "started" not in done.stderr and "Traceback" not in done.stderr


def test_a_running_store_keeps_the_last_valid_sops_and_says_why(sops, caplog):
    store = DirectiveStore(reload_interval_s=0)
    before = store.current()
    caplog.set_level(logging.INFO, logger="execution.lib.directives")
    _edit(sops / TOGGLE, "phone_reply_takes_over: true", "phone_reply_takes_over: maybe")
    assert store.current() is before and store.errors
    assert any("refused" in r.getMessage() and "phone_reply_takes_over" in r.getMessage() for r in caplog.records)


# --- 5. upgrades under running processes ------------------------------------------------------------

def test_a_new_migration_file_does_not_take_running_processes_out_of_rotation(resources, tmp_path, monkeypatch):
    import main

    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    monkeypatch.setattr(migrate_cmd, "MIGRATIONS_DIR", migrations)
    app = main.create_app(resources, run_worker=False)
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok"
        (migrations / "999_next_release.sql").write_text("ALTER TABLE agents ADD COLUMN next_release_note text;\n")
        # A `git pull` put the next release's file on disk: this process keeps serving.
        answer = client.get("/health")
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
        # A process started now would refuse (it must be migrated first), and says so.
        with resources.db.connection() as c:
            with pytest.raises(PendingMigrations, match="999_next_release"):
                require_migrated(c)
        fresh = check_health(resources.db, resources.redis, database_kind="test", redis_kind="test")
        assert fresh.status == "down" and fresh.migrations.pending == ["999_next_release"]
        # The operator migrates: the old process still serves (the change is additive) ...
        with resources.db.connection() as c:
            migrate_cmd.migrate(c)
        try:
            assert client.get("/health").json()["status"] == "ok"
            # ... and one started now is ready.
            with resources.db.connection() as c:
                require_migrated(c)
        finally:
            with resources.db.transaction() as c, c.cursor() as cur:
                cur.execute("ALTER TABLE agents DROP COLUMN next_release_note")
                cur.execute("DELETE FROM schema_migrations WHERE version = '999'")


# Statements that break the previous release's code while it still runs (rolling restarts).
_BREAKING = re.compile(
    r"\b(DROP\s+TABLE|DROP\s+COLUMN|RENAME\s+COLUMN|RENAME\s+TO|ALTER\s+COLUMN\s+\S+\s+(?:SET\s+DATA\s+)?TYPE"
    r"|ALTER\s+TABLE\s+\S+\s+DROP\s+(?!CONSTRAINT)\w+)", re.IGNORECASE)
_MARK = re.compile(r"--\s*breaking-change:\s*\S.{10,}", re.IGNORECASE)


def breaking_statements(sql: str) -> list[str]:
    """Each statement that drops or renames a table or column, or changes a type, with no marked reason."""
    found = []
    for statement in sql.split(";"):
        code = "\n".join(line.split("--", 1)[0] for line in statement.splitlines())
        if _BREAKING.search(code) and not _MARK.search(statement):
            found.append(" ".join(code.split())[:120])
    return found


def test_the_compatibility_check_finds_what_it_should():
    assert breaking_statements("ALTER TABLE agents DROP COLUMN phone;")
    assert breaking_statements("ALTER TABLE agents RENAME COLUMN phone TO mobile;")
    assert breaking_statements("DROP TABLE followups;")
    assert breaking_statements("ALTER TABLE agents ALTER COLUMN phone TYPE bigint USING phone::bigint;")
    assert breaking_statements("ALTER TABLE outbox RENAME TO sends;")
    assert not breaking_statements("ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;")
    assert not breaking_statements("ALTER TABLE agents ADD COLUMN note text; -- DROP COLUMN later")
    assert not breaking_statements(
        "-- breaking-change: the column was never read by any release since 009\nALTER TABLE agents DROP COLUMN x;")


def test_every_migration_stays_backward_compatible_for_one_release():
    """A running release must survive the next one's migration (SETUP.md, upgrades): no drop or rename
    of a table or column, no type change, unless a `-- breaking-change: <why>` comment says why."""
    problems = {f.path.name: breaking_statements(f.path.read_text(encoding="utf-8")) for f in read_migration_files()}
    assert {name: found for name, found in problems.items() if found} == {}


# --- 6. the SOP edit loop ------------------------------------------------------------------------

def test_health_shows_each_sops_version_and_hash_and_an_edit_without_a_bump_shows(resources, sops, caplog):
    import main

    store = DirectiveStore(reload_interval_s=0, on_change=ops_store.directive_recorder(resources.db, actor="test"))
    app = main.create_app(resources, run_worker=False, directives=store)
    caplog.set_level(logging.INFO, logger="execution.lib.directives")
    with TestClient(app) as client:
        before = client.get("/health").json()["directives"]
        assert before["versions"]["ai_human_toggle_logic"] == 3
        assert re.fullmatch(r"[0-9a-f]{16}", before["hashes"]["ai_human_toggle_logic"])
        _edit(sops / TOGGLE, "takeover_cancels_followups: true", "takeover_cancels_followups: false")
        after = client.get("/health").json()["directives"]
    assert after["versions"]["ai_human_toggle_logic"] == 3
    assert after["hashes"]["ai_human_toggle_logic"] != before["hashes"]["ai_human_toggle_logic"]
    assert {k: v for k, v in after["hashes"].items() if v != before["hashes"][k]}.keys() == {"ai_human_toggle_logic"}
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("directive applied: ai_human_toggle_logic version 3 hash "
                            + after["hashes"]["ai_human_toggle_logic"]) for m in messages)
    assert any("without raising its version" in m for m in messages)
    assert not any("takeover_cancels_followups: false" in m for m in messages)   # never the content


def test_every_apply_and_refusal_is_audited_once_however_many_processes_see_it(resources, sops):
    record = ops_store.directive_recorder(resources.db, actor="test")
    stores = [DirectiveStore(reload_interval_s=0, on_change=record) for _ in range(3)]   # three processes
    _edit(sops / TOGGLE, "version: 3", "version: 4")
    for s in stores:
        assert s.current().versions()["ai_human_toggle_logic"] == 4
    _edit(sops / TOGGLE, "brief_max_chars:", "brief_max_chars: [")
    for s in stores:
        s.current()
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT action, details FROM audit_log WHERE entity = 'directive' ORDER BY id")
        rows = cur.fetchall()
    assert [r["action"] for r in rows] == ["directive_applied", "directive_refused"]
    applied = rows[0]["details"]["items"]
    assert [(i["id"], i["version"], i["previous_version"], i["version_raised"]) for i in applied] == [
        ("ai_human_toggle_logic", 4, 3, True)]
    assert rows[1]["details"]["items"][0]["file"] == TOGGLE


def test_a_yaml_error_names_the_files_own_line(sops):
    lines = (sops / TOGGLE).read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("inbox_reply_takes_over:"))
    _edit(sops / TOGGLE, "inbox_reply_takes_over: true", "inbox_reply_takes_over: [unclosed")
    with pytest.raises(DirectivesInvalid) as caught:
        load_directives()
    reason = caught.value.problems[0].reason
    # The parser notices at the next line; both lines it names are the file's own.
    assert f"line {number + 1}," in reason, reason
    assert "\n" not in reason


@pytest.mark.parametrize("command,argv", [
    ("check_escalation", ["--text", "hello"]),
    ("check_health", []),
    ("worker", ["--once"]),
    ("answer_due", []),
    ("resume_conversations", []),
    ("set_mode_human", ["--conversation", "1"]),
    ("reconcile_outbox", []),
])
def test_every_command_reports_an_invalid_sop_as_json(command, argv, resources, sops, capsys):
    import importlib

    _edit(sops / TOGGLE, "phone_reply_takes_over: true", "phone_reply_takes_over: maybe")
    module = importlib.import_module(f"execution.{command}")
    kwargs = {} if command == "check_escalation" else {"resources": resources}
    code = module.main(argv, **kwargs)
    out = capsys.readouterr()
    assert code != 0
    text = out.err.strip() or out.out.strip()
    report = json.loads(text if text.startswith("{") else text.splitlines()[-1])
    said = json.dumps(report)
    assert "phone_reply_takes_over" in said and "Traceback" not in out.err
    assert "DirectivesInvalid" in said or report["directives"]["ok"] is False


def test_validate_a_copy_then_save_as_the_readme_says(sops, tmp_path, capsys):
    copy = tmp_path / "edited"
    shutil.copytree(sops, copy)
    _edit(copy / TOGGLE, "takeover_cancels_followups: true", "takeover_cancels_followups: false")
    assert validate_directives.main(["--root", str(copy)]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert [d["id"] for d in report["differences"]] == ["ai_human_toggle_logic"]
    assert "changed without raising its version" in out.err
    _edit(copy / TOGGLE, "version: 3", "version: 4")
    assert validate_directives.main(["--root", str(copy)]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    _edit(copy / TOGGLE, "version: 4", "version: four")
    assert validate_directives.main(["--root", str(copy)]) == 1
    assert "core/ai_human_toggle_logic.md: version:" in capsys.readouterr().err


def test_watch_prints_one_line_per_change(sops):
    watcher = subprocess.Popen([sys.executable, "-m", "execution.validate_directives", "--watch", "--interval", "0.2"],
                               cwd=ROOT, env={**__import__("os").environ, "DIRECTIVES_DIR": str(sops)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(watcher.stdout.readline())
        assert first["outcome"] == "loaded" and first["versions"]["ai_human_toggle_logic"] == 3
        _edit(sops / TOGGLE, "version: 3", "version: 4")
        second = json.loads(watcher.stdout.readline())
        assert second["outcome"] == "applied"
        assert [(c["id"], c["version"]) for c in second["changed"]] == [("ai_human_toggle_logic", 4)]
        _edit(sops / TOGGLE, "version: 4", "version: four")
        third = json.loads(watcher.stdout.readline())
        assert third["valid"] is False and third["problems"][0]["field"] == "version"
    finally:
        watcher.terminate()
        watcher.wait(10)
