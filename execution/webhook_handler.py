"""Take one provider webhook: authenticate it, store it durably once, and acknowledge.

Writes: one webhook_events row (INSERT ... ON CONFLICT DO NOTHING, committed before the
200), then wakes the in-process worker (other workers poll). Nothing else happens here.
Guard: UNIQUE (provider, event_key), the key built from the provider's own ids, so a
repeated delivery stores nothing new. The bearer token is checked in constant time against
the channel's stored hash; an unknown instance or a wrong token writes nothing.

usage: python -m execution.webhook_handler --file payload.json --token TOKEN
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from execution.lib import cli, event_store, store
from execution.lib.db import Database
from execution.lib.errors import BadRequest, Unauthorized
from execution.lib.providers import green_api
from execution.lib.security import hash_token, token_matches

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
GREEN_API_CHANNELS = ("green_api", "sandbox")  # the simulator posts Green API-shaped bodies
_NO_CHANNEL_HASH = hash_token("no channel has this token")


class Receipt(str, enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class WebhookReceipt:
    outcome: Receipt
    event_id: int | None
    event_type: str


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def parse_body(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict:
    if len(body) > max_bytes:
        raise BadRequest(f"body is {len(body)} bytes; the limit is {max_bytes}", too_large=True)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    return payload


class ChannelDirectory:
    """Channel rows by instance id, cached so intake costs one statement, not three.

    A row is fresh for `ttl_s`; after that the stale row is still served while ONE background
    refresh runs (no burst of lookups when it expires under load), up to `max_stale_s`.
    A rotated webhook token or a new channel is therefore seen within about `ttl_s` seconds.
    Misses are not cached.
    """

    def __init__(self, db: Database, *, ttl_s: float = 5.0, max_stale_s: float = 60.0) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._max_stale_s = max_stale_s
        self._rows: dict[str, tuple[float, dict]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def cached(self, instance_id: str) -> dict | None:
        """The row if cached; never does I/O in the caller (safe on the event loop)."""
        with self._lock:
            hit = self._rows.get(instance_id)
            if hit is None:
                return None
            age = time.monotonic() - hit[0]
            if age < self._ttl_s:
                return hit[1]
            if age >= self._max_stale_s:
                return None
            if instance_id not in self._refreshing:
                self._refreshing.add(instance_id)
                threading.Thread(target=self._refresh, args=(instance_id,), daemon=True).start()
            return hit[1]

    def _refresh(self, instance_id: str) -> None:
        try:
            self._load(instance_id)
        except Exception:  # the stale row keeps serving; the next request past the TTL tries again
            log.warning("channel refresh failed for an instance; serving the cached row")
        finally:
            with self._lock:
                self._refreshing.discard(instance_id)

    def _load(self, instance_id: str) -> dict | None:
        now = time.monotonic()
        with self._db.connection() as conn:
            row = store.channel_by_instance(conn, providers=GREEN_API_CHANNELS, instance_id=instance_id)
        with self._lock:
            if row is None:
                self._rows.pop(instance_id, None)
            else:
                self._rows[instance_id] = (now, row)
        return row

    def find(self, instance_id: str) -> dict | None:
        hit = self.cached(instance_id)
        return hit if hit is not None else self._load(instance_id)


@dataclass(frozen=True)
class PendingEvent:
    """An authenticated webhook, ready to store."""

    provider: str
    channel_id: int
    event_key: str
    event_type: str
    payload: dict


def parse_green_api(body: bytes) -> tuple[dict, str]:
    """The webhook body and its instance id; raises BadRequest with the reason."""
    payload = green_api.unwrap(parse_body(body))
    instance = green_api.instance_id(payload)
    if instance is None:
        raise BadRequest("instanceData.idInstance is missing")
    return payload, instance


def authorize(channel: dict | None, payload: dict, authorization: str | None) -> PendingEvent:
    """Check the bearer token against the channel's hash in constant time; Unauthorized otherwise."""
    stored_hash = channel["webhook_token_hash"] if channel else _NO_CHANNEL_HASH
    if not token_matches(bearer_token(authorization), stored_hash) or channel is None:
        raise Unauthorized("unknown instance or wrong webhook token")
    return PendingEvent(
        provider=channel["provider"],
        channel_id=channel["id"],
        event_key=green_api.event_key(payload),
        event_type=str(payload.get("typeWebhook") or "unknown")[:100],
        payload=payload,
    )


def authenticate_green_api(
    channels: ChannelDirectory, *, body: bytes, authorization: str | None
) -> PendingEvent:
    """Validate the body and the bearer token; raises BadRequest or Unauthorized, writes nothing."""
    payload, instance = parse_green_api(body)
    return authorize(channels.find(instance), payload, authorization)


def store_events(db: Database, pending: list[PendingEvent]) -> list[WebhookReceipt]:
    """Store a batch in one statement and one durable commit; the first of a repeated key wins."""
    with db.connection() as conn:  # autocommit: the INSERT is its own transaction
        ids = event_store.insert_events(
            conn, rows=[(p.provider, p.channel_id, p.event_key, p.event_type, p.payload) for p in pending]
        )
    receipts, seen = [], set()
    for p in pending:
        key = (p.provider, p.event_key)
        event_id = ids.get(key) if key not in seen else None
        seen.add(key)
        receipts.append(WebhookReceipt(Receipt.STORED if event_id else Receipt.DUPLICATE, event_id, p.event_type))
    return receipts


def receive_green_api(
    db: Database,
    *,
    body: bytes,
    authorization: str | None,
    channels: ChannelDirectory | None = None,
    on_stored: Callable[[int], None] | None = None,
) -> WebhookReceipt:
    pending = authenticate_green_api(channels or ChannelDirectory(db, ttl_s=0), body=body, authorization=authorization)
    [receipt] = store_events(db, [pending])
    if receipt.event_id is not None and on_stored is not None:
        on_stored(receipt.event_id)
    return receipt


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--file", type=Path, required=True, help="a Green API webhook body (JSON)")
    p.add_argument("--token", required=True, help="the channel's webhook token")
    args = p.parse_args(argv)

    def work(res):
        return receive_green_api(res.db, body=args.file.read_bytes(), authorization=f"Bearer {args.token}")

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
