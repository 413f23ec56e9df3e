"""PostgreSQL access: a bounded thread-safe pool and the `transaction()` context.

Connections run in autocommit mode; `transaction(conn)` opens an explicit
transaction, and a `transaction(conn)` inside another becomes a savepoint, so a
function can always wrap its own unit of work and still compose with callers.
"""

from __future__ import annotations

import itertools
import logging
import select
import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

from execution.lib import cpu_gate
from execution.lib.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE
_INTRANS = psycopg2.extensions.TRANSACTION_STATUS_INTRANS
_savepoint_ids = itertools.count(1)
_PLAIN = psycopg2.extensions.cursor     # BEGIN / COMMIT / savepoints return no rows: no dict cursor needed

Connection = psycopg2.extensions.connection


def connect(dsn: str, *, statement_timeout_ms: int = 5000, connect_timeout_s: int = 5) -> Connection:
    """Open one autocommit connection with dict rows and a statement timeout."""
    try:
        conn = psycopg2.connect(dsn, **_connect_kwargs(statement_timeout_ms, connect_timeout_s))
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
    conn.autocommit = True
    return conn


def _connect_kwargs(statement_timeout_ms: int, connect_timeout_s: int) -> dict:
    return {
        "connect_timeout": connect_timeout_s,
        "options": f"-c statement_timeout={int(statement_timeout_ms)} -c TimeZone=UTC",
        "application_name": "wa-assistant",
        "cursor_factory": psycopg2.extras.RealDictCursor,
    }


def _peer_closed(conn: Connection) -> bool:
    """An idle connection whose socket is readable was closed by the server (nothing else is pending on it).

    A zero-timeout select: no round trip, so a pooled connection a restart killed is never handed out.
    """
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.Error):
        return True
    if not readable:
        return False
    try:
        conn.poll()                     # a notice or notification is fine; EOF raises
    except psycopg2.Error:
        return True
    return bool(conn.closed)


def _first_line(exc: BaseException) -> str:
    # psycopg2 messages can include the host; keep the reason, never the DSN.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Database:
    """A ThreadedConnectionPool that waits (bounded) for a free connection instead of failing."""

    def __init__(
        self,
        dsn: str,
        *,
        minconn: int = 1,
        maxconn: int = 20,
        wait_s: float = 5.0,
        statement_timeout_ms: int = 5000,
        connect_timeout_s: int = 5,
    ) -> None:
        self._dsn = dsn
        self._minconn = minconn
        self._maxconn = maxconn
        self._wait_s = wait_s
        self._kwargs = _connect_kwargs(statement_timeout_ms, connect_timeout_s)
        self._slots = threading.BoundedSemaphore(maxconn)
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None

    @property
    def dsn(self) -> str:
        return self._dsn

    def open(self) -> "Database":
        try:
            pool = psycopg2.pool.ThreadedConnectionPool(self._minconn, self._maxconn, self._dsn, **self._kwargs)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
        # psycopg2's pool closes every returned connection above `minconn`, so a busy process would
        # reconnect on almost every request. Open `minconn` now, but keep up to `maxconn` once opened.
        pool.minconn = self._maxconn
        self._pool = pool
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.closeall()
            self._pool = None

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow a connection; a broken one is discarded, an open transaction rolled back."""
        if self._pool is None:
            raise DatabaseUnavailable("database pool is not open")
        if not self._slots.acquire(blocking=False):
            with cpu_gate.waiting():          # a reply thread waiting for a connection lets another one work
                if not self._slots.acquire(timeout=self._wait_s):
                    raise DatabaseUnavailable(f"no free database connection within {self._wait_s:g}s")
        conn = None
        try:
            conn = self._checkout()
            yield conn
        finally:
            if conn is not None:
                self._checkin(conn)
            self._slots.release()

    def _checkout(self) -> Connection:
        assert self._pool is not None
        for _ in range(self._maxconn + 1):   # after a server restart every idle connection may be dead
            try:
                conn = self._pool.getconn()
            except psycopg2.OperationalError as exc:
                raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
            if not conn.closed and not _peer_closed(conn):
                conn.autocommit = True
                return conn
            self._pool.putconn(conn, close=True)
        raise DatabaseUnavailable("cannot obtain a live database connection")

    def _checkin(self, conn: Connection) -> None:
        assert self._pool is not None
        broken = bool(conn.closed)
        if not broken and conn.info.transaction_status != _IDLE:
            try:
                with conn.cursor(cursor_factory=_PLAIN) as cur:
                    cur.execute("ROLLBACK")
            except psycopg2.Error:
                broken = True
        self._pool.putconn(conn, close=broken)
        if broken:
            # One dead connection means the server dropped them all (a restart, a failover): the idle
            # ones would each fail one request before anyone knew. Close them now; new ones are opened
            # on demand.
            self._close_idle()

    def _close_idle(self) -> None:
        pool = self._pool
        if pool is None:
            return
        with pool._lock:      # psycopg2's own lock and idle list: no public way to drop only the idle ones
            idle, pool._pool[:] = list(pool._pool), []
        for conn in idle:
            try:
                conn.close()
            except psycopg2.Error:
                pass

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Borrow a connection and run one transaction on it."""
        with self.connection() as conn, transaction(conn):
            yield conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """Outermost block commits or rolls back; a nested block is a savepoint."""
    status = conn.info.transaction_status
    if status == _IDLE:
        with conn.cursor(cursor_factory=_PLAIN) as cur:
            cur.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            _quiet(conn, "ROLLBACK")
            raise
        with conn.cursor(cursor_factory=_PLAIN) as cur:
            cur.execute("COMMIT")
    elif status == _INTRANS:
        name = f"sp_{next(_savepoint_ids)}"
        with conn.cursor(cursor_factory=_PLAIN) as cur:
            cur.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            _quiet(conn, f"ROLLBACK TO SAVEPOINT {name}")
            raise
        with conn.cursor(cursor_factory=_PLAIN) as cur:
            cur.execute(f"RELEASE SAVEPOINT {name}")
    else:
        raise psycopg2.InterfaceError("connection is in a failed transaction; roll it back first")


def _quiet(conn: Connection, statement: str) -> None:
    if conn.closed:
        return
    try:
        with conn.cursor(cursor_factory=_PLAIN) as cur:
            cur.execute(statement)
    except psycopg2.Error:
        log.warning("could not %s on a failing connection", statement.split()[0].lower())
