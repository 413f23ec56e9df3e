"""The whole contract of a channel: how its webhooks are checked and read, and how it sends.

One module per provider (green_api.py, meta_cloud.py, sandbox.py, later twilio.py) subclasses
`ChannelProvider`. Receiving is class-level (no credentials needed to read a body); sending is
per channel, built by the registry from the channel row with `from_channel`. Nothing outside
`providers/` branches on a provider's name or knows how its chat ids are written.
"""

from __future__ import annotations

import enum
import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Mapping

from execution.lib.errors import BadRequest, Unauthorized

MAX_BODY_BYTES = 1_000_000
MAX_JSON_DEPTH = 32


class EventKind(str, enum.Enum):
    MESSAGE = "message"              # a customer (or a group participant) wrote to us
    AGENT_MESSAGE = "agent_message"  # the agent typed on their own phone
    ECHO = "echo"                    # the provider echoes a message we sent through the API
    STATUS = "status"                # delivery status of an outgoing message
    CALL = "call"
    STATE = "state"                  # the instance's authorization state changed
    NOTICE = "notice"                # stored for operators only (quota, device, errors, block lists)
    IGNORED = "ignored"              # understood enough to know we do nothing with it


@dataclass(frozen=True)
class InboundMessage:
    provider_message_id: str
    chat_id: str
    sender_id: str
    sender_name: str | None
    is_group: bool
    message_type: str                # text, image, video, document, audio, sticker, location,
    #                                  contact, choice, reaction, poll, poll_update, edited, deleted, call
    text: str | None = None          # body, caption, chosen option or emoji
    media: dict | None = None        # url or media id, mime type, file name, coordinates, choice id, ...
    quoted_id: str | None = None     # the message this one quotes, reacts to, edits or deletes
    timestamp: datetime | None = None


@dataclass(frozen=True)
class StatusUpdate:
    provider_message_id: str
    chat_id: str | None
    status: str                      # sent, delivered, read, failed, no_account
    description: str | None = None   # for failures: the provider's code and title
    timestamp: datetime | None = None
    reference: str | None = None     # our own reference, where the provider echoes it (Meta: the outbox key)


@dataclass(frozen=True)
class ParsedEvent:
    kind: EventKind
    event_type: str
    message: InboundMessage | None = None
    status: StatusUpdate | None = None
    details: dict = field(default_factory=dict)   # state, call status, notice data
    reason: str | None = None                     # why an event is ignored


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    delivery_status: str = "pending"  # what the provider's 200 means: queued, not delivered
    attempts: int = 1                 # HTTP requests it took (bounded retries of 429 / 5xx / refused)


class SendLookup(str, enum.Enum):
    """What a provider can say about a send whose answer we never recorded (a crash mid-send)."""

    SENT = "sent"            # it went: here is its id
    NOT_SENT = "not_sent"    # it certainly did not: sending again sends it once
    UNKNOWN = "unknown"      # the provider cannot tell (yet)


@dataclass(frozen=True)
class WebhookRequest:
    """What a provider may look at to authenticate a webhook: never re-serialised, always raw bytes."""

    method: str
    headers: Mapping[str, str]       # keys lower-cased
    query: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Envelope:
    """One storable event cut from a webhook body: the unit of de-duplication and of processing.

    A Green API body is one envelope; a Meta body may carry many (several entries, changes,
    messages and statuses), each stored and processed on its own.
    """

    instance_key: str                # which channel it is for (Green API idInstance, Meta phone_number_id)
    event_key: str                   # from the provider's own ids, never from the clock
    event_type: str
    payload: dict
    chat_id: str | None = None       # the chat it is about, when the envelope names one (the takeover fence)


@dataclass(frozen=True)
class ChatInfo:
    is_group: bool
    contact_key: str | None          # the person's stable key (digits of the phone); None for groups
    answerable: bool = True          # False for broadcasts, newsletters and ids we cannot answer


