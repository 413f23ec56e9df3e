"""Group commit for webhook intake: many concurrent requests, one INSERT and one commit per batch.

Each request waits for the commit that holds its event, so a 200 still means a durable write;
the batch amortises the round trip and the WAL flush across everyone waiting at that moment.
The store may answer one item with an exception (an event the database refused): only that
request fails; an exception raised for the whole batch (storage down) fails every request in it.
One writer thread by default (measured: a second one adds contention, not throughput, on 2 cores).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from concurrent.futures import Future

from execution.lib.db import Database

log = logging.getLogger(__name__)


class IntakeWriter:
    def __init__(self, db: Database, store_batch, *, max_batch: int = 64, writers: int = 1, on_stored=None) -> None:
        self._db = db
        self._store_batch = store_batch          # (db, [pending]) -> [receipt or exception], same order
        self._max_batch = max_batch
        self._on_stored = on_stored
        self._queue: queue.SimpleQueue[tuple[object, Future] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"webhook-intake-{i}", daemon=True) for i in range(writers)
        ]

    def start(self) -> "IntakeWriter":
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)

    def submit(self, pending) -> Future:
        """For threads: a concurrent Future resolved after the commit."""
        future: Future = Future()
        self._queue.put((pending, future))
        return future

    def submit_async(self, pending) -> asyncio.Future:
        """For the event loop: an asyncio Future; a whole batch is resolved with one loop wake-up."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put((pending, future))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[tuple[object, Future]]) -> None:
        try:
            results = self._store_batch(self._db, [p for p, _ in batch])
            receipts = [r for r in results if not isinstance(r, BaseException)]
            outcomes = [(future, None, result) if isinstance(result, BaseException) else (future, result, None)
                        for (_, future), result in zip(batch, results, strict=True)]
        except BaseException as exc:  # every waiting request gets the failure (503), none a 200
            log.warning("intake: a batch of %d event(s) was not stored: %s", len(batch), type(exc).__name__)
            receipts = []
            outcomes = [(future, None, exc) for _, future in batch]
        by_loop = defaultdict(list)
        for future, receipt, exc in outcomes:
            if isinstance(future, asyncio.Future):
                by_loop[future.get_loop()].append((future, receipt, exc))
            else:
                _settle(future, receipt, exc)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, items)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass
        if self._on_stored is not None and any(r.event_id for r in receipts):
            self._on_stored(None)


def _settle(future, receipt, exc) -> None:
    if future.done():  # the request was cancelled (client went away)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(receipt)


def _settle_all(items) -> None:
    for future, receipt, exc in items:
        _settle(future, receipt, exc)
