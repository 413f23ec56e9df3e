"""The channel interface every provider implements, and the events providers parse into.

One module per provider (green_api.py, sandbox.py, later meta.py, twilio.py) implements
`ChannelProvider` for sending and exposes `parse_webhook()` / `event_key()` for receiving.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class EventKind(str, enum.Enum):
    MESSAGE = "message"              # a customer (or a group participant) wrote to us
    AGENT_MESSAGE = "agent_message"  # the agent typed on their own phone
    ECHO = "echo"                    # the provider echoes a message we sent through the API
    STATUS = "status"                # delivery status of an outgoing message
    CALL = "call"
    STATE = "state"                  # the instance's authorization state changed
    NOTICE = "notice"                # stored for operators only (quota, device, block lists)
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
    media: dict | None = None        # url, mime type, file name, coordinates, choice id, ...
    quoted_id: str | None = None     # the message this one quotes, reacts to, edits or deletes
    timestamp: datetime | None = None


@dataclass(frozen=True)
class StatusUpdate:
    provider_message_id: str
    chat_id: str | None
    status: str                      # sent, delivered, read, failed, no_account
    description: str | None = None
    timestamp: datetime | None = None


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


class ChannelProvider(Protocol):
    name: str

    def send_text(self, *, chat_id: str, text: str, quoted_id: str | None = None) -> SendResult: ...

    def send_file(self, *, chat_id: str, url: str, file_name: str, caption: str | None = None) -> SendResult: ...

    def send_location(
        self,
        *,
        chat_id: str,
        latitude: float,
        longitude: float,
        name: str | None = None,
        address: str | None = None,
    ) -> SendResult: ...
