import pytest

from execution.lib.config import load_settings
from execution.lib.errors import ConfigError

GOOD_SECRET = "k" * 12 + "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_development_defaults_use_embedded_services():
    s = load_settings({}, env_file=None)
    assert s.app_env == "development"
    assert s.database_kind == "embedded" and s.redis_kind == "embedded"
    assert s.port == 8000


def test_production_refuses_placeholder_and_missing_secrets():
    with pytest.raises(ConfigError) as info:
        load_settings({"APP_ENV": "production", "APP_SECRET_KEY": "change-me"}, env_file=None)
    message = str(info.value)
    assert "APP_SECRET_KEY" in message and "DATABASE_URL" in message and "REDIS_URL" in message


def test_production_accepts_real_settings():
    s = load_settings(
        {
            "APP_ENV": "production",
            "APP_SECRET_KEY": GOOD_SECRET,
            "DATABASE_URL": "postgresql://db.internal/app",
            "REDIS_URL": "redis://cache.internal:6379/0",
        },
        env_file=None,
    )
    assert s.is_production and s.database_kind == "external"


def test_secrets_are_not_in_repr():
    s = load_settings(
        {"APP_SECRET_KEY": GOOD_SECRET, "DATABASE_URL": "postgresql://u:pw-123@h/db", "ANTHROPIC_API_KEY": "sk-x"},
        env_file=None,
    )
    text = repr(s)
    assert GOOD_SECRET not in text and "pw-123" not in text and "sk-x" not in text


@pytest.mark.parametrize(
    "env, field",
    [({"PORT": "eighty"}, "PORT"), ({"RUN_WORKER": "maybe"}, "RUN_WORKER"), ({"APP_ENV": "staging"}, "APP_ENV")],
)
def test_bad_values_name_the_variable(env, field):
    with pytest.raises(ConfigError, match=field):
        load_settings(env, env_file=None)


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9001\nLOG_LEVEL=debug\n")
    s = load_settings({"PORT": "9002"}, env_file=env_file)
    assert s.port == 9002 and s.log_level == "DEBUG"
