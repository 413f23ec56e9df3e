"""Green API: parse its webhooks, and send through its REST methods.

Every URL carries the instance token, so no URL is ever logged or put in an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from execution.lib.errors import (
    BadRequest,
    ProviderOutcomeUnknown,
    ProviderQuotaExceeded,
    ProviderRejected,
    ProviderRetryable,
)
from execution.lib.providers.base import (
    ChannelProvider,
    ChatInfo,
    Envelope,
    EventKind,
    InboundMessage,
    ParsedEvent,
    SendLookup,
    SendResult,
    StatusUpdate,
    WebhookRequest,
    unauthorized,
)
from execution.lib.providers.http import counted, new_session, post, retry_policy
from execution.lib.security import decrypt_secret, token_matches

if TYPE_CHECKING:  # requests is imported where it is used: urllib3 probes sockets at import time
    import requests

log = logging.getLogger(__name__)

NAME = "green_api"
DEFAULT_API_URL = "https://api.green-api.com"
# The notifications this service needs (setSettings / the console); see SETUP.md.
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
    # Green API's own spacing between sends; this service paces each number too (message_sending_rules).
    "delaySendMessagesMilliseconds": 1000,
}
# Chats nobody should ever be answered in: status updates, channels (newsletters), broadcast lists.
_UNANSWERABLE_DOMAINS = ("broadcast", "newsletter")
_PERSON_CHAT = re.compile(r"^\d{5,20}@(c\.us|lid)$")

_MESSAGE_WEBHOOKS = {
    "incomingMessageReceived": EventKind.MESSAGE,
    "outgoingMessageReceived": EventKind.AGENT_MESSAGE,
    "outgoingAPIMessageReceived": EventKind.ECHO,
}
_STATUS_NAMES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "noAccount": "no_account"}
_NOTICE_WEBHOOKS = ("quotaExceeded", "deviceInfo", "incomingBlock", "statusInstanceChanged")
_FILE_TYPES = {
    "imageMessage": "image",
    "videoMessage": "video",
    "documentMessage": "document",
    "audioMessage": "audio",
    "stickerMessage": "sticker",
}
_CHOICE_TYPES = {
    # typeMessage -> data key; every button or list reply becomes one "choice"
    "buttonsResponseMessage": "buttonsResponseMessage",
    "templateButtonsReplyMessage": "templateButtonReplyMessage",
    "templateButtonReplyMessage": "templateButtonReplyMessage",
    "interactiveButtonsResponse": "interactiveButtonsResponse",
    "interactiveButtonsReply": "interactiveButtonsResponse",
    "listResponseMessage": "listResponseMessage",
}


# ---------------------------------------------------------------- receiving


def unwrap(payload: dict) -> dict:
    """Accept the HTTP-API polling wrapper `{receiptId, body}` as well as a plain webhook body."""
    if isinstance(payload.get("body"), dict) and "receiptId" in payload and "typeWebhook" not in payload:
        return payload["body"]
    return payload


def instance_id(payload: dict) -> str | None:
    data = payload.get("instanceData")
    if not isinstance(data, dict) or data.get("idInstance") in (None, ""):
        return None
    return str(data["idInstance"])


def event_key(payload: dict) -> str:
    """A de-duplication key from the provider's own ids (a digest of the body when it has none)."""
    kind = str(payload.get("typeWebhook") or "unknown")
    inst = instance_id(payload) or "?"
    msg_id = payload.get("idMessage")
    if kind == "outgoingMessageStatus" and msg_id:
        return f"{inst}:status:{msg_id}:{payload.get('status')}"
    if kind == "incomingCall" and msg_id:
        return f"{inst}:call:{msg_id}:{payload.get('status')}"
    if kind == "stateInstanceChanged":
        return f"{inst}:state:{payload.get('stateInstance')}:{payload.get('timestamp')}"
    if msg_id:
        return f"{inst}:{kind}:{msg_id}"
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"{inst}:{kind}:sha256:{digest[:40]}"


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def parse_webhook(payload: dict) -> ParsedEvent:
    """Turn one webhook body into a ParsedEvent; unknown kinds come back IGNORED with a reason."""
    payload = unwrap(payload)
    kind = payload.get("typeWebhook")
    if not isinstance(kind, str):
        return ParsedEvent(EventKind.IGNORED, "unknown", reason="typeWebhook missing")
    if kind in _MESSAGE_WEBHOOKS:
        return _parse_message(payload, _MESSAGE_WEBHOOKS[kind], kind)
    if kind == "outgoingMessageStatus":
        status = _STATUS_NAMES.get(str(payload.get("status")))
        if status is None or not payload.get("idMessage"):
            return ParsedEvent(EventKind.IGNORED, kind, reason=f"status {payload.get('status')!r} not tracked")
        return ParsedEvent(
            EventKind.STATUS,
            kind,
            status=StatusUpdate(
                provider_message_id=str(payload["idMessage"]),
                chat_id=payload.get("chatId"),
                status=status,
                description=payload.get("description"),
                timestamp=_ts(payload.get("timestamp")),
            ),
        )
    if kind == "stateInstanceChanged":
        return ParsedEvent(EventKind.STATE, kind, details={"state": payload.get("stateInstance")})
    if kind == "incomingCall":
        caller = payload.get("from")
        if not caller:
            return ParsedEvent(EventKind.IGNORED, kind, reason="call without caller")
        message = InboundMessage(
            provider_message_id=f"call:{payload.get('idMessage')}:{payload.get('status')}",
            chat_id=str(caller),
            sender_id=str(caller),
            sender_name=None,
            is_group=str(caller).endswith("@g.us"),
            message_type="call",
            text=None,
            media={"call_status": payload.get("status")},
            timestamp=_ts(payload.get("timestamp")),
        )
        return ParsedEvent(EventKind.CALL, kind, message=message, details={"status": payload.get("status")})
    if kind in _NOTICE_WEBHOOKS:
        details = {k: v for k, v in payload.items() if k not in ("instanceData", "typeWebhook")}
        return ParsedEvent(EventKind.NOTICE, kind, details=details)
    return ParsedEvent(EventKind.IGNORED, kind, reason=f"typeWebhook {kind!r} is not handled")


