"""How many reply threads run their own Python at once; their waits (a model, a provider) do not count.

A process answers hundreds of conversations at once on `REPLY_WORKERS` threads, but they share one
interpreter lock. When all of them are runnable (a burst: every model answer arriving within a
second), the lock is handed round them all, so every reply advances a little and all of them finish
late, while the event worker, which applies the next customers' messages, waits its turn behind
hundreds of threads. With a gate, at most `slots` reply threads work at a time and each gives its
place back while it waits on the network: replies finish sooner and the other loops keep their share.

A freed place goes to the waiting thread with the lowest `key`: the answers pass the time their
customer started waiting, so a reply back from its model call with a draft to check and send goes
before an answer that has not started, and the customer who has waited longest is served first
(earliest deadline first: the oldest reply is never held back by newer ones).

    with cpu_gate.working(gate, key=waiting_since):  # a reply thread's whole answer
        ...
        with cpu_gate.waiting():        # around a model call, a provider call, a pacing sleep
            ...

`waiting()` outside `working()` (a send by the dispatcher, a command run by hand) does nothing.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from contextlib import contextmanager
from typing import Iterator

_local = threading.local()


class Gate:
    """`slots` places, handed to waiting threads lowest key first (ties: first come); it also says how
    many threads are queued at it (a responder claims no more conversations than it can start soon:
    another process may take them)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: list[tuple[float, int, threading.Lock]] = []
        self._arrival = itertools.count()
        self._handoff_lock = threading.Lock    # what a waiter blocks on (a test interrupts it)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def acquire(self, blocking: bool = True, key: float | None = None) -> bool:
        """Take a place, waiting behind lower keys (None: now, as a time, so it queues behind the
        waiting customers' replies)."""
        key = time.time() if key is None else key
        with self._lock:
            if self._free:
                self._free -= 1
                return True
            if not blocking:
                return False
            handoff = self._handoff_lock()
            handoff.acquire()
            heapq.heappush(self._waiters, (key, next(self._arrival), handoff))
        try:
            handoff.acquire()       # released by the thread that hands this one its place
        except BaseException:       # interrupted while waiting: leave the queue, or pass on a place just given
            with self._lock:
                mine = [i for i, w in enumerate(self._waiters) if w[2] is handoff]
                if mine:
                    self._waiters.pop(mine[0])
                    heapq.heapify(self._waiters)
                else:
                    self._hand_on()
            raise
        return True

    def release(self) -> None:
        with self._lock:
            self._hand_on()

    def _hand_on(self) -> None:
        if self._waiters:
            heapq.heappop(self._waiters)[2].release()     # the place passes on; it is never free between
        elif self._free < self.slots:
            self._free += 1
        else:
            raise ValueError("gate released more often than acquired")


@contextmanager
def working(gate: Gate | None, key: float | None = None) -> Iterator[None]:
    """Hold one of the gate's places for this block, asking for it (and again after each wait) with
    `key`; lower keys are served first (None: the time now). Re-entrant in one thread; None: no gate."""
    if gate is None or getattr(_local, "gate", None) is not None:
        yield
        return
    key = time.time() if key is None else key
    gate.acquire(key=key)
    _local.gate, _local.key = gate, key
    try:
        yield
    finally:
        held = _local.gate is gate     # not if a wait's re-acquire was interrupted
        _local.gate = None
        if held:
            gate.release()


@contextmanager
def waiting() -> Iterator[None]:
    """Give the place back while this thread waits on something outside the process; take it again after."""
    gate = getattr(_local, "gate", None)
    if gate is None:
        yield
        return
    _local.gate = None
    gate.release()
    try:
        yield
    finally:
        gate.acquire(key=_local.key)
        _local.gate = gate
