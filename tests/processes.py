"""Real processes for fault tests: the app under uvicorn and `python -m execution.worker`, pointed at the
test database and the test's Redis DB index, each in its own session so a SIGKILL reaches all of it.

`Processes` is a context manager: whatever happens in the test, every process it started is ended
when the block exits (SIGINT, then SIGKILL of the whole process group).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_url(servers, index: int) -> str:
    """A REDIS_URL a subprocess can use for the run's Redis DB `index` (a local server or the embedded socket)."""
    if servers.redis_url:
        parts = urlsplit(servers.redis_url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "db"])
        if parts.scheme == "unix":
            return urlunsplit(parts._replace(query=urlencode([*parse_qsl(query), ("db", str(index))])))
        return urlunsplit(parts._replace(path=f"/{index}", query=query))
    return f"unix://{servers.redis_socket}?db={index}"


def service_env(*, database_url: str, redis_url: str, secret_key: str, data_dir: Path, run_worker: bool,
                port: int | None = None, **extra: str) -> dict[str, str]:
    """The environment of the app / a worker on the test database and Redis (wins over a developer's .env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_"))}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "APP_ENV": "test",
        "APP_SECRET_KEY": secret_key,
        "ANTHROPIC_API_KEY": "",          # the offline responder: replies without a network
        "RUN_WORKER": "true" if run_worker else "false",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    if port is not None:
        env["PORT"] = str(port)
    env.update(extra)
    return env


class Proc:
    """One started process, its log file and its name."""

    def __init__(self, popen: subprocess.Popen, name: str, log_path: Path) -> None:
        self.popen, self.name, self.log_path = popen, name, log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class Processes:
    """Start processes in their own sessions and end every one of them at exit, on failure too."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.started: list[Proc] = []

    def start(self, cmd: list[str], *, env: dict[str, str], name: str) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.started) + 1}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        proc = Proc(popen, name, log_path)
        self.started.append(proc)
        return proc

    @staticmethod
    def _signal_group(proc: Proc, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)      # the session leader's pid is its group id
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self, proc: Proc, timeout: float = 10.0) -> None:
        """SIGKILL the process and its group: no shutdown code runs at all."""
        self._signal_group(proc, signal.SIGKILL)
        proc.popen.wait(timeout)

    def stop(self, proc: Proc, timeout: float = 15.0) -> None:
        """Ctrl-C, then SIGKILL if it does not finish in time."""
        if proc.alive():
            self._signal_group(proc, signal.SIGINT)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(proc, signal.SIGKILL)   # anything left in its group
        try:
            proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AppServer:
    """The real web app (`uvicorn main:app`) on a free port; restartable after a kill on the same port."""

    def __init__(self, processes: Processes, env: dict[str, str], *, port: int | None = None) -> None:
        self.processes = processes
        self.port = port or free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None

    def start(self, timeout: float = 60.0) -> "AppServer":
        cmd = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(self.port),
               "--no-access-log"]
        self.proc = self.processes.start(cmd, env=self.env, name="app")
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise AssertionError(f"the app exited with {self.proc.popen.returncode} before /health answered:\n"
                                     f"{self.proc.log_tail()}")
            try:
                if requests.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"/health was not 200 within {timeout:.0f} s:\n{self.proc.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None:
            self.processes.kill(self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.processes.stop(self.proc)

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_tail(3000)}" for p in self.processes.started if p.name == "app")
