"""meaning.Batcher: concurrent escalation checks share encoder calls, each gets its own vectors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from execution.lib import cpu_gate, meaning


class Encoder:
    """Rows that say which text they are for; the first call can be held until released."""

    def __init__(self, hold_first: bool = False, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.started.set()
        assert self.release.wait(10)
        if self.fail_on in texts:
            raise RuntimeError("encoder failed")
        return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in texts], dtype=np.float32)


def rows(texts):
    return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in texts], dtype=np.float32)


def wait_queued(batcher, n: int) -> None:
    """Until `n` callers wait behind the running encode."""
    for _ in range(500):
        with batcher._lock:
            if len(batcher._queue) >= n:
                return
        threading.Event().wait(0.01)
    raise AssertionError(f"{n} callers never queued")


def run_all(batcher, calls):
    results, errors, threads = {}, {}, []

    def one(key, texts):
        try:
            results[key] = batcher.embed(texts)
        except Exception as exc:   # noqa: BLE001 - the test reads it
            errors[key] = exc

    for key, texts in calls.items():
        threads.append(threading.Thread(target=one, args=(key, texts)))
        threads[-1].start()
    return threads, results, errors


def test_a_lone_caller_is_encoded_at_once_with_the_real_encoder():
    batcher = meaning.Batcher()
    text = "can you do 6.5M instead of 7?"
    got = batcher.embed([text, "thanks"])
    assert batcher.calls == 1
    assert np.allclose(got, meaning.embed([text, "thanks"]), atol=1e-6)


def behind_a_held_call(enc: Encoder, lead: list[str], calls: dict):
    """`lead` is encoded first and held until every one of `calls` waits behind it; then all finish.
    (batcher, the lead's result, the callers' results and errors)."""
    batcher = meaning.Batcher(enc)
    first, first_results, _ = run_all(batcher, {"lead": lead})
    assert enc.started.wait(5)
    threads, results, errors = run_all(batcher, calls)
    wait_queued(batcher, len(calls))        # every follower is queued behind the running encode
    enc.release.set()
    for t in first + threads:
        t.join(10)
        assert not t.is_alive()
    return batcher, first_results.get("lead"), results, errors


def test_callers_arriving_during_an_encode_share_the_next_one_and_each_gets_its_own_rows():
    enc = Encoder(hold_first=True)
    calls = {f"c{i}": [f"message number {i}"] + ([f"second line {i}"] if i % 2 else []) for i in range(6)}
    _, _, results, errors = behind_a_held_call(enc, ["hello there"], calls)
    assert not errors
    assert enc.batches[0] == ["hello there"]
    assert len(enc.batches) == 2, enc.batches          # the six callers: one encoder call
    assert sorted(enc.batches[1]) == sorted(t for texts in calls.values() for t in texts)
    for key, texts in calls.items():
        assert np.array_equal(results[key], rows(texts))


def test_a_batch_holds_at_most_max_texts(monkeypatch):
    monkeypatch.setattr(meaning.Batcher, "MAX_TEXTS", 4)
    enc = Encoder(hold_first=True)
    calls = {f"c{i}": [f"a{i}", f"b{i}", f"c{i}"][: 1 + i % 3] for i in range(7)}
    _, _, results, errors = behind_a_held_call(enc, ["x"], calls)
    assert not errors
    assert all(len(b) <= 4 for b in enc.batches), enc.batches
    assert sum(len(b) for b in enc.batches[1:]) == sum(len(t) for t in calls.values())
    for key, texts in calls.items():
        assert np.array_equal(results[key], rows(texts))


def test_an_encoder_error_reaches_every_caller_of_that_batch_and_the_next_caller_still_works():
    enc = Encoder(hold_first=True, fail_on="boom")
    batcher, lead, results, errors = behind_a_held_call(enc, ["fine"], {"a": ["boom"], "b": ["also in the batch"]})
    assert np.array_equal(lead, rows(["fine"]))
    assert set(errors) == {"a", "b"} and not results
    # the thread that ran the call gets its exception; the other one an error of its own, chained to it
    ran = [e for e in errors.values() if str(e) == "encoder failed"]
    other = [e for e in errors.values() if str(e) == "the shared encoder call failed: RuntimeError"]
    assert len(ran) == 1 and len(other) == 1 and other[0].__cause__ is ran[0]
    assert np.array_equal(batcher.embed(["after"]), rows(["after"]))     # not left busy


def test_a_waiting_caller_gives_its_reply_slot_back():
    """While its vectors are being encoded by another thread, a reply thread holds no place of the
    reply gate: with one place, a third thread can work meanwhile."""
    gate = cpu_gate.Gate(1)
    enc = Encoder(hold_first=True)
    batcher = meaning.Batcher(enc)
    lead, _, _ = run_all(batcher, {"lead": ["first"]})
    assert enc.started.wait(5)
    waiting_done = threading.Event()

    def follower():
        with cpu_gate.working(gate, key=1.0):
            batcher.embed(["second"])
        waiting_done.set()

    t = threading.Thread(target=follower)
    t.start()
    wait_queued(batcher, 1)
    worked = threading.Event()

    def other():
        with cpu_gate.working(gate, key=2.0):
            worked.set()

    o = threading.Thread(target=other)
    o.start()
    assert worked.wait(5), "the follower kept the only place while it waited for its vectors"
    enc.release.set()
    for th in lead + [t, o]:
        th.join(10)
    assert waiting_done.is_set()


@pytest.mark.parametrize("threads", [8, 32])
def test_many_threads_with_the_real_encoder_get_what_they_would_get_alone(threads):
    texts = [f"is the flat number {i} still available, and can the owner do better on the price?" * (1 + i % 2)
             for i in range(threads)]
    alone = {t: meaning.embed([t]) for t in texts}
    batcher = meaning.Batcher()
    start = threading.Barrier(threads)
    got = {}

    def one(t):
        start.wait()
        got[t] = batcher.embed([t])

    ts = [threading.Thread(target=one, args=(t,)) for t in texts]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert len(got) == threads
    for t in texts:
        assert np.allclose(got[t], alone[t], atol=1e-5)


def test_a_caller_interrupted_while_waiting_passes_the_lead_on(monkeypatch):
    """A queued caller that leaves by an exception (taking its reply slot back raised): the callers behind it
    are still encoded, and a later one is not left waiting for a batch nobody runs."""
    from contextlib import contextmanager

    enc = Encoder(hold_first=True)
    batcher = meaning.Batcher(enc)
    lead, _, _ = run_all(batcher, {"lead": ["first"]})
    assert enc.started.wait(5)
    real = cpu_gate.waiting

    @contextmanager
    def interrupted():
        with real():
            yield
        if threading.current_thread().name == "doomed":
            raise KeyboardInterrupt("interrupted while taking the slot back")

    monkeypatch.setattr(meaning.cpu_gate, "waiting", interrupted)
    doomed_error = []

    def doomed():
        try:
            batcher.embed(["doomed"])
        except KeyboardInterrupt as exc:
            doomed_error.append(exc)

    d = threading.Thread(target=doomed, name="doomed")
    d.start()
    wait_queued(batcher, 1)
    behind, results, errors = run_all(batcher, {"behind": ["behind"]})
    wait_queued(batcher, 2)
    enc.release.set()
    for t in lead + [d] + behind:
        t.join(10)
        assert not t.is_alive()
    assert doomed_error and not errors and np.array_equal(results["behind"], rows(["behind"]))
    later, late_results, _ = run_all(batcher, {"later": ["later"]})
    later[0].join(5)
    assert not later[0].is_alive() and np.array_equal(late_results["later"], rows(["later"]))
    assert not batcher._busy


def test_concurrent_callers_share_calls_with_the_real_encoder():
    enc_calls = []
    batcher = meaning.Batcher(lambda texts: (enc_calls.append(len(texts)), meaning.embed(texts))[1])
    hold = threading.Event()
    original = batcher._encode

    def slow(texts):
        hold.wait(5)
        return original(texts)

    batcher._encode = slow
    threads = [threading.Thread(target=batcher.embed, args=([f"message {i}"],)) for i in range(8)]
    starter = threading.Thread(target=batcher.embed, args=(["the first"],))
    starter.start()
    for _ in range(500):
        if batcher._busy:
            break
        threading.Event().wait(0.01)
    for t in threads:
        t.start()
    wait_queued(batcher, 8)
    hold.set()
    for t in [starter, *threads]:
        t.join(30)
        assert not t.is_alive()
    assert batcher.calls == 2 and enc_calls == [1, 8]      # nine callers, two encoder calls
