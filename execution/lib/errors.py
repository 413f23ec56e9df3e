"""Exceptions shared by every command; each maps to one CLI exit code."""

from __future__ import annotations


class AppError(Exception):
    """Base of every expected failure; `exit_code` is what a CLI returns for it, `http_status` what a route answers."""

    exit_code = 1
    http_status = 500


class ConfigError(AppError):
    exit_code = 78  # EX_CONFIG


class NotFound(AppError):
    exit_code = 4
    http_status = 404


class LockBusy(AppError):
    exit_code = 75  # EX_TEMPFAIL
    http_status = 409


class DatabaseUnavailable(AppError):
    exit_code = 69  # EX_UNAVAILABLE
    http_status = 503


class MigrationError(AppError):
    exit_code = 65  # EX_DATAERR


class PendingMigrations(AppError):
    exit_code = 3


class ProviderError(AppError):
    """A provider call failed; `status` is the HTTP status when there was one."""

    exit_code = 70
    http_status = 502

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None,
                 code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.code = code          # the provider's own error code (Meta: 131047, 130429, 190, ...)
        self.attempts = 1         # HTTP requests made before giving up (set by the retry policy)


class ProviderRetryable(ProviderError):
    """429, 5xx or no connection: safe to try again (the provider did not take the message)."""


class ProviderRejected(ProviderError):
    """A 4xx other than 429: the request is wrong or not allowed; retrying will not help."""


class ProviderQuotaExceeded(ProviderRejected):
    """Green API 466: the plan's monthly method or chat quota is used up."""


class ProviderOutcomeUnknown(ProviderError):
    """The request may have reached the provider (read timeout): do not blindly resend."""


class Unauthorized(AppError):
    exit_code = 77  # EX_NOPERM
    http_status = 401


class BadRequest(AppError):
    """Input refused with a reason (HTTP 400, or 413 when `too_large`)."""

    http_status = 400

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large
        if too_large:
            self.http_status = 413


class RetryLater(AppError):
    """An event arrived before what it refers to (a status before our send recorded its id)."""

    exit_code = 75


class InvalidData(AppError):
    """Input that fails validation: each problem says where (line or field) and why."""

    exit_code = 65  # EX_DATAERR
    http_status = 422

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message if not problems else f"{message}: " + "; ".join(problems[:20]))
        self.problems = problems or []


class OutsideWindow(AppError):
    """A free-form send to a chat whose customer-service window has closed (Meta: 24 h)."""

    exit_code = 65
    http_status = 409
    reason = "outside_window"


class TooManyAttempts(AppError):
    """A rate limit: the caller may try again after `retry_after_s`."""
    exit_code = 75
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(AppError):
    """Logged in, but this request may not be made (a missing or wrong CSRF token)."""
    exit_code = 77
    http_status = 403
