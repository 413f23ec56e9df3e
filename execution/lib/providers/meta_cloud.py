"""Meta WhatsApp Cloud API (Graph API): check and read its webhooks, send through `/{phone_number_id}/messages`.

The access token travels only in the Authorization header; it is never logged nor put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import TYPE_CHECKING, Any


from execution.lib.errors import BadRequest, ConfigError, ProviderOutcomeUnknown, ProviderRejected, ProviderRetryable
from execution.lib.providers.base import (
    ChannelProvider,
    ChatInfo,
    Envelope,
    ParsedEvent,
    SendResult,
    WebhookRequest,
    unauthorized,
)
from execution.lib.providers.http import counted, new_session, post, retry_policy
from execution.lib.providers.meta_cloud_parse import cut_envelopes, parse_envelope
from execution.lib.security import decrypt_secret, hash_token

if TYPE_CHECKING:  # requests is imported where it is used: urllib3 probes sockets at import time
    import requests

NAME = "meta_cloud"
DEFAULT_API_URL = "https://graph.facebook.com/v21.0"

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_ANSWERABLE = re.compile(r"\d{6,15}")
# Throughput limits: the message was not taken, so sending again later is safe.
_RETRYABLE_CODES = frozenset({130429, 131056, 80007, 4})
_MEANINGS = {
    1: "unknown error",
    2: "service temporarily unavailable",
    4: "application request limit reached",
    100: "invalid parameter",
    190: "access token expired or invalid",
    368: "temporarily blocked for policy violations",
    80007: "WhatsApp Business Account rate limit reached",
    130429: "rate limit hit",
    131026: "message undeliverable",
    131047: "re-engagement message: outside the 24 h customer-service window, only templates may be sent",
    131048: "spam rate limit hit",
    131051: "unsupported message type",
    131056: "too many messages to this recipient (pair rate limit)",
    132000: "template parameter count mismatch",
    132001: "template does not exist",
}
_FILE_KINDS = {
    "jpg": "image", "jpeg": "image", "png": "image",
    "mp4": "video", "3gp": "video",
    "aac": "audio", "amr": "audio", "mp3": "audio", "m4a": "audio", "ogg": "audio", "opus": "audio",
}


class MetaCloudProvider(ChannelProvider):
    """One Cloud API phone number: receiving is class-level, an instance sends with timeouts and bounded retries.

    Rate limits (130429, 131056, 80007, 4), 429, 5xx and refused connections are retried; a read
    timeout or a dropped connection raises ProviderOutcomeUnknown and is never resent here.
    """

    name = NAME
    route = "meta"
    window_hours = 24
    sends_templates = True
    default_api_url = DEFAULT_API_URL
    signs_webhooks = True
    person_event_types = ("message",)

    @classmethod
    def check_instance(cls, instance_id: str) -> None:
        if not instance_id.isdigit():
            raise BadRequest("a Meta number is registered by its numeric phone number ID (WhatsApp > API Setup)")

    @classmethod
    def webhook_setup(cls, *, webhook_url: str, webhook_token: str) -> dict:
        """What to paste in the Meta app dashboard (WhatsApp > Configuration > Webhook)."""
        return {"callback_url": webhook_url, "verify_token": webhook_token, "subscribe_fields": ["messages"]}

    def __init__(
        self,
        *,
        api_url: str,
        phone_number_id: str,
        access_token: str,
        session: requests.Session | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 20.0,
        max_attempts: int = 3,
        max_total_s: float = 30.0,
        backoff_s: float = 1.0,
    ) -> None:
        import requests

        self._url = f"{(api_url or DEFAULT_API_URL).rstrip('/')}/{phone_number_id}/messages"
        self._token = access_token
        self._session = session or new_session()
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._retrying = retry_policy(max_attempts=max_attempts, max_total_s=max_total_s, backoff_s=backoff_s)

    def __repr__(self) -> str:
        return f"MetaCloudProvider(url={self._url!r})"

    # ------------------------------------------------------------------ receiving

    @classmethod
    def envelopes(cls, payload: dict) -> list[Envelope]:
        """One envelope per message, status and error; BadRequest when the body names no phone number."""
        return cut_envelopes(payload)

    @classmethod
    def verify(cls, request: WebhookRequest, channel: dict) -> None:
        """Check `X-Hub-Signature-256` against HMAC-SHA256(app secret, raw body)."""
        secret = channel.get("webhook_secret")
        match = _SIGNATURE.fullmatch((request.header("X-Hub-Signature-256") or "").strip())
        if not isinstance(secret, str) or not secret or match is None:
            raise unauthorized()
        expected = hmac.new(secret.encode(), bytes(request.body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), match.group(1).lower().encode()):
            raise unauthorized()

    @classmethod
    def verify_token_hash(cls, request: WebhookRequest) -> tuple[str, str] | None:
        """For Meta's GET subscription handshake: (hash of hub.verify_token, hub.challenge)."""
        query = request.query
        token, challenge = query.get("hub.verify_token"), query.get("hub.challenge")
        if query.get("hub.mode") != "subscribe" or not token or not challenge:
            return None
        return hash_token(token), challenge

    @classmethod
    def parse(cls, payload: dict) -> list[ParsedEvent]:
        """The events of one envelope payload; odd shapes come back IGNORED with a reason."""
        return parse_envelope(payload)

    @classmethod
    def chat_key(cls, phone: str) -> str:
        """The wa_id of a phone number: its digits."""
        return re.sub(r"\D", "", str(phone))

    @classmethod
    def describe_chat(cls, chat_id: str) -> ChatInfo:
        """Groups are `group:<id>`; a one-to-one chat id is the customer's wa_id."""
        if chat_id.startswith("group:"):
            return ChatInfo(is_group=True, contact_key=None, answerable=False)
        digits = cls.chat_key(chat_id)
        return ChatInfo(is_group=False, contact_key=digits or None, answerable=bool(_ANSWERABLE.fullmatch(chat_id)))

    # ------------------------------------------------------------------ sending

    @classmethod
    def from_channel(cls, channel: dict, *, secret_key: str) -> MetaCloudProvider:
        """The sender for a channel row: `instance_id` is the phone_number_id, the token is decrypted."""
        if not channel.get("api_token_encrypted") or not channel.get("instance_id"):
            raise ConfigError(f"channel {channel.get('id')}: meta_cloud needs instance_id and an access token")
        return cls(
            api_url=channel.get("api_url") or DEFAULT_API_URL,
            phone_number_id=str(channel["instance_id"]),
            access_token=decrypt_secret(secret_key, channel["api_token_encrypted"]),
        )

    def send_text(self, *, chat_id: str, text: str, quoted_id: str | None = None,
                  reference: str | None = None) -> SendResult:
        body = self._envelope(chat_id, "text", {"preview_url": "http://" in text or "https://" in text, "body": text},
                              reference)
        if quoted_id:
            body["context"] = {"message_id": quoted_id}
        return self._send("sendMessage", body)

    def send_file(self, *, chat_id: str, url: str, file_name: str, caption: str | None = None,
                  reference: str | None = None) -> SendResult:
        extension = file_name.rsplit(".", 1)[1].lower() if "." in file_name else ""
        kind = _FILE_KINDS.get(extension, "document")
        if kind == "audio" and caption:
            kind = "document"  # audio messages carry no caption; a document keeps both the file and the words
        media: dict[str, Any] = {"link": url}
        if kind == "document":
            media["filename"] = file_name
        if caption:
            media["caption"] = caption
        return self._send("sendFile", self._envelope(chat_id, kind, media, reference))

    def send_location(self, *, chat_id: str, latitude: float, longitude: float, name: str | None = None,
                      address: str | None = None, reference: str | None = None) -> SendResult:
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if name:
            location["name"] = name
        if address:
            location["address"] = address
        return self._send("sendLocation", self._envelope(chat_id, "location", location, reference))

    def send_template(self, *, chat_id: str, name: str, language: str,
                      parameters: tuple[str, ...] = (), reference: str | None = None) -> SendResult:
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if parameters:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": str(p)} for p in parameters]}
            ]
        return self._send("sendTemplate", self._envelope(chat_id, "template", template, reference))

    def _envelope(self, chat_id: str, kind: str, content: dict, reference: str | None = None) -> dict:
        if chat_id.startswith("group:"):
            raise ProviderRejected("meta_cloud sends to one-to-one chats only, not to groups")
        to = self.chat_key(chat_id)
        if not to:
            raise ProviderRejected("meta_cloud: the chat id holds no phone number")
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: content}
        if reference and len(reference.encode()) <= 512:   # echoed in this send's status webhooks
            body["biz_opaque_callback_data"] = reference
        return body

    def _send(self, method: str, body: dict) -> SendResult:
        data, attempts = counted(self._retrying, self._post_once)(method, body)
        first = data.get("messages") if isinstance(data, dict) else None
        first = first[0] if isinstance(first, list) and first and isinstance(first[0], dict) else {}
        wamid = first.get("id")
        if not isinstance(wamid, str) or not wamid:
            raise ProviderOutcomeUnknown(f"{method}: 200 without messages[0].id")
        return SendResult(provider_message_id=wamid, delivery_status="pending", attempts=attempts)

    def _post_once(self, method: str, body: dict) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        response = post(self._session, self._url, method=method, timeout=self._timeout, json=body, headers=headers)
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                raise ProviderOutcomeUnknown(f"{method}: {status} with a body that is not JSON",
                                             status=status) from None
        raise self._error(method, status, response.text)

    def _error(self, method: str, status: int, text: str) -> Exception:
        """Retryable for rate-limit codes, 429 and 5xx; rejected for everything else (with the code named)."""
        error = _graph_error(text)
        code = _int(error.get("code"))
        details = _scrub(str(error.get("error_data", {}).get("details") or text), self._token)[:500]
        if code is None:
            summary = f"{method}: HTTP {status}"
        else:
            meaning = _MEANINGS.get(code) or _scrub(str(error.get("message") or f"HTTP {status}"), self._token)[:200]
            summary = f"{method}: Meta error {code} ({meaning})"
        kind = ProviderRetryable if code in _RETRYABLE_CODES or status == 429 or status >= 500 else ProviderRejected
        return kind(summary, status=status, detail=details, code=code)


def _graph_error(text: str) -> dict:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error["error_data"] = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        return error
    return {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
