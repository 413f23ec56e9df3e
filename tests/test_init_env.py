import json
import re
import stat

from execution import init_env as cmd
from execution.lib.config import PROJECT_ROOT, load_settings


def test_writes_env_with_generated_secrets_once(tmp_path, capsys):
    target = tmp_path / ".env"
    assert cmd.main(["--example", str(PROJECT_ROOT / ".env.example"), "--target", str(target)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] is True and sorted(out["generated"]) == ["APP_SECRET_KEY", "DEMO_AGENT_PASSWORD"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    settings = load_settings({"APP_ENV": "test"}, env_file=target)  # test env demands a real secret
    assert len(settings.secret_key) >= 32 and settings.demo_agent_password
    before = target.read_text()
    assert cmd.main(["--example", str(PROJECT_ROOT / ".env.example"), "--target", str(target)]) == 0
    assert json.loads(capsys.readouterr().out)["written"] is False
    assert target.read_text() == before


def test_every_variable_read_by_config_is_in_the_example():
    example = (PROJECT_ROOT / ".env.example").read_text()
    config = (PROJECT_ROOT / "execution/lib/config.py").read_text()
    read = set(re.findall(r'(?:values, |values\.get\()"([A-Z][A-Z0-9_]+)"', config))
    assert {"APP_ENV", "DATABASE_URL", "APP_SECRET_KEY"} <= read
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.M))
    assert read - listed == set(), f"missing from .env.example: {sorted(read - listed)}"


def test_every_variable_read_by_config_is_documented_in_setup():
    config = (PROJECT_ROOT / "execution/lib/config.py").read_text()
    setup = (PROJECT_ROOT / "SETUP.md").read_text()
    read = set(re.findall(r'(?:values, |values\.get\()"([A-Z][A-Z0-9_]+)"', config))
    missing = sorted(v for v in read if f"`{v}`" not in setup)
    assert missing == [], f"missing from SETUP.md: {missing}"
