"""What one send carries and how it ended: content kinds, outcomes, the service window, the provider call."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class SendOutcome(str, enum.Enum):
    SENT = "sent"
    DUPLICATE = "duplicate"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    QUOTA_EXCEEDED = "quota_exceeded"
    OUTSIDE_WINDOW = "outside_window"
    DEFERRED = "deferred"              # a message of this chat is received but not applied yet: not now
    QUEUED = "queued"                  # the provider could not take it now; retried in order until the horizon


@dataclass(frozen=True)
class OutboundContent:
    kind: str = "text"                 # text | file | location | template
    text: str | None = None
    url: str | None = None
    file_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None            # location name, or the template's name
    address: str | None = None
    language: str | None = None        # template language code (en, ar, en_US)
    parameters: tuple[str, ...] = field(default=())

    def payload(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if v is not None and v != ()}


@dataclass(frozen=True)
class SendReport:
    outcome: SendOutcome
    idempotency_key: str
    outbox_id: int | None = None
    message_id: int | None = None
    provider_message_id: str | None = None
    error: str | None = None


def outside_window(provider, last_inbound_at: datetime | None, *, now: datetime) -> bool:
    """Whether a free-form message to this chat would fall outside the provider's service window."""
    if provider.window_hours is None:
        return False
    return last_inbound_at is None or now - last_inbound_at >= timedelta(hours=provider.window_hours)


def call_provider(provider, chat_id: str, content: OutboundContent, *, reference: str | None = None):
    """One provider call for one kind of content; `reference` (the outbox key) rides along where it can."""
    if content.kind == "text":
        return provider.send_text(chat_id=chat_id, text=content.text or "", reference=reference)
    if content.kind == "file":
        return provider.send_file(chat_id=chat_id, url=content.url, file_name=content.file_name, caption=content.text,
                                  reference=reference)
    if content.kind == "location":
        return provider.send_location(chat_id=chat_id, latitude=content.latitude, longitude=content.longitude,
                                      name=content.name, address=content.address, reference=reference)
    if content.kind == "template":
        return provider.send_template(chat_id=chat_id, name=content.name or "", language=content.language or "en",
                                      parameters=tuple(content.parameters), reference=reference)
    raise ValueError(f"unknown content kind {content.kind!r}")
