"""The agent writes to a customer from the inbox: a new reply, a suppressed draft sent after all, or a
send whose fate is unknown sent again.

Reads: a conversation the viewer may see (NotFound otherwise), its mode; the toggle directive.
Writes: the mode (HUMAN first, through set_mode_human, when the assistant has the conversation and
`inbox_reply_takes_over` says so), then the message through send_whatsapp_message as author `agent`.
Guard: the idempotency key is `agent:{client_id}`: the client makes one id per message typed and
reuses it on a retry, so a double tap or a retried request sends once (the outbox's UNIQUE key).

usage: python -m execution.reply_as_agent --agent sara@nile-homes.example --conversation 42 --text "On my way" \
           --client-id 0b6f... [--draft MESSAGE_ID | --resend MESSAGE_ID]
"""

from __future__ import annotations

import re
import uuid

from execution.lib import cli, inbox_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import BadRequest, NotFound, OutsideWindow
from execution.lib.providers import ProviderRegistry
from execution.list_conversations import viewer_for
from execution.send_whatsapp_message import OutboundContent, SendOutcome, send_whatsapp_message
from execution.set_mode_human import set_mode_human
from execution.show_conversation import visible

MAX_TEXT = 4096
_CLIENT_ID = re.compile(r"[A-Za-z0-9-]{8,64}")


def reply_as_agent(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, viewer: dict,
                   conversation_id: int, text: str, client_id: str) -> dict:
    text = (text or "").strip()
    if not text:
        raise BadRequest("text: write something to send")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"text: at most {MAX_TEXT} characters")
    if not _CLIENT_ID.fullmatch(client_id or ""):
        raise BadRequest("client_id: 8-64 letters, digits or dashes (one per message typed)")
    actor = f"inbox:{viewer['agent_id']}"
    with db.connection() as conn:
        c = visible(conn, viewer, conversation_id)
        if c["mode"] == "AI" and snapshot["ai_human_toggle_logic"]["inbox_reply_takes_over"]:
            set_mode_human(conn, snapshot=snapshot, conversation_id=c["id"], actor=actor, reason="inbox_reply")
    report = send_whatsapp_message(db, redis, providers, snapshot=snapshot, conversation_id=c["id"],
                                   idempotency_key=f"agent:{client_id}", author="agent",
                                   content=OutboundContent(text=text))
    if report.outcome is SendOutcome.OUTSIDE_WINDOW:
        raise OutsideWindow(report.error)
    with db.connection() as conn:
        mode = inbox_store.conversation(conn, viewer=viewer, conversation_id=c["id"])["mode"]
    return {"outcome": report.outcome.value, "message_id": report.message_id, "mode": mode, "error": report.error}


def send_again(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, viewer: dict,
               conversation_id: int, message_id: int, client_id: str, kind: str) -> dict:
    """`draft`: a suppressed AI draft, sent by the agent; `resend`: a send that ended `unknown`."""
    with db.connection() as conn:
        c = visible(conn, viewer, conversation_id)
        m = inbox_store.message_in(conn, conversation_id=c["id"], message_id=message_id)
    if m is None:
        raise NotFound(f"no message {message_id} in this conversation")
    if kind == "draft" and m["delivery_status"] != "suppressed":
        raise BadRequest("only a draft that was not sent can be sent from here")
    if kind == "resend" and m["outbox_status"] != "unknown":
        raise BadRequest("only a send whose delivery is unknown can be sent again")
    if not m["body"]:
        raise BadRequest("this message has no text to send")
    return reply_as_agent(db, redis, providers, snapshot=snapshot, viewer=viewer, conversation_id=c["id"],
                          text=m["body"], client_id=client_id)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--agent", required=True, help="the agent's email")
    p.add_argument("--conversation", type=int, required=True)
    p.add_argument("--text", help="what to send")
    p.add_argument("--client-id", default=None, help="idempotency id (default: a new one)")
    p.add_argument("--draft", type=int, help="send this suppressed draft")
    p.add_argument("--resend", type=int, help="send this unknown-delivery message again")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            viewer = viewer_for(conn, args.agent)
        providers = ProviderRegistry(secret_key=res.settings.secret_key)
        common = dict(snapshot=load_directives(), viewer=viewer, conversation_id=args.conversation,
                      client_id=args.client_id or str(uuid.uuid4()))
        if args.draft or args.resend:
            return send_again(res.db, res.redis, providers, message_id=args.draft or args.resend,
                              kind="draft" if args.draft else "resend", **common)
        return reply_as_agent(res.db, res.redis, providers, text=args.text or "", **common)

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
