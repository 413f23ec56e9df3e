"""Build the one frozen settings object from the environment and `.env`.

This is the only module that reads the environment. Nothing happens at import:
call `load_settings()` from an entry point and pass the result down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from execution.lib.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"

APP_ENVS = ("development", "test", "production")
LOG_FORMATS = ("text", "json")
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "replace-me", "your-", "xxx", "todo")


@dataclass(frozen=True)
class Settings:
    app_env: str = "development"
    secret_key: str = field(default="", repr=False)
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    data_dir: Path = PROJECT_ROOT / "data"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"              # text | json (one JSON object per line)
    db_pool_min: int = 1
    db_pool_max: int = 20
    db_pool_wait_s: float = 5.0
    db_statement_timeout_ms: int = 5000
    db_connect_timeout_s: int = 5
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_model: str = "claude-sonnet-5-5"
    anthropic_timeout_s: float = 30.0
    anthropic_max_retries: int = 2
    anthropic_base_url: str | None = None
    llm_backend: str | None = None        # offline | claude | openai_compatible; None: from the keys set
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    run_worker: bool = True
    reply_workers: int = 8
    demo_agent_email: str = "sara@nile-homes.example"
    demo_agent_password: str | None = field(default=None, repr=False)
    health_token: str | None = field(default=None, repr=False)
    simulator: bool | None = None     # None: on while no real channel is connected (never in production)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def database_kind(self) -> str:
        return "external" if self.database_url else "embedded"

    @property
    def redis_kind(self) -> str:
        return "external" if self.redis_url else "embedded"


def _is_placeholder(value: str | None) -> bool:
    if not value:
        return True
    lowered = value.strip().lower()
    return any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


def _read_env_file(env_file: Path | None) -> dict[str, str]:
    if env_file is None or not Path(env_file).is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}


def _as_int(values: Mapping[str, str], name: str, default: int) -> int:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _as_float(values: Mapping[str, str], name: str, default: float) -> float:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _as_bool(values: Mapping[str, str], name: str, default: bool) -> bool:
    raw = values.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _optional(values: Mapping[str, str], name: str) -> str | None:
    raw = values.get(name, "").strip()
    return raw or None


def env_value(name: str, default: str | None = None, *, env_file: Path | None = DEFAULT_ENV_FILE) -> str | None:
    """One value from the environment over `.env`, for readers that need no Settings (and must not
    fail on a missing secret): DIRECTIVES_DIR (where the live SOPs are), WEB_CONCURRENCY."""
    raw = os.environ.get(name)
    if raw is None:
        raw = _read_env_file(env_file).get(name)
    return raw.strip() if raw and raw.strip() else default


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = DEFAULT_ENV_FILE
) -> Settings:
    """Merge `.env` under the process environment and validate the result."""
    values: dict[str, str] = _read_env_file(env_file)
    values.update(os.environ if environ is None else environ)

    app_env = values.get("APP_ENV", "development").strip().lower() or "development"
    if app_env not in APP_ENVS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(APP_ENVS)}, got {app_env!r}")

    data_dir = Path(values.get("DATA_DIR", "").strip() or PROJECT_ROOT / "data")
    if not data_dir.is_absolute():
        data_dir = PROJECT_ROOT / data_dir

    settings = Settings(
        app_env=app_env,
        secret_key=values.get("APP_SECRET_KEY", "").strip(),
        database_url=_optional(values, "DATABASE_URL"),
        redis_url=_optional(values, "REDIS_URL"),
        data_dir=data_dir,
        host=values.get("HOST", "").strip() or "127.0.0.1",
        port=_as_int(values, "PORT", 8000),
        log_level=(values.get("LOG_LEVEL", "").strip() or "INFO").upper(),
        log_format=(values.get("LOG_FORMAT", "").strip() or "text").lower(),
        db_pool_min=_as_int(values, "DB_POOL_MIN", 1),
        db_pool_max=_as_int(values, "DB_POOL_MAX", 20),
        db_pool_wait_s=_as_float(values, "DB_POOL_WAIT_S", 5.0),
        db_statement_timeout_ms=_as_int(values, "DB_STATEMENT_TIMEOUT_MS", 5000),
        db_connect_timeout_s=_as_int(values, "DB_CONNECT_TIMEOUT_S", 5),
        anthropic_api_key=_optional(values, "ANTHROPIC_API_KEY"),
        anthropic_model=values.get("ANTHROPIC_MODEL", "").strip() or "claude-sonnet-5-5",
        anthropic_timeout_s=_as_float(values, "ANTHROPIC_TIMEOUT_S", 30.0),
        anthropic_max_retries=_as_int(values, "ANTHROPIC_MAX_RETRIES", 2),
        anthropic_base_url=_optional(values, "ANTHROPIC_BASE_URL"),
        llm_backend=(_optional(values, "LLM_BACKEND") or "").lower() or None,
        llm_base_url=_optional(values, "LLM_BASE_URL"),
        llm_model=_optional(values, "LLM_MODEL"),
        llm_api_key=_optional(values, "LLM_API_KEY"),
        run_worker=_as_bool(values, "RUN_WORKER", True),
        reply_workers=_as_int(values, "REPLY_WORKERS", 8),
        demo_agent_email=values.get("DEMO_AGENT_EMAIL", "").strip() or "sara@nile-homes.example",
        demo_agent_password=_optional(values, "DEMO_AGENT_PASSWORD"),
        health_token=_optional(values, "HEALTH_TOKEN"),
        simulator=_as_bool(values, "SIMULATOR", False) if _optional(values, "SIMULATOR") else None,
    )
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if not 1 <= settings.db_pool_min <= settings.db_pool_max:
        raise ConfigError("DB_POOL_MIN must be at least 1 and at most DB_POOL_MAX")
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json, got {settings.log_format!r}")
    if not 1 <= settings.reply_workers <= 1024:
        raise ConfigError("REPLY_WORKERS must be between 1 and 1024")
    if settings.llm_backend not in (None, "offline", "claude", "openai_compatible"):
        raise ConfigError(f"LLM_BACKEND must be offline, claude or openai_compatible, got {settings.llm_backend!r}")
    if settings.llm_backend == "claude" and not settings.anthropic_api_key:
        raise ConfigError("LLM_BACKEND=claude needs ANTHROPIC_API_KEY")
    if settings.llm_backend == "openai_compatible" and not (settings.llm_base_url and settings.llm_model):
        raise ConfigError("LLM_BACKEND=openai_compatible needs LLM_BASE_URL and LLM_MODEL")
    if not 1 <= settings.anthropic_timeout_s <= 30:
        raise ConfigError("ANTHROPIC_TIMEOUT_S must be between 1 and 30 seconds (a customer is waiting)")
    if not 0 <= settings.anthropic_max_retries <= 5:
        raise ConfigError("ANTHROPIC_MAX_RETRIES must be between 0 and 5")
    if settings.app_env == "development":
        return
    problems = []
    if _is_placeholder(settings.secret_key) or len(settings.secret_key) < 32:
        problems.append("APP_SECRET_KEY must be a real secret of at least 32 characters")
    if settings.anthropic_api_key is not None and _is_placeholder(settings.anthropic_api_key):
        problems.append("ANTHROPIC_API_KEY looks like a placeholder; set a real key or leave it empty")
    token = settings.health_token
    if token is not None and (_is_placeholder(token) or len(token) < 16):
        problems.append("HEALTH_TOKEN must be a real secret of at least 16 characters, or empty")
    if settings.is_production:
        if not settings.database_url:
            problems.append("DATABASE_URL is required in production (the embedded database is for development)")
        if not settings.redis_url:
            problems.append("REDIS_URL is required in production (the embedded Redis is for development)")
        if settings.simulator:
            problems.append("SIMULATOR=true is not allowed in production (the simulator reads conversations unlogged)")
    if problems:
        raise ConfigError(f"refusing to start with APP_ENV={settings.app_env}: " + "; ".join(problems))
