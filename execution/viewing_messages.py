"""Tell the customer and the agent about a viewing: confirmation, move, cancellation, reminder, feedback.

Reads: the viewing_rules directive's messages (in the viewing's language, the agent's gender), the
viewing with its listing, the agent. Writes: the message to the customer (and the listing's
location pin with a confirmation) behind the send fence, and an alert to the agent's own number.
Guard: each send's idempotency key, given by the caller (`viewing:{id}:confirm`, `reminder:{id}:24h`…).
By hand: resend one of a viewing's messages (the same key sends nothing twice).

usage: python -m execution.viewing_messages --viewing 7 --message confirmation [--key viewing:7:confirm:again]
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from execution.alert_agent import alert_agent, customer_label
from execution.lib import cli, conversation_store, formatting, tenant_store, viewing_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives, localized
from execution.lib.errors import BadRequest, NotFound
from execution.lib.providers import ProviderRegistry
from execution.send_whatsapp_message import OutboundContent, send_whatsapp_message

MESSAGES = ("confirmation", "moved", "cancelled", "reminder", "feedback_question", "feedback_thanks")


def parse_local(text: str, tz: str) -> datetime:
    """YYYY-MM-DDTHH:MM in the agent's time zone (or with an explicit offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{text!r}: use YYYY-MM-DDTHH:MM (the agent's time zone)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))


def arabic_digits(snapshot: Snapshot, agent: dict) -> bool:
    """The agent's own choice, else the sending directive's."""
    own = agent.get("arabic_digits")
    return snapshot["message_sending_rules"]["arabic_digits"] if own is None else bool(own)


def viewing_text(snapshot: Snapshot, viewing: dict, agent: dict, message: str, *, lang: str | None = None) -> str:
    lang = lang or viewing["language"]
    digits = arabic_digits(snapshot, agent)
    when = formatting.when_text(viewing["starts_at"], lang=lang, timezone=agent["timezone"], arabic_digits=digits)
    text = localized(snapshot["viewing_rules"]["messages"][message], lang, gender=agent.get("gender"))
    return text.format(reference=viewing["reference"], when=when, agent_name=agent["name"],
                       address=formatting.address_text(viewing, lang="ar" if lang == "ar" else "en"))


def notify_customer(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, viewing: dict,
                    message: str, key: str, booked_by: str = "system", expected_mode_version: int | None = None,
                    with_pin: bool = False) -> tuple[str, ...]:
    """The message (and the pin) to the customer; from the assistant behind the fence when it booked."""
    with db.connection() as conn:
        agent = viewing_store.viewing_agent(conn, agent_id=viewing["agent_id"])
        if expected_mode_version is None and booked_by == "assistant":
            expected_mode_version = conversation_store.get_conversation(
                conn, conversation_id=viewing["conversation_id"])["mode_version"]
    author = "ai" if booked_by == "assistant" else "agent" if booked_by.startswith(("agent", "cli")) else "system"
    common = dict(snapshot=snapshot, conversation_id=viewing["conversation_id"], author=author,
                  expected_mode_version=expected_mode_version if author == "ai" else None)
    outcomes = [send_whatsapp_message(db, redis, providers, idempotency_key=key,
                                      content=OutboundContent(text=viewing_text(snapshot, viewing, agent, message)),
                                      **common).outcome.value]
    pin = formatting.location_pin(viewing, lang="ar" if viewing["language"] == "ar" else "en") if with_pin else None
    if pin is not None and outcomes[0] in ("sent", "queued", "duplicate"):
        outcomes.append(send_whatsapp_message(db, redis, providers, idempotency_key=f"{key}:pin",
                                              content=OutboundContent(**pin), **common).outcome.value)
    return tuple(outcomes)


def notify_agent(db: Database, redis, providers: ProviderRegistry, *, snapshot: Snapshot, viewing: dict,
                 status: str, key: str) -> str:
    """An alert on the agent's own number: "Viewing booked: NH-0001 on Sunday … with 2010…"."""
    with db.connection() as conn:
        conversation = conversation_store.get_conversation(conn, conversation_id=viewing["conversation_id"])
        agent = tenant_store.agent_profile(conn, agent_id=viewing["agent_id"])
        channel = tenant_store.get_channel(conn, channel_id=conversation["channel_id"])
        timing = viewing_store.viewing_agent(conn, agent_id=viewing["agent_id"])
    lang = "ar" if agent["language"] == "ar" else "en"
    when = formatting.when_text(viewing["starts_at"], lang=lang, timezone=timing["timezone"],
                                arabic_digits=arabic_digits(snapshot, agent))
    text = snapshot["viewing_rules"]["agent_alert"][lang].format(
        status=status, reference=viewing["reference"], when=when, customer=customer_label(conversation, channel))
    return alert_agent(db, redis, providers, snapshot=snapshot, conversation=conversation, agent=agent, key=key,
                       text=text)


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--viewing", type=int, required=True)
    p.add_argument("--message", choices=MESSAGES, required=True)
    p.add_argument("--key", help="idempotency key (default: viewing:{id}:{message}:manual)")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            row = viewing_store.owner(conn, viewing_id=args.viewing)
            viewing = row and viewing_store.get_viewing(conn, agent_id=row["agent_id"], viewing_id=args.viewing)
        if viewing is None:
            raise NotFound(f"no viewing {args.viewing}")
        return {"sends": notify_customer(res.db, res.redis, ProviderRegistry(secret_key=res.settings.secret_key),
                                         snapshot=load_directives(), viewing=viewing, message=args.message,
                                         key=args.key or f"viewing:{args.viewing}:{args.message}:manual",
                                         with_pin=args.message == "confirmation")}

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
