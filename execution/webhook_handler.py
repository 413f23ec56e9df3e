"""Take one provider webhook: authenticate it, store it durably once, and acknowledge.

Writes: one webhook_events row (INSERT ... ON CONFLICT DO NOTHING, committed before the
200), then NOTIFY webhook_events to wake a worker. Nothing else happens here.
Guard: UNIQUE (provider, event_key), the key built from the provider's own ids, so a
repeated delivery stores nothing new. The bearer token is checked in constant time against
the channel's stored hash; an unknown instance or a wrong token writes nothing.

usage: python -m execution.webhook_handler --file payload.json --token TOKEN
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path

from execution.lib import cli, event_store, store
from execution.lib.db import Database
from execution.lib.errors import BadRequest, Unauthorized
from execution.lib.providers import green_api
from execution.lib.security import hash_token, token_matches

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


def receive_green_api(db: Database, *, body: bytes, authorization: str | None) -> WebhookReceipt:
    payload = green_api.unwrap(parse_body(body))
    instance = green_api.instance_id(payload)
    if instance is None:
        raise BadRequest("instanceData.idInstance is missing")
    event_type = str(payload.get("typeWebhook") or "unknown")[:100]
    token = bearer_token(authorization)
    with db.transaction() as conn:
        channel = store.channel_by_instance(conn, providers=GREEN_API_CHANNELS, instance_id=instance)
        stored_hash = channel["webhook_token_hash"] if channel else _NO_CHANNEL_HASH
        if not token_matches(token, stored_hash) or channel is None:
            raise Unauthorized("unknown instance or wrong webhook token")
        event_id = event_store.insert_event(
            conn,
            provider=channel["provider"],
            channel_id=channel["id"],
            event_key=green_api.event_key(payload),
            event_type=event_type,
            payload=payload,
        )
    return WebhookReceipt(Receipt.STORED if event_id else Receipt.DUPLICATE, event_id, event_type)


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
