"""HTTP plumbing shared by the providers that send over REST: the retry policy and transport errors.

What each failure means for a send is decided here once: a refused connection or a connect timeout
never reached the provider (retryable); a read timeout or a dropped connection may have (outcome
unknown: never resent blindly).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from tenacity import retry, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from execution.lib.errors import ProviderError, ProviderOutcomeUnknown, ProviderRetryable

if TYPE_CHECKING:  # requests is imported where it is used: urllib3 probes sockets at import time
    import requests


def retry_policy(*, max_attempts: int, max_total_s: float, backoff_s: float):
    """Bounded retries (attempts and time) of ProviderRetryable only, exponential backoff."""
    return retry(
        retry=retry_if_exception_type(ProviderRetryable),
        stop=stop_after_attempt(max_attempts) | stop_after_delay(max_total_s),
        wait=wait_exponential(multiplier=backoff_s, max=max(backoff_s * 8, 0.01)),
        reraise=True,
    )


def counted(retrying, once):
    """Run `once` under a retry policy and count the HTTP attempts it made: (result, attempts).

    A ProviderError that ends the retries carries the count as `.attempts`.
    """
    attempts = 0

    def attempt(*args):
        nonlocal attempts
        attempts += 1
        return once(*args)

    def run(*args):
        try:
            return retrying(attempt)(*args), attempts
        except ProviderError as exc:
            exc.attempts = attempts
            raise

    return run


def post(session: requests.Session, url: str, *, method: str, timeout: tuple[float, float], **kwargs):
    """One POST; transport failures become ProviderRetryable or ProviderOutcomeUnknown (no URL in the text)."""
    import requests

    errors = requests.exceptions
    try:
        return session.post(url, timeout=timeout, **kwargs)
    except errors.ConnectTimeout:
        raise ProviderRetryable(f"{method}: connect timeout") from None
    except errors.ReadTimeout:
        raise ProviderOutcomeUnknown(f"{method}: no answer within {timeout[1]:g}s") from None
    except errors.ConnectionError as exc:
        if _never_connected(exc):
            raise ProviderRetryable(f"{method}: connection refused") from None
        raise ProviderOutcomeUnknown(f"{method}: connection lost") from None


def new_session() -> requests.Session:
    """A requests session that reads the environment's proxy and CA settings once per host.

    A plain session reads them on every request (walking the whole environment: a fifth of a send's
    interpreter time). They are settings of the process, fixed when it starts."""
    return _session_class()()


@functools.cache
def _session_class() -> type:
    import requests

    class Session(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self._environment: dict[str, dict] = {}

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            if proxies or stream is not None or verify is not None or cert is not None or not self.trust_env:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            origin = "/".join(url.split("/", 3)[:3])        # scheme://host:port
            settings = self._environment.get(origin)
            if settings is None:
                settings = self._environment[origin] = super().merge_environment_settings(url, {}, None, None, None)
            return {**settings, "proxies": dict(settings["proxies"])}

    return Session


def _never_connected(exc: Exception) -> bool:
    text = repr(exc.args)
    return "NewConnectionError" in text or "Connection refused" in text or "Name or service not known" in text