def _parse_message(payload: dict, kind: EventKind, event_type: str) -> ParsedEvent:
    sender = _dict(payload.get("senderData"))
    data = _dict(payload.get("messageData"))
    chat_id = sender.get("chatId")
    msg_id = payload.get("idMessage")
    if not chat_id or not msg_id:
        return ParsedEvent(EventKind.IGNORED, event_type, reason="message without chatId or idMessage")
    type_message = str(data.get("typeMessage") or "")
    parsed = _content(type_message, data)
    if parsed is None:
        return ParsedEvent(EventKind.IGNORED, event_type, reason=f"typeMessage {type_message!r} is not handled")
    message_type, text, media, target = parsed
    quoted = _dict(data.get("quotedMessage"))
    message = InboundMessage(
        provider_message_id=str(msg_id),
        chat_id=str(chat_id),
        sender_id=str(sender.get("sender") or chat_id),
        sender_name=sender.get("senderName") or sender.get("chatName") or None,
        is_group=str(chat_id).endswith("@g.us"),
        message_type=message_type,
        text=text,
        media=media,
        quoted_id=target or quoted.get("stanzaId") or None,
        timestamp=_ts(payload.get("timestamp")),
    )
    return ParsedEvent(kind, event_type, message=message)


def _content(type_message: str, data: dict) -> tuple[str, str | None, dict | None, str | None] | None:
    """(message_type, text, media, target message id) for one messageData, or None if unknown."""
    if type_message == "textMessage":
        return "text", _dict(data.get("textMessageData")).get("textMessage"), None, None
    if type_message in ("extendedTextMessage", "quotedMessage"):
        ext = _dict(data.get("extendedTextMessageData"))
        media = {k: ext[k] for k in ("title", "description", "sourceUrl", "sourceType") if ext.get(k)} or None
        return "text", ext.get("text"), media, None
    if type_message in _FILE_TYPES:
        f = _dict(data.get("fileMessageData"))
        media = {
            "url": f.get("downloadUrl"),
            "mime_type": f.get("mimeType"),
            "file_name": f.get("fileName"),
        }
        return _FILE_TYPES[type_message], f.get("caption") or None, media, None
    if type_message == "locationMessage":
        loc = _dict(data.get("locationMessageData"))
        media = {k: loc.get(k) for k in ("latitude", "longitude", "nameLocation", "address")}
        return "location", loc.get("nameLocation") or loc.get("address") or None, media, None
    if type_message == "contactMessage":
        c = _dict(data.get("contactMessageData"))
        return "contact", c.get("displayName"), {"contacts": [{"name": c.get("displayName"), "vcard": c.get("vcard")}]}, None
    if type_message == "contactsArrayMessage":
        contacts = _dict(data.get("messageData")).get("contacts") or []
        items = [{"name": _dict(c).get("displayName"), "vcard": _dict(c).get("vcard")} for c in contacts]
        return "contact", ", ".join(i["name"] for i in items if i["name"]) or None, {"contacts": items}, None
    if type_message in _CHOICE_TYPES:
        reply = _dict(data.get(_CHOICE_TYPES[type_message]) or data.get(type_message))
        single = _dict(reply.get("singleSelectReply"))
        choice_id = reply.get("selectedId") or reply.get("selectedButtonId") or single.get("selectedRowId")
        label = reply.get("selectedDisplayText") or reply.get("selectedButtonText") or reply.get("title")
        media = {"choice_id": choice_id, "source": type_message}
        return "choice", label, media, reply.get("stanzaId")
    if type_message == "reactionMessage":
        ext = _dict(data.get("extendedTextMessageData"))
        target = _dict(data.get("quotedMessage")).get("stanzaId") or ext.get("stanzaId")
        return "reaction", ext.get("text") or "", None, target
    if type_message == "pollMessage":
        poll = _dict(data.get("pollMessageData"))
        return "poll", poll.get("name"), {"options": poll.get("options"), "multiple": poll.get("multipleAnswers")}, None
    if type_message == "pollUpdateMessage":
        poll = _dict(data.get("pollMessageData"))
        return "poll_update", poll.get("name"), {"votes": poll.get("votes")}, poll.get("stanzaId")
    if type_message == "editedMessage":
        edit = _dict(data.get("editedMessageData"))
        return "edited", edit.get("textMessage") or edit.get("caption"), None, edit.get("stanzaId")
    if type_message == "deletedMessage":
        return "deleted", None, None, _dict(data.get("deletedMessageData")).get("stanzaId")
    return None


