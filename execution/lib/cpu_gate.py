"""How many reply threads run their own Python at once; their waits (a model, a provider) do not count.

A process answers hundreds of conversations at once on `REPLY_WORKERS` threads, but they share one
interpreter lock. When all of them are runnable (a burst: every model answer arriving within a
second), the lock is handed round them all, so every reply advances a little and all of them finish
late, while the event worker, which applies the next customers' messages, waits its turn behind
hundreds of threads. With a gate, at most `slots` reply threads work at a time, in the order they
came, and each gives its place back while it waits on the network: replies finish in order, sooner,
and the other loops keep their share.

    with cpu_gate.working(gate):        # a reply thread's whole answer
        ...
        with cpu_gate.waiting():        # around a model call, a provider call, a pacing sleep
            ...

`waiting()` outside `working()` (a send by the dispatcher, a command run by hand) does nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_local = threading.local()


class Gate:
    """A semaphore that also says how many threads are queued at it (a responder claims no more
    conversations than it can start soon: another process may take them)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._sem = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.queued = 0

    def acquire(self, blocking: bool = True) -> bool:
        with self._lock:
            self.queued += 1
        try:
            return self._sem.acquire(blocking)
        finally:
            with self._lock:
                self.queued -= 1

    def release(self) -> None:
        self._sem.release()


@contextmanager
def working(gate: Gate | threading.Semaphore | None) -> Iterator[None]:
    """Hold one of the gate's slots for this block (re-entrant in one thread; None: no gate)."""
    if gate is None or getattr(_local, "gate", None) is not None:
        yield
        return
    gate.acquire()
    _local.gate = gate
    try:
        yield
    finally:
        _local.gate = None
        gate.release()


@contextmanager
def waiting() -> Iterator[None]:
    """Give the slot back while this thread waits on something outside the process; take it again after."""
    gate = getattr(_local, "gate", None)
    if gate is None:
        yield
        return
    _local.gate = None
    gate.release()
    try:
        yield
    finally:
        gate.acquire()
        _local.gate = gate
