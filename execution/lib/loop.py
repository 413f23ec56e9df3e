"""One polling loop for every background job (event worker, responder): wake-ups, idling, outages."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

import psycopg2

from execution.lib import ops_store
from execution.lib.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class PollingLoop:
    """Run `step()` in a thread until stopped.

    `step` returns True when it found work: the loop then runs again at once; otherwise it waits
    `idle_s` or until `wake()`. A database outage backs off exponentially up to `max_backoff_s`.
    A loop that hands work to a pool calls `wake_when_one_finishes()` when the pool was full, and
    `one_finished()` from each finished task: only then does a finished task wake it (waking on every
    one made a busy loop poll the database a hundred times a second).
    """

    BEAT_EVERY_S = 5.0

    def __init__(self, name: str, step: Callable[[], bool], *, idle_s: float = 0.25,
                 max_backoff_s: float = 30.0, db=None) -> None:
        self.name = name
        self._step = step
        self._db = db              # where the loop's heartbeat goes (loop_heartbeats); None: no heartbeat
        self._beat_name = f"{socket.gethostname()}:{os.getpid()}:{name}"
        self._next_beat = 0.0
        self.idle_s = idle_s
        self.max_backoff_s = max_backoff_s
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_on_finish = threading.Event()

    def wake(self, *_args) -> None:
        self._wake.set()

    def wake_when_one_finishes(self) -> None:
        self._wake_on_finish.set()

    def one_finished(self) -> None:
        if self._wake_on_finish.is_set():
            self._wake_on_finish.clear()
            self.wake()

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                self._wake.clear()
                self._beat()
                busy = self._step()
                failures = 0
                if not busy:
                    self._wake.wait(self.idle_s)
            except (DatabaseUnavailable, psycopg2.Error) as exc:
                failures += 1
                log.warning("%s: database unavailable (%s); retrying", self.name, type(exc).__name__)
                self.stop_event.wait(min(self.max_backoff_s, 0.5 * 2 ** min(failures, 6)))
            except Exception as exc:   # a loop that dies silently leaves everyone unanswered: log, back off, go on
                failures += 1
                log.error("%s: step failed (%s); retrying", self.name, type(exc).__name__)
                self.stop_event.wait(min(self.max_backoff_s, 0.5 * 2 ** min(failures, 6)))

    def _beat(self) -> None:
        if self._db is None or time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self.BEAT_EVERY_S
        with self._db.connection() as conn:
            ops_store.beat(conn, name=self._beat_name, loop=self.name)

    def start(self) -> "PollingLoop":
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._db is not None:   # a clean stop is not a dead loop: it leaves no stale beat behind
            try:
                with self._db.connection() as conn:
                    ops_store.stop_beating(conn, name=self._beat_name)
            except Exception:
                log.warning("%s: heartbeat not removed at stop", self.name)
