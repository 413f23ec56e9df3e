"""The production steps of SETUP.md, as an operator runs them, on this machine's PostgreSQL and Redis.

The project is copied to an install directory (as if cloned to /opt/wa-assistant) with a venv that
borrows this one's packages, so the `.env` the steps write lands there, never in the working tree. Every
command is a real subprocess run from that directory with no configuration in its environment: the
`.env` decides, except for RUN_WORKER=false on the web processes, which the environment sets as the
systemd unit does (deploy/systemd/wa-assistant-web.service). The database is a fresh one, migrated by
the steps; Redis is the test's DB index; the WhatsApp provider is the fake Green API. Then the upgrade
as SETUP.md orders it: the next release's migration on disk, a reload too early (refused, the old
processes keep serving), the migration, a reload (processes replaced one at a time, /health never
fails), a worker restarted, the next customer answered; then a stop, as systemd stops the units.

Also: `execution.serve` exits 3 with a JSON reason when the schema is behind, when the database cannot
be reached, and when its web processes fail their own start-up.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil
import psycopg2
import psycopg2.extras
import pytest
import requests
from dotenv import dotenv_values

from tests.conftest import load_fixture
from tests.processes import free_port, redis_url
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.race]

ROOT = Path(__file__).resolve().parents[1]
# Every variable the app reads is in .env.example: none of them may leak in from the test's environment.
CONFIG_KEYS = tuple(dotenv_values(ROOT / ".env.example"))
EMAIL = "sara@prod-homes.example"
CHAT = "201001112233@c.us"


def install_copy(dst: Path) -> Path:
    """The project as a clone has it, with a `.venv` whose packages are this one's (nothing is downloaded)."""
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(
        ".venv", ".git", "data", ".env", ".pytest_cache", "__pycache__", "*.pyc", "tests", "bench"))
    real, venv = ROOT / ".venv", dst / ".venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copy(real / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(real / "lib")
    (venv / "bin" / "python").symlink_to(os.path.realpath(real / "bin" / "python"))
    return dst


