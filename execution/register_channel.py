"""Connect a WhatsApp number (Green API instance or Meta Cloud API number) to an agent.

Writes: one channels row (the API token, and for Meta the app secret, encrypted with
APP_SECRET_KEY; the webhook token stored only as a sha256 hash) and an audit_log row.
Guard: UNIQUE (provider, instance_id): re-running updates the same channel.
The webhook token (Meta: the verify token) is generated unless given, and printed once with the
webhook URL and the settings to enter in the provider's console.

usage: python -m execution.register_channel --agent sara@nile-homes.example --instance 1101000001 \\
           --api-url https://1101.api.greenapi.com --api-token - < token.txt
       python -m execution.register_channel --provider meta_cloud --agent sara@nile-homes.example \\
           --instance 100000000000001 --api-token - --app-secret - < token-then-secret.txt
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from execution.lib import cli, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import BadRequest, NotFound
from execution.lib.providers import provider_class
from execution.lib.security import encrypt_secret, generate_secret, hash_token

PROVIDERS = ("green_api", "meta_cloud")


@dataclass(frozen=True)
class ChannelRegistration:
    channel_id: int
    agent_id: int
    provider: str
    instance_id: str
    webhook_path: str
    webhook_token: str
    set_settings: dict


def register_channel(
    conn: Connection,
    *,
    agent_email: str,
    instance_id: str,
    api_token: str,
    secret_key: str,
    provider: str = "green_api",
    api_url: str | None = None,
    app_secret: str | None = None,
    webhook_token: str | None = None,
    public_base_url: str = "https://YOUR-HOST",
) -> ChannelRegistration:
    cls = provider_class(provider)
    cls.check_instance(instance_id)
    if not api_token:
        raise BadRequest("the API token is empty")
    if cls.signs_webhooks and not app_secret:
        raise BadRequest(f"{provider} signs its webhooks: give the app secret (--app-secret)")
    token = webhook_token or generate_secret(32)
    with transaction(conn):
        agent = tenant_store.agent_by_email(conn, email=agent_email)
        if agent is None:
            raise NotFound(f"no agent with email {agent_email}")
        channel = tenant_store.upsert_channel(
            conn,
            organization_id=agent["organization_id"],
            agent_id=agent["id"],
            provider=provider,
            instance_id=instance_id,
            api_url=(api_url or cls.default_api_url or "").rstrip("/") or None,
            api_token_encrypted=encrypt_secret(secret_key, api_token),
            webhook_token_hash=hash_token(token),
            webhook_secret_encrypted=encrypt_secret(secret_key, app_secret) if app_secret else None,
        )
        if channel is None:
            raise NotFound(f"instance {instance_id} belongs to another organization")
        tenant_store.insert_audit(conn, organization_id=agent["organization_id"], actor="cli",
                                  action="register_channel", entity="channel", entity_id=channel["id"],
                                  details={"provider": provider, "instance_id": instance_id})
    path = f"/webhooks/{cls.route}"
    settings = cls.webhook_setup(webhook_url=f"{public_base_url.rstrip('/')}{path}", webhook_token=token)
    return ChannelRegistration(channel["id"], agent["id"], provider, instance_id, path, token, settings)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--provider", choices=PROVIDERS, default="green_api", help="which API the number is on")
    p.add_argument("--agent", required=True, help="the agent's login email")
    p.add_argument("--instance", required=True, help="Green API idInstance, or Meta's phone number ID")
    p.add_argument("--api-url", default=None,
                   help="Green API: apiUrl from the console; Meta: the Graph API base with its version "
                        "(each has a default)")
    p.add_argument("--api-token", required=True, help="apiTokenInstance or Meta's access token; - reads a line of stdin")
    p.add_argument("--app-secret", default=None, help="Meta: the app secret that signs webhooks; - reads a line of stdin")
    p.add_argument("--webhook-token", default=None, help="use this webhook (verify) token instead of a generated one")
    p.add_argument("--public-url", default="https://YOUR-HOST", help="the public base URL of this service")
    args = p.parse_args(argv)
    api_token = sys.stdin.readline().strip() if args.api_token == "-" else args.api_token
    app_secret = sys.stdin.readline().strip() if args.app_secret == "-" else args.app_secret

    def work(res):
        with res.db.connection() as conn:
            return register_channel(
                conn, agent_email=args.agent, instance_id=args.instance, api_url=args.api_url, provider=args.provider,
                api_token=api_token, app_secret=app_secret, secret_key=res.settings.secret_key,
                webhook_token=args.webhook_token, public_base_url=args.public_url,
            )

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
