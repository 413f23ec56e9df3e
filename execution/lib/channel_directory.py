"""Channel rows by webhook route and instance, cached for intake (one statement per new instance)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from execution.lib import tenant_store
from execution.lib.db import Database
from execution.lib.errors import ConfigError
from execution.lib.providers import provider_class, route_providers
from execution.lib.security import decrypt_secret

log = logging.getLogger(__name__)


class ChannelDirectory:
    """Channel rows by (route, instance), cached so intake costs one statement, not three.

    A row is fresh for `ttl_s`; after that the stale row is still served while ONE background
    refresh runs (no burst of lookups when it expires under load), up to `max_stale_s`.
    A rotated webhook credential is therefore seen within about `ttl_s` seconds.
    A miss (no such channel) is remembered for `miss_ttl_s`, so junk for an unknown instance costs
    one statement per `miss_ttl_s`, not one per request; a channel registered after a miss is
    found within `miss_ttl_s` seconds (5 by default). At most `max_misses` misses are kept, the
    oldest dropped first, so random instance ids cannot grow memory.
    A signing secret is decrypted once, when the row is loaded.
    """

    def __init__(self, db: Database, *, secret_key: str = "", ttl_s: float = 5.0, max_stale_s: float = 60.0,
                 miss_ttl_s: float = 5.0, max_misses: int = 10_000) -> None:
        self._db = db
        self._secret_key = secret_key
        self._ttl_s = ttl_s
        self._max_stale_s = max_stale_s
        self._miss_ttl_s = miss_ttl_s
        self._max_misses = max_misses
        self._rows: dict[tuple[str, str], tuple[float, dict]] = {}
        self._misses: OrderedDict[tuple[str, str], float] = OrderedDict()   # oldest first
        self._refreshing: set[tuple[str, str]] = set()
        self._real: tuple[float, bool] | None = None
        self._lock = threading.Lock()

    def known(self, route: str, instance_id: str) -> tuple[bool, dict | None]:
        """(True, row) when the answer is cached, row None for a remembered miss; (False, None) to load it.

        Never does I/O in the caller (safe on the event loop).
        """
        key = (route, instance_id)
        with self._lock:
            hit = self._rows.get(key)
            if hit is None:
                missed_at = self._misses.get(key)
                if missed_at is not None and time.monotonic() - missed_at < self._miss_ttl_s:
                    return True, None
                return False, None
            age = time.monotonic() - hit[0]
            if age < self._ttl_s:
                return True, hit[1]
            if age >= self._max_stale_s:
                return False, None
            if key not in self._refreshing:
                self._refreshing.add(key)
                threading.Thread(target=self._refresh, args=key, daemon=True).start()
            return True, hit[1]

    def _refresh(self, route: str, instance_id: str) -> None:
        try:
            self._load(route, instance_id)
        except Exception:  # the stale row keeps serving; the next request past the TTL tries again
            log.warning("channel refresh failed for an instance; serving the cached row")
        finally:
            with self._lock:
                self._refreshing.discard((route, instance_id))

    def _load(self, route: str, instance_id: str) -> dict | None:
        now = time.monotonic()
        names = tuple(cls.name for cls in route_providers(route))
        with self._db.connection() as conn:
            row = tenant_store.channel_by_instance(conn, providers=names, instance_id=instance_id)
        if row is not None and row.get("webhook_secret_encrypted"):
            row = {**row, "webhook_secret": decrypt_secret(self._secret_key, row["webhook_secret_encrypted"])}
        key = (route, instance_id)
        with self._lock:
            if row is None:
                self._rows.pop(key, None)
                self._misses.pop(key, None)
                self._misses[key] = now
                while len(self._misses) > self._max_misses:
                    self._misses.popitem(last=False)
            else:
                self._misses.pop(key, None)
                self._rows[key] = (now, row)
        return row

    def real_channel_exists(self) -> bool:
        """Whether a channel that talks to real people is connected (cached for `ttl_s`)."""
        with self._lock:
            if self._real is not None and time.monotonic() - self._real[0] < self._ttl_s:
                return self._real[1]
        with self._db.connection() as conn, conn.cursor() as cur:
            # Belongs in tenant_store (kept here while that file has another owner).
            cur.execute("SELECT DISTINCT provider FROM channels")
            providers = [r["provider"] for r in cur.fetchall()]
        real = any(_talks_to_people(name) for name in providers)
        with self._lock:
            self._real = (time.monotonic(), real)
        return real

    def find(self, route: str, instance_id: str) -> dict | None:
        answered, row = self.known(route, instance_id)
        return row if answered else self._load(route, instance_id)


def _talks_to_people(provider: str) -> bool:
    """A provider that needs credentials sends somewhere real; one we do not know counts as real too."""
    try:
        return provider_class(provider).needs_credentials
    except ConfigError:
        return True