def operator_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_")) and k not in CONFIG_KEYS}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def edit_env_file(path: Path, **values: str) -> None:
    """What an operator does in an editor: set these variables, keep every other line."""
    lines, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        key = line.partition("=")[0].strip()
        if key in values and not line.lstrip().startswith("#"):
            line = f"{key}={values[key]}"
            seen.add(key)
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def step(install: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> dict | list:
    """One operator command from the install directory; its JSON output."""
    done = subprocess.run([str(install / ".venv/bin/python"), "-m", *args], cwd=install, env=env or operator_env(),
                          input=stdin, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(args[:2])} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


@contextmanager
def started(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A long-running process in its own session; whatever happens, nothing of it outlives the block."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue


def wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    def ready() -> bool:
        assert proc.poll() is None, f"serve exited {proc.returncode}:\n{log.read_text()[-4000:]}"
        try:
            return requests.get(f"{base}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(ready, timeout=timeout, step=0.2)


def web_processes(serve_pid: int) -> set[int]:
    """The uvicorn processes serve runs (not multiprocessing's resource tracker)."""
    found = set()
    for child in psutil.Process(serve_pid).children():
        try:
            if "multiprocessing.spawn" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


class HealthWatch(threading.Thread):
    """Asks /health every 50 ms until stopped; every answer that is not 200 (or no answer) is kept."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.failures, self.asked = base, [], 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.asked += 1
            try:
                status = requests.get(f"{self.base}/health", timeout=5).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            if status != 200:
                self.failures.append(status)

    def stop(self) -> "HealthWatch":
        self.done.set()
        self.join(10)
        return self


def rows(dsn: str, sql: str) -> list[dict]:
    conn = psycopg2.connect(dsn, cursor_factory=psycopg2.extras.RealDictCursor)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def customer_message(instance_id: str, msg_id: str) -> dict:
    body = load_fixture("greenapi_incoming_text.json")
    body["instanceData"]["idInstance"] = int(instance_id)
    body["idMessage"] = msg_id
    body["timestamp"] = int(time.time())
    body["senderData"]["chatId"] = body["senderData"]["sender"] = CHAT
    return body


def test_the_production_steps_answer_once_survive_an_upgrade_and_stop_cleanly(
        servers, make_database, redis_db_index, fake_green_api, tmp_path):
    install = install_copy(tmp_path / "opt" / "wa-assistant")
    database_url = make_database()
    health_token = secrets.token_urlsafe(24)

    written = step(install, "execution.init_env", "--production", "--database-url", database_url,
                   "--redis-url", redis_url(servers, redis_db_index))
    env_file = install / ".env"
    assert written["written"] is True and (env_file.stat().st_mode & 0o777) == 0o600
    assert sorted(written["generated"]) == ["APP_SECRET_KEY", "HEALTH_TOKEN"]
    edit_env_file(env_file, HEALTH_TOKEN=health_token)      # the test needs to know it

    assert step(install, "execution.migrate")["applied"]
    assert step(install, "execution.manage_organizations", "create", "--slug", "prod-homes",
                "--name", "Prod Homes")["slug"] == "prod-homes"
    agent = step(install, "execution.manage_agents", "create", "--org", "prod-homes", "--org-name", "Prod Homes",
                 "--email", EMAIL, "--name", "Sara", "--phone", "201001234567", "--gender", "female",
                 "--language", "en", "--generate-password")
    assert len(agent["password"]) >= 10
    channel = step(install, "execution.register_channel", "--agent", EMAIL, "--instance", fake_green_api.instance_id,
                   "--api-url", fake_green_api.url, "--public-url", "https://assistant.example.com",
                   "--api-token", "-", stdin=fake_green_api.token + "\n")
    assert channel["set_settings"]["webhookUrl"] == "https://assistant.example.com/webhooks/green-api"

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    python = str(install / ".venv/bin/python")
    serve_cmd = [python, "-m", "execution.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                 "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    serve_log = tmp_path / "serve.log"
    logs = [serve_log]

    def sends() -> list[dict]:
        return [c for c in fake_green_api.calls("sendMessage") if c["body"].get("chatId") == CHAT]

    def answered(n: int) -> None:
        """The customer's n-th message is answered, everything has settled, and nothing more was sent."""
        try:
            wait_for(lambda: len(sends()) >= n, timeout=60, step=0.2)
        except AssertionError:
            raise AssertionError("no reply sent\n" + "\n".join(
                f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)) from None
        wait_for(lambda: not rows(database_url, "SELECT 1 FROM webhook_events WHERE status <> 'done' UNION ALL "
                                                "SELECT 1 FROM outbox WHERE status NOT IN ('sent', 'failed') UNION ALL "
                                                "SELECT 1 FROM conversations WHERE reply_due_at IS NOT NULL"),
                 timeout=30, step=0.2)
        assert len(sends()) == n, sends()

    def post(msg_id: str) -> None:
        answer = requests.post(f"{base}/webhooks/green-api", json=customer_message(fake_green_api.instance_id, msg_id),
                               headers={"Authorization": f"Bearer {channel['webhook_token']}"}, timeout=10)
        assert answer.status_code == 200, answer.text

    with started(serve_cmd, cwd=install, env=operator_env(RUN_WORKER="false"), log=serve_log) as web:
        logs.append(tmp_path / "worker-1.log")
        with started([python, "-m", "execution.worker"], cwd=install, env=operator_env(), log=logs[-1]) as worker:
            wait_healthy(base, web, serve_log)
            post("PRODPATH00000000000001")
            answered(1)

            shown = requests.get(f"{base}/health", timeout=5, headers={"Authorization": f"Bearer {health_token}"})
            assert shown.status_code == 200 and shown.json()["status"] == "ok", shown.text
            assert shown.json()["details_hidden"] is False and shown.json()["backlog"] is not None
            assert requests.get(f"{base}/health", timeout=5).json()["details_hidden"] is True
            # RUN_WORKER=false from the environment beat the .env's RUN_WORKER=true: only the worker runs loops.
            beating = {int(r["name"].split(":")[-2]) for r in rows(database_url, "SELECT name FROM loop_heartbeats")}
            assert beating == {worker.pid}, beating

            # The next release brings a migration. Its file on disk does not take the running processes out of
            # rotation; a reload before migrating starts no process on the old schema and keeps the old ones;
            # after the migration a reload replaces them one at a time, with no failed request.
            (install / "migrations" / "999_next_release.sql").write_text(
                "ALTER TABLE agents ADD COLUMN next_release_note text;\n")
            watch = HealthWatch(base)
            watch.start()
            before = web_processes(web.pid)
            assert len(before) == 2
            os.kill(web.pid, signal.SIGHUP)                 # systemctl reload wa-assistant-web
            wait_for(lambda: "aborting the restart" in serve_log.read_text(), timeout=60, step=0.2)
            assert web_processes(web.pid) == before and web.poll() is None
            assert step(install, "execution.migrate")["applied"] == ["999_next_release.sql"]
            os.kill(web.pid, signal.SIGHUP)
            # One at a time: each new process starts and trains its decider (serve waits up to 60 s for
            # it; uvicorn's own 5 s aborted this reload in loaded CI runs), then the old one drains.
            try:
                wait_for(lambda: len(web_processes(web.pid) - before) == 2, timeout=150, step=0.2)
            except AssertionError:
                raise AssertionError(f"processes {before} -> {web_processes(web.pid)}; serve log:\n"
                                     f"{serve_log.read_text()[-4000:]}") from None
            assert watch.stop().failures == [] and watch.asked >= 5, watch.failures
            assert requests.get(f"{base}/health", timeout=5).json()["status"] == "ok"

            os.kill(worker.pid, signal.SIGINT)              # the worker unit's KillSignal: a restart, one by one
            assert worker.wait(30) == 0, logs[-1].read_text()[-3000:]
        logs.append(tmp_path / "worker-2.log")
        with started([python, "-m", "execution.worker"], cwd=install, env=operator_env(), log=logs[-1]) as worker:
            post("PRODPATH00000000000002")
            answered(2)
            os.kill(web.pid, signal.SIGTERM)                # systemd's stop (KillMode=mixed: the main process)
            assert web.wait(30) == 0, serve_log.read_text()[-3000:]
            os.kill(worker.pid, signal.SIGINT)
            assert worker.wait(30) == 0, logs[-1].read_text()[-3000:]
    assert not (install / "data").exists(), "an embedded server was started"


def serve_env(database_url: str, **extra: str) -> dict[str, str]:
    """Production settings in the environment (every other variable as .env.example has it)."""
    env = operator_env(**{k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()})
    env.update(APP_ENV="production", DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0",
               APP_SECRET_KEY=secrets.token_urlsafe(36), RUN_WORKER="false", DB_CONNECT_TIMEOUT_S="2", **extra)
    return env


def serve_refusal(env: dict[str, str]) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "execution.serve", "--host", "127.0.0.1", "--port", str(free_port()),
                           "--workers", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return done.returncode, json.loads(last) if last.startswith("{") else {"stderr": done.stderr[-2000:]}


def test_serve_refuses_a_database_whose_schema_is_behind(make_database):
    code, reason = serve_refusal(serve_env(make_database()))
    assert code == 3, reason
    assert reason["error"] == "PendingMigrations" and "python -m execution.migrate" in reason["message"]


def test_serve_refuses_when_the_database_cannot_be_reached():
    code, reason = serve_refusal(serve_env(f"postgresql://postgres@127.0.0.1:{free_port()}/assistant"))
    assert code == 3, reason
    assert reason["error"] == "DatabaseUnavailable", reason
    assert "postgresql://" not in reason["message"]


@pytest.mark.parametrize("workers", [2, 1])
def test_serve_exits_3_when_its_web_processes_fail_their_start_up(workers, tmp_path):
    program = ("import sys; from execution.serve import serve; "
               f"sys.exit(serve(host='127.0.0.1', port={free_port()}, workers={workers}, "
               "app='tests.app_failing_startup:app'))")
    log = tmp_path / "serve.log"
    with started([sys.executable, "-c", program], cwd=ROOT, env=operator_env(), log=log) as proc:
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve kept running:\n{log.read_text()[-3000:]}") from None
    assert code == 3, log.read_text()[-3000:]
    assert "this app refuses to start" in log.read_text()


@contextmanager
def slow_app(tmp_path: Path) -> Iterator[tuple]:
    """execution.serve running tests/app_slow_startup.py: (process, the file that sets how slow the next
    process starts, the log, a function giving the serving process's pid)."""
    port = free_port()
    slow = tmp_path / "slow"
    program = ("import sys; from execution.serve import serve; "
               f"sys.exit(serve(host='127.0.0.1', port={port}, workers=1, app='tests.app_slow_startup:app'))")
    log = tmp_path / "serve.log"
    with started([sys.executable, "-c", program], cwd=ROOT, env=operator_env(SLOW_STARTUP_FILE=str(slow)),
                 log=log) as proc:
        def pid():
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["pid"]
            except requests.RequestException:
                return None

        yield proc, slow, log, pid


def test_a_reload_waits_for_a_new_process_that_is_slow_to_start(tmp_path):
    """uvicorn gives a new process 5 s to be ready before it aborts a reload and keeps the old one; the
    real app trains its escalation decider at start-up, which on a busy machine takes longer."""
    with slow_app(tmp_path) as (proc, slow, log, pid):
        first = wait_for(pid, timeout=60, step=0.2)
        slow.write_text("8")                            # the next process takes 8 s to be ready
        os.kill(proc.pid, signal.SIGHUP)
        try:
            wait_for(lambda: pid() not in (None, first), timeout=60, step=0.2)
        except AssertionError:
            raise AssertionError(f"not replaced:\n{log.read_text()[-3000:]}") from None
        assert "aborting the restart" not in log.read_text()


def test_a_stop_during_a_reload_is_not_held_up_by_the_reload(tmp_path):
    """SIGTERM while a new process is still starting: the reload ends at once and every process stops,
    well inside a service manager's stop timeout (before, the supervisor handled the signal only after
    the new process was ready: here 20 s)."""
    with slow_app(tmp_path) as (proc, slow, log, pid):
        first = wait_for(pid, timeout=60, step=0.2)
        slow.write_text("20")                           # the next process takes 20 s to be ready
        before = len(psutil.Process(proc.pid).children())
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: len(psutil.Process(proc.pid).children()) > before, timeout=30, step=0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(1)
        assert pid() == first                           # the old process still serves during the reload
        stopped_at = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 10 s after SIGTERM:\n{log.read_text()[-3000:]}") from None
        took = time.monotonic() - stopped_at
        assert code == 0, log.read_text()[-3000:]
        assert took < 8, took
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, [p.pid for p in alive]
