"""Tell an agent something on their own WhatsApp number, through the channel of the conversation.

Reads: the agent's phone, the conversation's channel. Writes: the agent's alerts chat (a conversation
with the agent's own number, kept HUMAN so the assistant never talks to the agent) and the alert
message behind the send fence. Guard: the caller's idempotency key (one alert per key).
Returns `sent`, `pending` (queued: the channel paces or retries it), `failed` or `no_phone`.

usage: python -m execution.alert_agent --conversation 42 --text "Call the customer back" --key alert:manual:1
"""

from __future__ import annotations

from execution.identify_conversation import identify_conversation
from execution.lib import cli, conversation_store, tenant_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.providers import ProviderRegistry, provider_class
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.set_mode_human import set_mode_human


def customer_label(conversation: dict, channel: dict) -> str:
    """How the agent knows the customer: the contact key (their number) or the chat id."""
    return provider_class(channel["provider"]).describe_chat(conversation["chat_id"]).contact_key \
        or conversation["chat_id"]


def alert_agent(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, conversation: dict,
                agent: dict, key: str, text: str) -> str:
    if not agent.get("phone"):
        return "no_phone"
    with db.transaction() as conn:
        channel = tenant_store.get_channel(conn, channel_id=conversation["channel_id"])
        alerts = identify_conversation(conn, channel=channel, display_name=f"{agent['name']} (alerts)",
                                       chat_id=provider_class(channel["provider"]).chat_key(agent["phone"]))
        if alerts["mode"] == "AI":   # the assistant never talks to the agent in their alerts chat
            set_mode_human(conn, snapshot=snapshot, conversation_id=alerts["id"], actor="assistant",
                           reason="agent_alerts")
    result = send_whatsapp_message(db, redis, providers, snapshot=snapshot, conversation_id=alerts["id"],
                                   idempotency_key=key, author="system", content=OutboundContent(text=text))
    return {SendOutcome.SENT: "sent", SendOutcome.DUPLICATE: "sent", SendOutcome.QUEUED: "pending"}.get(
        result.outcome, "failed")


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="the conversation whose agent is told")
    p.add_argument("--text", required=True)
    p.add_argument("--key", required=True, help="idempotency key: the same key alerts once")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            conversation = conversation_store.require_conversation(conn, conversation_id=args.conversation)
            agent = tenant_store.agent_profile(conn, agent_id=conversation["agent_id"])
        return {"alert": alert_agent(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                     snapshot=load_directives(), conversation=conversation, agent=agent,
                                     key=args.key, text=args.text)}

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
