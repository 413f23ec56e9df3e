"""Exceptions shared by every command; each maps to one CLI exit code."""

from __future__ import annotations


class AppError(Exception):
    """Base of every expected failure; `exit_code` is what a CLI returns for it."""

    exit_code = 1


class ConfigError(AppError):
    exit_code = 78  # EX_CONFIG


class NotFound(AppError):
    exit_code = 4


class LockBusy(AppError):
    exit_code = 75  # EX_TEMPFAIL


class DatabaseUnavailable(AppError):
    exit_code = 69  # EX_UNAVAILABLE


class MigrationError(AppError):
    exit_code = 65  # EX_DATAERR


class PendingMigrations(AppError):
    exit_code = 3


class ProviderError(AppError):
    exit_code = 70
