"""lib/cpu_gate.py: at most N reply threads work at once; a thread waiting on the network gives its place back."""

import threading
import time

from execution.lib import cpu_gate


def test_at_most_the_gates_slots_work_at_once_and_waiting_frees_a_slot():
    gate = cpu_gate.Gate(2)
    lock = threading.Lock()
    now = {"working": 0, "waiting": 0}
    peak = {"working": 0, "waiting": 0}

    def spend(kind: str, seconds: float) -> None:
        with lock:
            now[kind] += 1
            peak[kind] = max(peak[kind], now[kind])
        time.sleep(seconds)
        with lock:
            now[kind] -= 1

    def answer():
        with cpu_gate.working(gate):
            spend("working", 0.02)                 # its own work
            with cpu_gate.waiting():               # a model call: the slot goes to another thread
                spend("waiting", 0.2)
            spend("working", 0.01)

    threads = [threading.Thread(target=answer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak["working"] == 2                     # never more than the slots
    assert peak["waiting"] >= 6                     # the waits overlapped: the slots were given back
    assert gate.acquire(blocking=False) and gate.acquire(blocking=False)   # every slot returned
    gate.release()
    gate.release()


def test_nested_working_takes_one_slot_and_waiting_outside_is_a_no_op():
    gate = cpu_gate.Gate(1)
    with cpu_gate.waiting():                        # a send by the dispatcher: no gate held, nothing to give
        pass
    with cpu_gate.working(gate):
        with cpu_gate.working(gate):                # re-entrant: would deadlock if it took a second slot
            assert not gate.acquire(blocking=False)
        with cpu_gate.waiting():
            assert gate.acquire(blocking=False)     # free while waiting
            gate.release()
        assert not gate.acquire(blocking=False)     # taken again after the wait
    assert gate.acquire(blocking=False)
    gate.release()
    with cpu_gate.working(None):                    # no gate: nothing is counted
        with cpu_gate.waiting():
            pass


def test_an_exception_inside_gives_the_slot_back():
    gate = cpu_gate.Gate(1)
    try:
        with cpu_gate.working(gate):
            raise ValueError("boom")
    except ValueError:
        pass
    assert gate.acquire(blocking=False)
    gate.release()


def test_the_gate_counts_the_threads_queued_at_it():
    """A responder claims no more conversations than its gate can start soon (answer_due.QUEUED_PER_SLOT)."""
    gate = cpu_gate.Gate(1)
    release = threading.Event()

    def hold():
        with cpu_gate.working(gate):
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while gate.queued < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.queued == 3                  # one works, three wait
    release.set()
    for t in threads:
        t.join(5)
    assert gate.queued == 0 and gate.acquire(blocking=False)
    gate.release()


def test_a_thread_waiting_for_a_conversation_lock_or_a_connection_gives_its_slot_back(redis_client, database):
    """Waits inside an answer (another worker's conversation lock, a busy pool) do not hold the gate."""
    from execution.lib.db import Database
    from execution.lib.errors import DatabaseUnavailable, LockBusy
    from execution.lib.guards import conversation_lock

    gate = cpu_gate.Gate(1)
    held = conversation_lock(redis_client, 99, wait_ms=0).acquire()       # another worker answers it
    outcome = {}

    def answer():
        with cpu_gate.working(gate):
            try:
                conversation_lock(redis_client, 99, wait_ms=600).acquire()
            except LockBusy:
                outcome["lock"] = "busy"

    t = threading.Thread(target=answer)
    t.start()
    time.sleep(0.1)
    assert _acquire_within(gate, 0.4)             # free while the other thread waits for the lock
    gate.release()
    t.join(5)
    held.release()
    assert outcome == {"lock": "busy"}

    small = Database(database.dsn, maxconn=1, wait_s=0.6).open()
    try:
        def query():
            with cpu_gate.working(gate):
                try:
                    with small.connection():
                        pass
                except DatabaseUnavailable:
                    outcome["pool"] = "busy"

        with small.connection():                  # the only connection is taken
            t = threading.Thread(target=query)
            t.start()
            time.sleep(0.1)
            assert _acquire_within(gate, 0.4)
            gate.release()
            t.join(5)
        assert outcome["pool"] == "busy"
    finally:
        small.close()


def _acquire_within(gate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gate.acquire(blocking=False):
            return True
        time.sleep(0.01)
    return False


def test_a_freed_place_goes_to_the_lowest_key_and_nobody_jumps_the_queue():
    """Earliest deadline first: the reply whose customer wrote first gets the next place, whether it
    is starting or coming back from its model call; a newcomer does not take a place that is being
    handed on."""
    gate = cpu_gate.Gate(1)
    order: list[float] = []
    gate.acquire(key=0)
    threads = []
    for key in (3.0, 1.0, 2.0):
        t = threading.Thread(target=lambda k=key: (gate.acquire(key=k), order.append(k), gate.release()))
        t.start()
        threads.append(t)
        while gate.queued < len(threads):
            time.sleep(0.001)
    gate.release()
    for t in threads:
        t.join(5)
    assert order == [1.0, 2.0, 3.0]
    assert gate.queued == 0 and gate.acquire(blocking=False)
    gate.release()


def _until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def test_waiting_asks_again_with_the_same_key():
    gate = cpu_gate.Gate(1)
    order: list[str] = []
    in_wait, back = threading.Event(), threading.Event()

    def old_reply():
        with cpu_gate.working(gate, key=1.0):
            with cpu_gate.waiting():
                in_wait.set()
                back.wait(5)                      # its model call; meanwhile a newer reply takes the place
            order.append("old")

    def newer_reply():
        with cpu_gate.working(gate, key=5.0):
            order.append("newer")
            _until(lambda: gate.queued >= 2)      # holds on until both others wait

    def newest_reply():
        with cpu_gate.working(gate, key=9.0):
            order.append("newest")

    threads = [threading.Thread(target=f) for f in (old_reply, newer_reply, newest_reply)]
    threads[0].start()
    assert in_wait.wait(5)
    threads[1].start()
    _until(lambda: order == ["newer"])
    threads[2].start()
    _until(lambda: gate.queued == 1)
    back.set()                                    # the old reply's answer arrives while "newest" waits
    for t in threads:
        t.join(5)
    assert order == ["newer", "old", "newest"]


def test_an_interrupted_wait_loses_no_place():
    """A thread interrupted while queued leaves the queue: the next release frees the place instead of
    handing it to a thread that is gone."""
    gate = cpu_gate.Gate(1)
    gate.acquire()
    handoff_taken = threading.Event()

    class Interrupt(Exception):
        pass

    real_lock = threading.Lock

    def interrupting_lock():
        lock = real_lock()

        class Once:
            def acquire(self, *a, **k):
                if handoff_taken.is_set():
                    raise Interrupt()
                handoff_taken.set()
                return lock.acquire(*a, **k)

            def release(self):
                lock.release()

        return Once()

    gate._handoff_lock = interrupting_lock
    try:
        gate.acquire(key=1.0)                     # queued, then interrupted in its wait
    except Interrupt:
        pass
    assert gate.queued == 0
    gate.release()                                # the place is free again, not handed to nobody
    assert gate.acquire(blocking=False)
    gate.release()


def test_a_gate_refuses_more_releases_than_acquires():
    gate = cpu_gate.Gate(1)
    try:
        gate.release()
    except ValueError:
        return
    raise AssertionError("released a place it never gave")