# ---------------------------------------------------------------- sending

_TOKEN_IN_PATH = re.compile(r"(/waInstance[^/\s]+/[A-Za-z]+/)[^/\s\"?]+")


class RedactTokens(logging.Filter):
    """Blank the instance token out of any URL a library logs (urllib3 logs request lines at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN_IN_PATH.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction() -> None:
    """Attach the redaction filter to the HTTP library loggers once (idempotent)."""
    for name in ("urllib3.connectionpool", "requests"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in target.filters):
            target.addFilter(RedactTokens())



class GreenApiReceiver(ChannelProvider):
    """Green API's webhooks: one body is one event; a bearer token authenticates it."""

    route = "green-api"
    default_api_url = DEFAULT_API_URL
    person_event_types = ("incomingMessageReceived", "outgoingMessageReceived")
    unhealthy_states = ("notAuthorized", "blocked", "sleepMode", "yellowCard")

    @classmethod
    def check_instance(cls, instance_id: str) -> None:
        if not instance_id.isdigit():
            raise BadRequest("a Green API instance is its numeric idInstance")

    @classmethod
    def webhook_setup(cls, *, webhook_url: str, webhook_token: str) -> dict:
        """The body of Green API's setSettings (or the console's fields) for this service."""
        return {"webhookUrl": webhook_url, "webhookUrlToken": webhook_token, **WEBHOOK_SETTINGS}

    @classmethod
    def envelopes(cls, payload: dict) -> list[Envelope]:
        payload = unwrap(payload)
        instance = instance_id(payload)
        if instance is None:
            raise BadRequest("instanceData.idInstance is missing")
        kind = str(payload.get("typeWebhook") or "unknown")[:100]
        if kind in _MESSAGE_WEBHOOKS:
            chat = _dict(payload.get("senderData")).get("chatId")
        elif kind == "outgoingMessageStatus":
            chat = payload.get("chatId")
        elif kind == "incomingCall":
            chat = payload.get("from")      # applied in order with the caller's messages
        else:
            chat = None
        chat_id = chat if isinstance(chat, str) and chat else None
        return [Envelope(instance, event_key(payload), kind, payload, chat_id=chat_id)]

    @classmethod
    def verify(cls, request: WebhookRequest, channel: dict) -> None:
        if not token_matches(_bearer_token(request.header("authorization")), channel.get("webhook_token_hash")):
            raise unauthorized()

    @classmethod
    def parse(cls, payload: dict) -> list[ParsedEvent]:
        return [parse_webhook(payload)]

    @classmethod
    def chat_key(cls, phone: str) -> str:
        return f"{re.sub(r'[^0-9]', '', phone)}@c.us"

    @classmethod
    def describe_chat(cls, chat_id: str) -> ChatInfo:
        local, _, domain = chat_id.partition("@")
        if domain == "g.us":
            return ChatInfo(is_group=True, contact_key=None)
        contact = local if domain == "c.us" and local.isdigit() else chat_id
        answerable = domain not in _UNANSWERABLE_DOMAINS and bool(_PERSON_CHAT.match(chat_id))
        return ChatInfo(is_group=False, contact_key=contact, answerable=answerable)


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class GreenApiProvider(GreenApiReceiver):
    """Sends through `{api_url}/waInstance{id}/{method}/{token}` with timeouts and bounded retries.

    429, 5xx and refused connections are retried (the message was not taken); a read
    timeout raises ProviderOutcomeUnknown and is never resent here.
    """

    name = NAME

    def __init__(
        self,
        *,
        api_url: str,
        id_instance: str,
        api_token: str,
        session: requests.Session | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 20.0,
        max_attempts: int = 3,
        max_total_s: float = 30.0,
        backoff_s: float = 1.0,
    ) -> None:
        import requests

        self.instance_id = id_instance

        install_log_redaction()
        self._exceptions = requests.exceptions
        self._base = f"{(api_url or DEFAULT_API_URL).rstrip('/')}/waInstance{id_instance}"
        self._token = api_token
        self._session = session or new_session()
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._retrying = retry_policy(max_attempts=max_attempts, max_total_s=max_total_s, backoff_s=backoff_s)

    @classmethod
    def from_channel(cls, channel: dict, *, secret_key: str) -> ChannelProvider:
        return cls(api_url=channel.get("api_url") or DEFAULT_API_URL, id_instance=channel["instance_id"],
                   api_token=decrypt_secret(secret_key, channel["api_token_encrypted"]))

    # Green API's journal may take up to 2 minutes to show a send; before that, absence proves nothing.
    JOURNAL_DELAY_S = 180

    def find_sent(self, *, chat_id: str, text: str | None, since: datetime) -> tuple[SendLookup, str | None]:
        """Look for the send in the outgoing journal and the send queue; absent from both for long: not sent."""
        minutes = max(1, int((datetime.now(timezone.utc) - since).total_seconds() // 60) + 2)
        journal = self._get_once("lastOutgoingMessages", {"minutes": minutes})
        for item in journal if isinstance(journal, list) else []:
            if isinstance(item, dict) and item.get("chatId") == chat_id and item.get("sendByApi", True) \
                    and (text is None or item.get("textMessage") == text) and item.get("idMessage"):
                return SendLookup.SENT, str(item["idMessage"])
        queue = self._get_once("showMessagesQueue", None)
        for item in queue if isinstance(queue, list) else []:
            if isinstance(item, dict) and item.get("chatId") == chat_id and \
                    (text is None or _dict(item.get("body")).get("message", item.get("textMessage")) == text):
                return SendLookup.SENT, str(item.get("messageID") or item.get("idMessage") or "") or None
        if (datetime.now(timezone.utc) - since).total_seconds() < self.JOURNAL_DELAY_S:
            return SendLookup.UNKNOWN, None
        return SendLookup.NOT_SENT, None

    def _get_once(self, method: str, params: dict | None):
        url = f"{self._base}/{method}/{self._token}"
        try:
            response = self._session.get(url, params=params, timeout=self._timeout)
        except self._exceptions.RequestException:
            raise ProviderRetryable(f"{method}: no answer") from None
        if response.status_code != 200:
            raise ProviderRetryable(f"{method}: HTTP {response.status_code}", status=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise ProviderRetryable(f"{method}: 200 with a body that is not JSON") from None

    def _post_once(self, method: str, body: dict) -> dict:
        url = f"{self._base}/{method}/{self._token}"
        response = post(self._session, url, method=method, timeout=self._timeout, json=body)
        status = response.status_code
        detail = response.text[:500]
        if status == 200:
            try:
                return response.json() or {}
            except ValueError:
                raise ProviderOutcomeUnknown(f"{method}: 200 with a body that is not JSON", status=status) from None
        if status == 466:
            raise ProviderQuotaExceeded(f"{method}: Green API quota exceeded (466)", status=status, detail=detail)
        if status == 429 or status >= 500:
            raise ProviderRetryable(f"{method}: HTTP {status}", status=status, detail=detail)
        raise ProviderRejected(f"{method}: HTTP {status}", status=status, detail=detail)

    def _send(self, method: str, body: dict) -> SendResult:
        data, attempts = counted(self._retrying, self._post_once)(method, body)
        msg_id = data.get("idMessage")
        if not msg_id:
            raise ProviderOutcomeUnknown(f"{method}: 200 without idMessage")
        return SendResult(provider_message_id=str(msg_id), attempts=attempts)

    def send_text(self, *, chat_id: str, text: str, quoted_id: str | None = None,
                  reference: str | None = None) -> SendResult:
        body: dict = {"chatId": chat_id, "message": text}
        if quoted_id:
            body["quotedMessageId"] = quoted_id
        return self._send("sendMessage", body)

    def send_file(self, *, chat_id: str, url: str, file_name: str, caption: str | None = None,
                  reference: str | None = None) -> SendResult:
        body = {"chatId": chat_id, "urlFile": url, "fileName": file_name}
        if caption:
            body["caption"] = caption
        return self._send("sendFileByUrl", body)

    def send_location(
        self,
        *,
        chat_id: str,
        latitude: float,
        longitude: float,
        name: str | None = None,
        address: str | None = None,
        reference: str | None = None,
    ) -> SendResult:
        body: dict = {"chatId": chat_id, "latitude": latitude, "longitude": longitude}
        if name:
            body["nameLocation"] = name
        if address:
            body["address"] = address
        return self._send("sendLocation", body)
