"""The sandbox channel: receives Green API-shaped webhooks and records sends instead of sending.

Used when a channel has no provider credentials (the demo, the simulator, tests). The durable
record is the outbox and messages rows; `sent` is kept for inspection.
"""

from __future__ import annotations

import hashlib
import threading

from datetime import datetime

from execution.lib.providers.base import ChannelProvider, SendLookup, SendResult
from execution.lib.providers.green_api import GreenApiReceiver

NAME = "sandbox"


class SandboxProvider(GreenApiReceiver):
    name = NAME
    needs_credentials = False

    def __init__(self, *, instance_id: str) -> None:
        self.instance_id = instance_id
        self.sent: list[dict] = []
        self._lock = threading.Lock()

    @classmethod
    def from_channel(cls, channel: dict, *, secret_key: str) -> ChannelProvider:
        return cls(instance_id=channel["instance_id"])

    def find_sent(self, *, chat_id: str, text: str | None, since: datetime) -> tuple[SendLookup, str | None]:
        return SendLookup.NOT_SENT, None      # nothing real was sent: sending again only records it again

    def _record(self, method: str, body: dict) -> SendResult:
        with self._lock:
            self.sent.append({"method": method, **body})
            seq = len(self.sent)
        digest = hashlib.sha256(f"{self.instance_id}:{seq}:{sorted(body.items())}".encode()).hexdigest()
        return SendResult(provider_message_id=f"SANDBOX{digest[:20].upper()}", delivery_status="sent")

    def send_text(self, *, chat_id: str, text: str, quoted_id: str | None = None,
                  reference: str | None = None) -> SendResult:
        return self._record("sendMessage", {"chatId": chat_id, "message": text, "quotedMessageId": quoted_id})

    def send_file(self, *, chat_id: str, url: str, file_name: str, caption: str | None = None,
                  reference: str | None = None) -> SendResult:
        return self._record("sendFileByUrl", {"chatId": chat_id, "urlFile": url, "fileName": file_name, "caption": caption})

    def send_location(self, *, chat_id: str, latitude: float, longitude: float, name: str | None = None,
                      address: str | None = None, reference: str | None = None) -> SendResult:
        return self._record(
            "sendLocation",
            {"chatId": chat_id, "latitude": latitude, "longitude": longitude, "nameLocation": name, "address": address},
        )
