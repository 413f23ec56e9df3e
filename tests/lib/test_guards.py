import threading
import time

import pytest

from execution.lib.errors import LockBusy
from execution.lib.guards import (
    LOCK_CONVERSATION,
    RedisLock,
    claim_idempotency,
    conversation_lock,
    release_idempotency,
)


def test_lock_is_exclusive_and_released(redis_client):
    with conversation_lock(redis_client, 7, wait_ms=0) as lock:
        assert redis_client.get(f"{LOCK_CONVERSATION}7") == lock.token
        with pytest.raises(LockBusy):
            conversation_lock(redis_client, 7, wait_ms=50).acquire()
    assert redis_client.get(f"{LOCK_CONVERSATION}7") is None
    with conversation_lock(redis_client, 7, wait_ms=0):
        pass


def test_release_never_deletes_someone_elses_lock(redis_client):
    first = RedisLock(redis_client, "lock:test:1", ttl_ms=50, wait_ms=0).acquire()
    time.sleep(0.08)  # first's TTL runs out; a second holder takes the key
    second = RedisLock(redis_client, "lock:test:1", ttl_ms=5_000, wait_ms=0).acquire()
    assert first.release() is False
    assert redis_client.get("lock:test:1") == second.token
    assert second.release() is True


def test_lock_expires_so_a_crashed_holder_does_not_block_forever(redis_client):
    RedisLock(redis_client, "lock:test:2", ttl_ms=100, wait_ms=0).acquire()  # never released
    lock = RedisLock(redis_client, "lock:test:2", ttl_ms=1_000, wait_ms=1_000).acquire()
    assert lock.token is not None
    lock.release()


def test_extend_keeps_the_lock_alive(redis_client):
    lock = RedisLock(redis_client, "lock:test:3", ttl_ms=100, wait_ms=0).acquire()
    assert lock.extend(5_000)
    time.sleep(0.15)
    assert redis_client.get("lock:test:3") == lock.token
    lock.release()


def test_two_threads_racing_never_hold_the_lock_together(redis_client):
    inside = []
    overlaps = []
    barrier = threading.Barrier(2)

    def worker(name):
        barrier.wait()
        for _ in range(40):
            with conversation_lock(redis_client, 99, wait_ms=5_000):
                inside.append(name)
                if len(inside) > 1:
                    overlaps.append(tuple(inside))
                time.sleep(0.001)
                inside.remove(name)

    threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert redis_client.get(f"{LOCK_CONVERSATION}99") is None


def test_idempotency_claim_is_won_once_under_a_race(redis_client):
    wins = []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        if claim_idempotency(redis_client, "reply:42", ttl_s=60):
            wins.append(threading.get_ident())

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert not claim_idempotency(redis_client, "reply:42", ttl_s=60)
    release_idempotency(redis_client, "reply:42")
    assert claim_idempotency(redis_client, "reply:42", ttl_s=60)


def test_empty_idempotency_key_is_refused(redis_client):
    with pytest.raises(ValueError):
        claim_idempotency(redis_client, "", ttl_s=1)


def test_a_kept_alive_lock_outlives_its_ttl_and_expires_after(redis_client):
    import time

    from execution.lib.guards import RedisLock

    lock = RedisLock(redis_client, "lock:conversation:keep", ttl_ms=150, wait_ms=0)
    with lock, lock.kept_alive(every_s=0.03):
        time.sleep(0.4)                                    # a slow generation, well past the TTL
        assert redis_client.get("lock:conversation:keep") == lock.token
    assert redis_client.get("lock:conversation:keep") is None
    lock.acquire()
    with lock.kept_alive(every_s=0.03):
        pass                                               # the keeper stops with the block ...
    time.sleep(0.3)
    assert redis_client.get("lock:conversation:keep") is None   # ... so a dead holder's lock still expires
