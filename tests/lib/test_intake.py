import threading

import pytest

from execution.lib.db import Database
from execution.lib.errors import DatabaseUnavailable
from execution.lib.intake import IntakeWriter
from execution.webhook_handler import PendingEvent, Receipt, store_events


def _pending(channel, key):
    return PendingEvent("green_api", channel["id"], key, "incomingMessageReceived", {"idMessage": key})


def test_a_batch_stores_each_key_once_and_the_first_wins(resources, green_channel):
    batch = [_pending(green_channel, k) for k in ("a", "b", "a", "c", "b")]
    receipts = store_events(resources.db, batch)
    assert [r.outcome for r in receipts] == [Receipt.STORED, Receipt.STORED, Receipt.DUPLICATE, Receipt.STORED,
                                             Receipt.DUPLICATE]
    again = store_events(resources.db, [_pending(green_channel, "a")])
    assert again[0].outcome is Receipt.DUPLICATE and again[0].event_id is None


def test_writer_answers_every_concurrent_caller_after_commit(resources, green_channel):
    woke = threading.Event()
    writer = IntakeWriter(resources.db, store_events, on_stored=lambda _: woke.set()).start()
    try:
        futures = [writer.submit(_pending(green_channel, f"k{i % 50}")) for i in range(200)]
        receipts = [f.result(timeout=10) for f in futures]
    finally:
        writer.stop()
    assert sum(r.outcome is Receipt.STORED for r in receipts) == 50
    assert woke.is_set()
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM webhook_events")
        assert cur.fetchone()["n"] == 50


def test_writer_fails_every_waiter_when_storage_is_down(green_channel, make_database):
    dead = Database(make_database())  # never opened
    writer = IntakeWriter(dead, store_events).start()
    try:
        futures = [writer.submit(_pending(green_channel, f"x{i}")) for i in range(5)]
        for f in futures:
            with pytest.raises(DatabaseUnavailable):
                f.result(timeout=10)
    finally:
        writer.stop()
