"""Channel providers: one module per vendor behind the `ChannelProvider` interface."""

from __future__ import annotations

import threading

from execution.lib.errors import ConfigError
from execution.lib.providers.base import ChannelProvider
from execution.lib.security import decrypt_secret


class ProviderRegistry:
    """Builds, and keeps one per channel, the provider that sends for a channel row."""

    def __init__(self, *, secret_key: str, overrides: dict[int, ChannelProvider] | None = None) -> None:
        self._secret_key = secret_key
        self._cache: dict[int, ChannelProvider] = dict(overrides or {})
        self._lock = threading.Lock()

    def for_channel(self, channel: dict) -> ChannelProvider:
        with self._lock:
            provider = self._cache.get(channel["id"])
            if provider is None:
                provider = self._build(channel)
                self._cache[channel["id"]] = provider
            return provider

    def _build(self, channel: dict) -> ChannelProvider:
        from execution.lib.providers import green_api, sandbox

        if channel["provider"] == "sandbox" or (channel["provider"] == "green_api" and not channel.get("api_token_encrypted")):
            return sandbox.SandboxProvider(instance_id=channel["instance_id"])
        if channel["provider"] == "green_api":
            return green_api.GreenApiProvider(
                api_url=channel.get("api_url") or green_api.DEFAULT_API_URL,
                id_instance=channel["instance_id"],
                api_token=decrypt_secret(self._secret_key, channel["api_token_encrypted"]),
            )
        raise ConfigError(f"channel {channel['id']}: provider {channel['provider']!r} cannot send yet")
