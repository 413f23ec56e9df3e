import threading

import psycopg2
import pytest

from execution.lib.db import Database, connect, transaction
from execution.lib.errors import DatabaseUnavailable


def _count(conn, table="organizations"):
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) AS n FROM {table}")
        return cur.fetchone()["n"]


def _insert_org(conn, slug):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO organizations (slug, name) VALUES (%s, %s)", (slug, slug))


@pytest.mark.race
def test_outermost_transaction_commits_and_rolls_back(race_db):
    with race_db.transaction() as conn:
        _insert_org(conn, "kept")
    with pytest.raises(RuntimeError):
        with race_db.transaction() as conn:
            _insert_org(conn, "lost")
            raise RuntimeError("boom")
    with race_db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT slug FROM organizations ORDER BY slug")
        assert [r["slug"] for r in cur.fetchall()] == ["kept"]


@pytest.mark.race
def test_nested_block_is_a_savepoint(race_db):
    with race_db.transaction() as conn:
        _insert_org(conn, "outer")
        with pytest.raises(psycopg2.errors.UniqueViolation):
            with transaction(conn):
                _insert_org(conn, "inner")
                _insert_org(conn, "inner")  # violates UNIQUE: only the savepoint is undone
        with transaction(conn):
            _insert_org(conn, "inner-ok")
    with race_db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT slug FROM organizations ORDER BY slug")
        assert [r["slug"] for r in cur.fetchall()] == ["inner-ok", "outer"]


def test_fast_tier_connection_is_rolled_back_later(conn):
    # Inside the fast-tier transaction, transaction() becomes a savepoint and does not commit.
    with transaction(conn):
        _insert_org(conn, "fast-tier")
    assert _count(conn) >= 1
    assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS


def test_statement_timeout_cancels_long_queries(test_dsn):
    c = connect(test_dsn, statement_timeout_ms=100)
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled), c.cursor() as cur:
            cur.execute("SELECT pg_sleep(2)")
    finally:
        c.close()


def test_pool_waits_then_reports_unavailable(test_dsn):
    db = Database(test_dsn, minconn=1, maxconn=1, wait_s=0.2).open()
    try:
        with db.connection():
            with pytest.raises(DatabaseUnavailable, match="no free database connection"):
                with db.connection():
                    pass
        # The slot came back: the next borrower gets it.
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            assert cur.fetchone()["one"] == 1
    finally:
        db.close()


def test_pool_rolls_back_a_transaction_left_open(test_dsn):
    db = Database(test_dsn, minconn=1, maxconn=1).open()
    try:
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO organizations (slug, name) VALUES ('left-open', 'x')")
        with db.connection() as conn:
            assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM organizations WHERE slug = 'left-open'")
                assert cur.fetchone()["n"] == 0
    finally:
        db.close()


def test_unreachable_database_is_a_clear_error():
    with pytest.raises(DatabaseUnavailable) as info:
        Database("postgresql://nobody:secret-pw@127.0.0.1:1/none", connect_timeout_s=1).open()
    assert "secret-pw" not in str(info.value)


@pytest.mark.race
def test_two_threads_racing_on_one_row_serialise(race_db):
    with race_db.transaction() as conn:
        _insert_org(conn, "counter")
    barrier = threading.Barrier(2)

    def bump():
        barrier.wait()
        for _ in range(50):
            with race_db.transaction() as c, c.cursor() as cur:
                cur.execute("SELECT name FROM organizations WHERE slug = 'counter' FOR UPDATE")
                n = int(cur.fetchone()["name"])
                cur.execute("UPDATE organizations SET name = %s WHERE slug = 'counter'", (str(n + 1),))

    with race_db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE organizations SET name = '0' WHERE slug = 'counter'")
    threads = [threading.Thread(target=bump) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with race_db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM organizations WHERE slug = 'counter'")
        assert cur.fetchone()["name"] == "100"
