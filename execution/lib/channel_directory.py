"""Channel rows by webhook route and instance, cached for intake (one statement per new instance)."""

from __future__ import annotations

import logging
import threading
import time

from execution.lib import tenant_store
from execution.lib.db import Database
from execution.lib.providers import route_providers
from execution.lib.security import decrypt_secret

log = logging.getLogger(__name__)


class ChannelDirectory:
    """Channel rows by (route, instance), cached so intake costs one statement, not three.

    A row is fresh for `ttl_s`; after that the stale row is still served while ONE background
    refresh runs (no burst of lookups when it expires under load), up to `max_stale_s`.
    A rotated webhook credential or a new channel is therefore seen within about `ttl_s` seconds.
    Misses are not cached. A signing secret is decrypted once, when the row is loaded.
    """

    def __init__(self, db: Database, *, secret_key: str = "", ttl_s: float = 5.0, max_stale_s: float = 60.0) -> None:
        self._db = db
        self._secret_key = secret_key
        self._ttl_s = ttl_s
        self._max_stale_s = max_stale_s
        self._rows: dict[tuple[str, str], tuple[float, dict]] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def cached(self, route: str, instance_id: str) -> dict | None:
        """The row if cached; never does I/O in the caller (safe on the event loop)."""
        key = (route, instance_id)
        with self._lock:
            hit = self._rows.get(key)
            if hit is None:
                return None
            age = time.monotonic() - hit[0]
            if age < self._ttl_s:
                return hit[1]
            if age >= self._max_stale_s:
                return None
            if key not in self._refreshing:
                self._refreshing.add(key)
                threading.Thread(target=self._refresh, args=key, daemon=True).start()
            return hit[1]

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
        with self._lock:
            if row is None:
                self._rows.pop((route, instance_id), None)
            else:
                self._rows[(route, instance_id)] = (now, row)
        return row

    def find(self, route: str, instance_id: str) -> dict | None:
        hit = self.cached(route, instance_id)
        return hit if hit is not None else self._load(route, instance_id)
