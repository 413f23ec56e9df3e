"""Connect a Green API instance to an agent, and print the webhook settings to apply.

Writes: one channels row (provider green_api; the API token encrypted with APP_SECRET_KEY,
the webhook token stored only as a sha256 hash) and an audit_log row.
Guard: UNIQUE (provider, instance_id): re-running updates the same channel.
The webhook token is generated unless given, and printed once: Green API sends it back
as `Authorization: Bearer <token>` on every webhook.

usage: python -m execution.register_channel --agent sara@nile-homes.example --instance 1101000001 \\
           --api-url https://1101.api.greenapi.com --api-token - < token.txt
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from execution.lib import cli, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import BadRequest, NotFound
from execution.lib.security import encrypt_secret, generate_secret, hash_token

# What Green API's setSettings needs for this service (see SETUP.md).
WEBHOOK_SETTINGS = {
    "incomingWebhook": "yes",
    "outgoingMessageWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "outgoingWebhook": "yes",
    "stateWebhook": "yes",
    "incomingCallWebhook": "yes",
    "pollMessageWebhook": "yes",
    "editedMessageWebhook": "yes",
    "deletedMessageWebhook": "yes",
}


@dataclass(frozen=True)
class ChannelRegistration:
    channel_id: int
    agent_id: int
    instance_id: str
    webhook_path: str
    webhook_token: str
    set_settings: dict


def register_channel(
    conn: Connection,
    *,
    agent_email: str,
    instance_id: str,
    api_url: str,
    api_token: str,
    secret_key: str,
    webhook_token: str | None = None,
    public_base_url: str = "https://YOUR-HOST",
) -> ChannelRegistration:
    if not instance_id.isdigit():
        raise BadRequest("--instance is Green API's numeric idInstance")
    if not api_token:
        raise BadRequest("the API token is empty")
    token = webhook_token or generate_secret(32)
    with transaction(conn):
        agent = tenant_store.agent_by_email(conn, email=agent_email)
        if agent is None:
            raise NotFound(f"no agent with email {agent_email}")
        channel = tenant_store.upsert_channel(
            conn,
            organization_id=agent["organization_id"],
            agent_id=agent["id"],
            provider="green_api",
            instance_id=instance_id,
            api_url=api_url.rstrip("/"),
            api_token_encrypted=encrypt_secret(secret_key, api_token),
            webhook_token_hash=hash_token(token),
        )
        if channel is None:
            raise NotFound(f"instance {instance_id} belongs to another organization")
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli", action="register_channel",
                           entity="channel", entity_id=channel["id"], details={"instance_id": instance_id})
    path = "/webhooks/green-api"
    settings = {"webhookUrl": f"{public_base_url.rstrip('/')}{path}", "webhookUrlToken": token, **WEBHOOK_SETTINGS}
    return ChannelRegistration(channel["id"], agent["id"], instance_id, path, token, settings)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's login email")
    p.add_argument("--instance", required=True, help="Green API idInstance")
    p.add_argument("--api-url", required=True, help="apiUrl from the Green API console")
    p.add_argument("--api-token", required=True, help="apiTokenInstance, or - to read it from stdin")
    p.add_argument("--webhook-token", default=None, help="use this webhook token instead of a generated one")
    p.add_argument("--public-url", default="https://YOUR-HOST", help="the public base URL of this service")
    args = p.parse_args(argv)
    api_token = sys.stdin.readline().strip() if args.api_token == "-" else args.api_token

    def work(res):
        with res.db.connection() as conn:
            return register_channel(
                conn, agent_email=args.agent, instance_id=args.instance, api_url=args.api_url,
                api_token=api_token, secret_key=res.settings.secret_key, webhook_token=args.webhook_token,
                public_base_url=args.public_url,
            )

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