class ChannelProvider(ABC):
    """One provider. Class attributes describe it; class methods receive; instances send."""

    name: ClassVar[str]                      # channels.provider
    route: ClassVar[str]                     # POST /webhooks/{route}
    window_hours: ClassVar[int | None] = None  # customer-service window for free-form sends (Meta: 24)
    # Stored event types in which a person (the customer, or the agent on their phone) wrote in a chat:
    # while one of those is received but not applied, the assistant does not speak in that chat.
    person_event_types: ClassVar[tuple[str, ...]] = ()
    # Instance states (from the provider's state webhooks) in which the number cannot send or receive.
    unhealthy_states: ClassVar[tuple[str, ...]] = ()
    sends_templates: ClassVar[bool] = False

    # ------------------------------------------------------------------ receiving

    @classmethod
    def read_body(cls, body: bytes) -> dict:
        """The JSON object in a webhook body, bounded in size and depth, storable; BadRequest with the reason."""
        return parse_json_object(body)

    @classmethod
    @abstractmethod
    def envelopes(cls, payload: dict) -> list[Envelope]:
        """Cut a body into storable events; BadRequest when it names no channel."""

    @classmethod
    @abstractmethod
    def verify(cls, request: WebhookRequest, channel: dict) -> None:
        """Raise Unauthorized unless the request is authentic for `channel` (constant-time checks).

        `channel` is the channel row with `webhook_token_hash` and, where the provider signs
        bodies, the decrypted `webhook_secret`.
        """

    @classmethod
    def verify_token_hash(cls, request: WebhookRequest) -> tuple[str, str] | None:
        """For a GET verification handshake: (hash of the presented token, the challenge to echo)."""
        return None

    @classmethod
    @abstractmethod
    def parse(cls, payload: dict) -> list[ParsedEvent]:
        """Turn one stored envelope's payload into events; unknown kinds come back IGNORED with a reason."""

    @classmethod
    @abstractmethod
    def chat_key(cls, phone: str) -> str:
        """The chat id of a one-to-one chat with this phone number (digits, international)."""

    @classmethod
    @abstractmethod
    def describe_chat(cls, chat_id: str) -> ChatInfo:
        """Whether a chat id is a group, and the contact key of the person behind it."""

    # ------------------------------------------------------------------ connecting a number

    default_api_url: ClassVar[str | None] = None
    needs_credentials: ClassVar[bool] = True   # False: sends nowhere real (the sandbox)
    signs_webhooks: ClassVar[bool] = False     # True: the channel needs a signing secret (Meta: app secret)

    @classmethod
    def check_instance(cls, instance_id: str) -> None:
        """BadRequest when an instance id cannot be this provider's (a typo caught at registration)."""

    @classmethod
    def webhook_setup(cls, *, webhook_url: str, webhook_token: str) -> dict:
        """What to enter in the provider's console so that it sends webhooks here."""
        return {"webhook_url": webhook_url, "webhook_token": webhook_token}

    # ------------------------------------------------------------------ sending
    # `reference` is our outbox key: a provider that can carry it back in its status webhooks does
    # (Meta's biz_opaque_callback_data), so a send whose answer a crash lost is still recognised.

    @classmethod
    @abstractmethod
    def from_channel(cls, channel: dict, *, secret_key: str) -> "ChannelProvider":
        """The sender for a channel row (credentials decrypted with APP_SECRET_KEY)."""

    @abstractmethod
    def send_text(self, *, chat_id: str, text: str, quoted_id: str | None = None,
                  reference: str | None = None) -> SendResult: ...

    @abstractmethod
    def send_file(self, *, chat_id: str, url: str, file_name: str, caption: str | None = None,
                  reference: str | None = None) -> SendResult: ...

    @abstractmethod
    def send_location(self, *, chat_id: str, latitude: float, longitude: float, name: str | None = None,
                      address: str | None = None, reference: str | None = None) -> SendResult: ...

    def find_sent(self, *, chat_id: str, text: str | None, since: datetime) -> tuple[SendLookup, str | None]:
        """Whether a message with this text went to this chat since `since`, and its id; UNKNOWN by default."""
        return SendLookup.UNKNOWN, None

    def send_template(self, *, chat_id: str, name: str, language: str,
                      parameters: tuple[str, ...] = (), reference: str | None = None) -> SendResult:
        from execution.lib.errors import ProviderRejected

        raise ProviderRejected(f"{self.name} does not send templates")


def parse_json_object(body: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> dict:
    """The JSON object in `body`, storable as jsonb: BadRequest with the reason when it cannot be read.

    NaN, Infinity and numbers too large for a float become null; strings (values and keys) with
    NUL or a lone surrogate get U+FFFD in their place. PostgreSQL refuses all of these in jsonb,
    and one such body must not fail the others committed with it.
    """
    if len(body) > max_bytes:
        raise BadRequest(f"body is {len(body)} bytes; the limit is {max_bytes}", too_large=True)
    # The byte scan runs only when there are enough brackets to exceed the limit at all.
    if body.count(b"{") + body.count(b"[") > max_depth and _nesting(body, max_depth) > max_depth:
        raise BadRequest(f"body is nested deeper than {max_depth} levels")
    try:
        # As json.loads(bytes) decodes: a UTF-8 encoded surrogate passes here and is cleaned below.
        payload = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    if _may_hold_unstorable_text(body):
        payload = _storable(payload)
    return payload


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


# parse_constant sees NaN / Infinity / -Infinity; parse_float is called only for numbers with a
# fraction or an exponent, so bodies without them pay nothing.
_DECODER = json.JSONDecoder(parse_constant=lambda _: None, parse_float=_finite_or_none)
_ESCAPED_NUL_OR_SURROGATE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")      # UTF-8 bytes of U+D800..U+DFFF
_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")


def _may_hold_unstorable_text(body: bytes) -> bool:
    """A cheap byte scan: could a decoded string hold NUL or a lone surrogate? (False positives only cost a walk.)"""
    return ((b"\\u" in body and _ESCAPED_NUL_OR_SURROGATE.search(body) is not None)
            or (b"\xed" in body and _ENCODED_SURROGATE.search(body) is not None))


def _storable(value):
    """`value` with NUL and lone surrogates in every string replaced by U+FFFD (the depth is already bounded)."""
    if isinstance(value, str):
        return _UNSTORABLE_CHARS.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _nesting(body: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """The deepest bracket nesting, counted before parsing (strings are skipped); stops once past `limit`."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:      # backslash
                escaped = True
            elif byte == 0x22:      # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


def unauthorized() -> Unauthorized:
    return Unauthorized("unknown instance or bad webhook credentials")
