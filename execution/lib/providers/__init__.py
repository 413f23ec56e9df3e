"""Channel providers: one module per vendor behind the `ChannelProvider` interface, and the registry.

The registry is the only place that maps a channel's provider name or a webhook route to code.
"""

from __future__ import annotations

import functools
import threading

from execution.lib.errors import ConfigError, NotFound
from execution.lib.providers.base import ChannelProvider


@functools.cache
def _classes() -> dict[str, type[ChannelProvider]]:
    # Imported on first use: the HTTP clients they load have no business in a process that never sends.
    # Then kept: an import statement takes the import lock on every call.
    from execution.lib.providers.green_api import GreenApiProvider
    from execution.lib.providers.meta_cloud import MetaCloudProvider
    from execution.lib.providers.sandbox import SandboxProvider

    return {cls.name: cls for cls in (GreenApiProvider, SandboxProvider, MetaCloudProvider)}


def provider_class(name: str) -> type[ChannelProvider]:
    """The provider a channel row or a stored event names; ConfigError for one we do not have."""
    cls = _classes().get(name)
    if cls is None:
        raise ConfigError(f"provider {name!r} is not supported")
    return cls


def route_providers(route: str) -> tuple[type[ChannelProvider], ...]:
    """The providers whose webhooks arrive at POST /webhooks/{route} (the sandbox shares Green API's)."""
    found = tuple(cls for cls in _classes().values() if cls.route == route)
    if not found:
        raise NotFound(f"no webhook route {route!r}")
    return found


def unhealthy_states() -> list[str]:
    """Every provider's instance states in which a number cannot work (for health reports)."""
    return sorted({state for cls in _classes().values() for state in cls.unhealthy_states})


class ProviderRegistry:
    """Builds, and keeps one per channel, the provider that sends for a channel row."""

    def __init__(self, *, secret_key: str, overrides: dict[int, ChannelProvider] | None = None) -> None:
        self._secret_key = secret_key
        self._cache: dict[int, ChannelProvider] = dict(overrides or {})
        self._keys: dict[int, tuple] = {}     # the credentials each cached sender was built from
        self._lock = threading.Lock()

    def for_channel(self, channel: dict) -> ChannelProvider:
        """The channel's sender; rebuilt when its stored credentials change (a re-registered token)."""
        with self._lock:
            key = (channel.get("api_token_encrypted"), channel.get("api_url"))
            cached = self._cache.get(channel["id"])
            provider = cached if cached is not None and self._keys.get(channel["id"], key) == key else None
            if provider is None:
                cls = provider_class(channel["provider"])
                if not channel.get("api_token_encrypted") and cls.needs_credentials:
                    # Connected but no credentials yet: record what would be sent, send nothing.
                    recorder = next((c for c in _classes().values() if not c.needs_credentials and c.route == cls.route),
                                    None)
                    if recorder is None:
                        raise ConfigError(f"channel {channel['id']}: {cls.name} has no credentials; register it again")
                    cls = recorder
                provider = cls.from_channel(channel, secret_key=self._secret_key)
                self._cache[channel["id"]] = provider
                self._keys[channel["id"]] = key
            return provider
