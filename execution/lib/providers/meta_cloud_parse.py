"""Meta WhatsApp Cloud API webhooks: cut a body into envelopes, and read one envelope.

A body may batch several entries, changes, messages and statuses; each becomes its own
envelope with a self-contained payload, so it can be stored, de-duplicated and parsed alone.
Nothing here raises on odd shapes except `cut_envelopes`, which refuses a body naming no channel.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from execution.lib.errors import BadRequest
from execution.lib.providers.base import Envelope, EventKind, InboundMessage, ParsedEvent, StatusUpdate

OBJECT = "whatsapp_business_account"
TRACKED_STATUSES = ("sent", "delivered", "read", "failed")
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
_MEDIA_KEYS = {"id": "media_id", "mime_type": "mime_type", "filename": "file_name", "sha256": "sha256",
               "voice": "voice"}


# ---------------------------------------------------------------- small readers


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    """A list as is, nothing for None, and any other single value as a one-item list (parsed later)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _str(value: Any) -> str | None:
    """A non-empty string, or an integer written as one (ids sometimes arrive as numbers)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _digest(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


# ---------------------------------------------------------------- envelopes


def cut_envelopes(payload: dict) -> list[Envelope]:
    """One envelope per message, status and error of every change; BadRequest when none names a number."""
    if not isinstance(payload, dict) or payload.get("object") != OBJECT:
        found = payload.get("object") if isinstance(payload, dict) else None
        raise BadRequest(f"body is not a {OBJECT} webhook (object={found!r})")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise BadRequest("body has no entry list")
    envelopes: list[Envelope] = []
    for entry in entries:
        for change in _list(_dict(entry).get("changes")):
            envelopes.extend(_change_envelopes(payload["object"], _dict(change)))
    if not envelopes:
        raise BadRequest("body has no message, status or error for a phone_number_id")
    return envelopes


def _change_envelopes(obj: str, change: dict) -> list[Envelope]:
    field = _str(change.get("field")) or "unknown"
    value = _dict(change.get("value"))
    metadata = _dict(value.get("metadata"))
    number = _str(metadata.get("phone_number_id"))
    if number is None:
        return []  # nothing to route it by: no channel could own it
    if field != "messages":
        slice_ = {"object": obj, "field": field, "metadata": metadata, "value": value}
        return [Envelope(number, f"{number}:{field}:sha256:{_digest(slice_)}", field, slice_)]
    common = {"object": obj, "field": field, "metadata": metadata}
    contacts = [c for c in _list(value.get("contacts")) if isinstance(c, dict)]
    messages = _list(value.get("messages"))
    out: list[Envelope] = []
    for message in messages:
        sender = _str(_dict(message).get("from"))
        own = [c for c in contacts if _str(c.get("wa_id")) == sender]
        if not own and len(messages) == 1:
            own = contacts  # one message: its contacts are the sender's even if wa_id is written differently
        slice_ = {**common, "contacts": own, "message": message}
        wamid = _str(_dict(message).get("id"))
        key = f"{number}:msg:{wamid}" if wamid else f"{number}:message:sha256:{_digest(slice_)}"
        group = _str(_dict(message).get("group_id"))   # the chat id as the parser writes it (the takeover fence)
        out.append(Envelope(number, key, "message", slice_, chat_id=f"group:{group}" if group else sender))
    for status in _list(value.get("statuses")):
        slice_ = {**common, "status": status}
        wamid, state = _str(_dict(status).get("id")), _str(_dict(status).get("status"))
        key = f"{number}:status:{wamid}:{state}" if wamid and state else f"{number}:status:sha256:{_digest(slice_)}"
        recipient = _str(_dict(status).get("recipient_id"))
        if recipient and _dict(status).get("recipient_type") == "group":
            recipient = f"group:{recipient}"
        out.append(Envelope(number, key, "status", slice_, chat_id=recipient))
    for error in _list(value.get("errors")):
        slice_ = {**common, "error": error}
        out.append(Envelope(number, f"{number}:error:sha256:{_digest(slice_)}", "error", slice_))
    return out


# ---------------------------------------------------------------- one envelope


def parse_envelope(payload: dict) -> list[ParsedEvent]:
    """The events of one envelope payload; anything unexpected comes back IGNORED with a reason."""
    if not isinstance(payload, dict):
        return [ParsedEvent(EventKind.IGNORED, "unknown", reason="envelope payload is not an object")]
    if "message" in payload:
        return [_parse_message(payload)]
    if "status" in payload:
        return [_parse_status(payload.get("status"))]
    if "error" in payload:
        error = payload.get("error")
        if not isinstance(error, dict):
            return [ParsedEvent(EventKind.IGNORED, "error", reason="error is not an object")]
        details = {
            "code": error.get("code"),
            "title": error.get("title") or error.get("message"),
            "details": _dict(error.get("error_data")).get("details"),
        }
        return [ParsedEvent(EventKind.NOTICE, "error", details=details)]
    field = _str(payload.get("field")) or "unknown"
    return [ParsedEvent(EventKind.IGNORED, field, reason=f"field {field!r} is not handled")]


def _parse_status(status: Any) -> ParsedEvent:
    if not isinstance(status, dict):
        return ParsedEvent(EventKind.IGNORED, "status", reason="status is not an object")
    wamid, state = _str(status.get("id")), _str(status.get("status"))
    if not wamid:
        return ParsedEvent(EventKind.IGNORED, "status", reason="status without id")
    if state not in TRACKED_STATUSES:
        return ParsedEvent(EventKind.IGNORED, "status", reason=f"status {status.get('status')!r} is not tracked")
    recipient = _str(status.get("recipient_id"))
    if recipient and status.get("recipient_type") == "group":
        recipient = f"group:{recipient}"
    description = None
    if state == "failed":
        first = _dict(next(iter(_list(status.get("errors"))), None))
        code, title = first.get("code"), first.get("title") or first.get("message")
        description = ": ".join(str(p) for p in (code, title) if p not in (None, "")) or None
    update = StatusUpdate(provider_message_id=wamid, chat_id=recipient, status=state, description=description,
                          timestamp=_ts(status.get("timestamp")),
                          reference=_str(status.get("biz_opaque_callback_data")) or None)
    return ParsedEvent(EventKind.STATUS, "status", status=update)


def _parse_message(payload: dict) -> ParsedEvent:
    msg = payload.get("message")
    if not isinstance(msg, dict):
        return ParsedEvent(EventKind.IGNORED, "message", reason="message is not an object")
    sender, wamid = _str(msg.get("from")), _str(msg.get("id"))
    if not sender or not wamid:
        return ParsedEvent(EventKind.IGNORED, "message", reason="message without from or id")
    kind = _str(msg.get("type")) or ""
    content = _content(kind, msg)
    if isinstance(content, str):
        return ParsedEvent(EventKind.IGNORED, "message", reason=content)
    message_type, text, media, target = content
    group = _str(msg.get("group_id"))
    message = InboundMessage(
        provider_message_id=wamid,
        chat_id=f"group:{group}" if group else sender,
        sender_id=sender,
        sender_name=_sender_name(payload.get("contacts"), sender),
        is_group=bool(group),
        message_type=message_type,
        text=text,
        media=media,
        quoted_id=target or _str(_dict(msg.get("context")).get("id")),
        timestamp=_ts(msg.get("timestamp")),
    )
    return ParsedEvent(EventKind.MESSAGE, "message", message=message)


def _sender_name(contacts: Any, sender: str) -> str | None:
    candidates = [c for c in _list(contacts) if isinstance(c, dict)]
    matching = [c for c in candidates if _str(c.get("wa_id")) == sender] or candidates[:1]
    for contact in matching:
        name = _dict(contact.get("profile")).get("name")
        if isinstance(name, str) and name:
            return name
    return None


Content = tuple[str, str | None, dict | None, str | None]


def _content(kind: str, msg: dict) -> Content | str:
    """(message_type, text, media, target message id), or the reason the message is ignored."""
    body = msg.get(kind) if kind else None
    if kind == "text":
        text = _dict(body).get("body")
        return ("text", text, None, None) if isinstance(text, str) else "text message without body"
    if kind == "interactive":
        reply_type = _str(_dict(body).get("type"))
        if reply_type not in ("button_reply", "list_reply"):
            return f"interactive {reply_type!r} is not handled"
        return _choice(_dict(_dict(body).get(reply_type)), "id", "title", reply_type)
    if kind == "button":
        return _choice(_dict(body), "payload", "text", "button")
    if kind in MEDIA_TYPES:
        if not isinstance(body, dict):
            return f"{kind} message without its {kind} object"
        media = {ours: body[theirs] for theirs, ours in _MEDIA_KEYS.items() if body.get(theirs) not in (None, "")}
        caption = body.get("caption")
        return kind, caption if isinstance(caption, str) and caption else None, media, None
    if kind == "location":
        loc = _dict(body)
        lat, lon = loc.get("latitude"), loc.get("longitude")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
            return "location without coordinates"
        media = {"latitude": lat, "longitude": lon, "name": _str(loc.get("name")), "address": _str(loc.get("address"))}
        return "location", media["name"] or media["address"], media, None
    if kind == "contacts":
        cards = [card for card in map(_contact_card, _list(body)) if card["name"] or card["phones"]]
        if not cards:
            return "contacts message without contacts"
        return "contact", ", ".join(c["name"] for c in cards if c["name"]) or None, {"contacts": cards}, None
    if kind == "reaction":
        reaction = _dict(body)
        target = _str(reaction.get("message_id"))
        if not target:
            return "reaction without message_id"
        emoji = reaction.get("emoji")
        return "reaction", emoji if isinstance(emoji, str) else "", None, target   # no emoji: reaction removed
    codes = [_dict(e).get("code") for e in _list(msg.get("errors"))]
    suffix = f" (error {codes[0]})" if codes and codes[0] is not None else ""
    return f"message type {msg.get('type')!r} is not handled{suffix}"


def _choice(reply: dict, id_key: str, label_key: str, source: str) -> Content | str:
    choice_id, label = _str(reply.get(id_key)), reply.get(label_key)
    label = label if isinstance(label, str) and label else None
    if choice_id is None and label is None:
        return f"{source} without id or title"
    return "choice", label, {"choice_id": choice_id, "source": source}, None


def _contact_card(card: Any) -> dict:
    card = _dict(card)
    name = _dict(card.get("name")).get("formatted_name")
    phones = [
        {k: p[k] for k in ("phone", "wa_id") if isinstance(p.get(k), str)}
        for p in _list(card.get("phones")) if isinstance(p, dict)
    ]
    return {"name": name if isinstance(name, str) and name else None, "phones": phones}
