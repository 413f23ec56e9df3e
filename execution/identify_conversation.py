"""Find or create the contact and the conversation a chat belongs to.

Writes: contacts (one per phone per organization; none for group chats) and
conversations (one per channel + chat id). The chat id stays the provider's opaque string; the
channel's provider says whether it is a group and which contact it belongs to.
Guard: UNIQUE (organization_id, phone) and UNIQUE (channel_id, chat_id) upserts.

usage: python -m execution.identify_conversation --channel 1 --chat-id 15550000001@c.us [--name "Mona"]
"""

from __future__ import annotations

from execution.lib import cli, conversation_store, tenant_store
from execution.lib.db import Connection, transaction
from execution.lib.errors import NotFound
from execution.lib.providers import provider_class


def identify_conversation(
    conn: Connection, *, channel: dict, chat_id: str, display_name: str | None = None
) -> dict:
    chat = provider_class(channel["provider"]).describe_chat(chat_id)
    with transaction(conn):
        contact_id = None
        if not chat.is_group and chat.contact_key:
            contact_id = conversation_store.upsert_contact(
                conn, organization_id=channel["organization_id"], phone=chat.contact_key, display_name=display_name
            )
        return conversation_store.upsert_conversation(
            conn, channel=channel, chat_id=chat_id, contact_id=contact_id, is_group=chat.is_group, title=display_name
        )


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--channel", type=int, required=True, help="channel id")
    p.add_argument("--chat-id", required=True, help="the provider's chat id")
    p.add_argument("--name", default=None, help="display name for a new contact")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            channel = tenant_store.get_channel(conn, channel_id=args.channel)
            if channel is None:
                raise NotFound(f"channel {args.channel} does not exist")
            return identify_conversation(conn, channel=channel, chat_id=args.chat_id, display_name=args.name)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
