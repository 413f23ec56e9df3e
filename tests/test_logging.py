"""LOG_FORMAT=json: one JSON object per line with its fields, and at DEBUG a whole conversation leaves no
customer text, phone number, token or secret in any log line."""

import dataclasses
import io
import json
import logging
import re
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution.lib import cli
from execution.lib.cli import QUIET_LOGGERS, JsonFormatter, configure_logging, run_command
from execution.lib.config import load_settings
from execution.lib.errors import ConfigError
from execution.lib.resources import Resources
from main import create_app
from tests.conftest import SNAPSHOT, WEBHOOK_TOKEN, StaticDirectives, load_fixture
from tests.fakes import anthropic_server as A
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"time", "level", "logger", "message"}
ANTHROPIC_KEY = "sk-ant-test-logging-0123456789"
FORGED = "forged-webhook-token-9f8e7d6c"
CUSTOMER_TEXT = "Zanzibar quokka 7741"
CUSTOMER = "201099887766"                       # the customer's number
SECOND_CUSTOMER = "201055544433"
AGENT_PHONE = "15550000000"                     # the agent's own number (green_channel), where alerts go


@pytest.fixture
def logging_state():
    """Puts the root logger's handlers and level, and the quietened libraries' levels, back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


@contextmanager
def bare_root():
    """The root logger with no handler, as an entry point finds it; pytest's handlers (caplog's among them)
    are put back beside whatever was installed."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = [*root.handlers, *saved]


@pytest.fixture
def json_log(logging_state):
    """configure_logging("DEBUG", "json") as an entry point runs it, into a buffer (caplog sees every record too)."""
    buffer = io.StringIO()
    with bare_root() as root:
        configure_logging("DEBUG", "json", stream=buffer)
        (ours,) = root.handlers
    assert isinstance(ours.formatter, JsonFormatter) and root.level == logging.DEBUG
    yield buffer


def _lines(buffer: io.StringIO) -> list[dict]:
    entries = []
    for line in buffer.getvalue().splitlines():
        entry = json.loads(line)                  # every line is one JSON object
        assert isinstance(entry, dict) and FIELDS <= entry.keys(), line
        entries.append(entry)
    return entries


# ------------------------------------------------------------------ the setting


def test_log_format_is_text_or_json():
    assert load_settings({}, env_file=None).log_format == "text"
    assert load_settings({"LOG_FORMAT": " JSON "}, env_file=None).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json, got 'yaml'"):
        load_settings({"LOG_FORMAT": "yaml"}, env_file=None)


def test_log_format_is_documented():
    example, setup = (ROOT / ".env.example").read_text(), (ROOT / "SETUP.md").read_text()
    assert "\nLOG_FORMAT=text\n" in example and "| `LOG_FORMAT` |" in setup


# ------------------------------------------------------------------ the formatter


def test_a_json_line_has_the_fields_the_extras_and_only_the_exception_type():
    logger = logging.getLogger("execution.example")
    try:
        raise ValueError(f"customer said {CUSTOMER_TEXT}")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "answer: conversation %s failed",
                                   (42,), sys.exc_info(), extra={"conversation_id": 42, "outcome": "failed",
                                                                 "at": datetime(2024, 5, 1, tzinfo=timezone.utc)})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "execution.example"
    assert entry["message"] == "answer: conversation 42 failed"
    assert (entry["conversation_id"], entry["outcome"], entry["at"]) == (42, "failed", "2024-05-01T00:00:00+00:00")
    assert entry["exception"] == "ValueError" and re.fullmatch(r"test_logging\.py:\d+", entry["exception_at"])
    assert CUSTOMER_TEXT not in line and "Traceback" not in line
    at = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert entry["time"].endswith("Z") and abs(datetime.now(timezone.utc) - at) < timedelta(minutes=1)


def test_run_command_logs_json_lines_when_asked(logging_state, monkeypatch, capsys):
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    with bare_root() as root:
        code = run_command(lambda res: logging.getLogger("execution.example").info(
            "done: %s event(s)", 3, extra={"conversation_id": 7}), db=False)
        (installed,) = root.handlers
    assert code == 0 and isinstance(installed.formatter, JsonFormatter)
    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert {k: entries[-1][k] for k in ("level", "logger", "message", "conversation_id")} == {
        "level": "INFO", "logger": "execution.example", "message": "done: 3 event(s)", "conversation_id": 7}


def test_text_stays_the_default(logging_state):
    with bare_root() as root:
        configure_logging("INFO", stream=io.StringIO())
        (installed,) = root.handlers
        configure_logging("DEBUG", "json", stream=io.StringIO())   # a second call changes nothing, as basicConfig
        assert root.handlers == [installed] and root.level == logging.INFO
    assert not isinstance(installed.formatter, JsonFormatter) and installed.formatter._fmt == cli.TEXT_FORMAT


def test_the_model_sdks_debug_lines_stay_off_at_debug(json_log):
    # The SDKs log each request's options at DEBUG: the prompt, with the customer's words in it.
    for name in ("anthropic._base_client", "openai._base_client"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO, name
    assert logging.getLogger("execution.worker").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)   # its Green API URLs are redacted


# ------------------------------------------------------------------ a whole conversation at DEBUG


def _customer(text: str, n: int, chat: str) -> dict:
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"LOGS{n:08d}"
    body["senderData"]["chatId"] = body["senderData"]["sender"] = chat
    body["senderData"]["chatName"] = body["senderData"]["senderName"] = f"{CUSTOMER_TEXT} {n}"
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


def _sent(fake, number: str) -> list[str]:
    return [c["body"]["message"] for c in fake.calls("sendMessage") if c["body"]["chatId"].startswith(number)]


def test_a_whole_conversation_at_debug_leaks_nothing(json_log, caplog, resources, green_channel, fake_green_api):
    fake_claude = A.FakeAnthropic(api_key=ANTHROPIC_KEY, default_text="Happy to help: which area do you prefer?")
    fake_claude.start()
    try:
        settings = dataclasses.replace(resources.settings, log_level="DEBUG", log_format="json",
                                       anthropic_api_key=ANTHROPIC_KEY, anthropic_base_url=fake_claude.url,
                                       anthropic_timeout_s=5, anthropic_max_retries=0)
        res = Resources(settings, resources.db, resources.redis, "test", "test")
        # The model fails once (the offline responder answers and a warning is logged), then answers.
        fake_claude.plan(A.error(500, message=f"overloaded by {CUSTOMER_TEXT}"))
        with TestClient(create_app(res, run_worker=True, directives=StaticDirectives(SNAPSHOT))) as client:
            auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
            chat, other = f"{CUSTOMER}@c.us", f"{SECOND_CUSTOMER}@c.us"
            r = client.post("/webhooks/green-api", json=_customer(f"{CUSTOMER_TEXT}: a 2-bedroom flat?", 1, chat),
                            headers=auth)
            assert r.status_code == 200
            wait_for(lambda: _sent(fake_green_api, CUSTOMER))
            client.post("/webhooks/green-api", json=_customer(f"{CUSTOMER_TEXT}, any villas?", 2, other), headers=auth)
            wait_for(lambda: _sent(fake_green_api, SECOND_CUSTOMER))
            client.post("/webhooks/green-api", json=_customer(f"{CUSTOMER_TEXT}, I want to speak to a human", 3, chat),
                        headers=auth)
            alert = wait_for(lambda: _sent(fake_green_api, AGENT_PHONE))
            forged = client.post("/webhooks/green-api", json=_customer(CUSTOMER_TEXT, 4, chat),
                                 headers={"Authorization": f"Bearer {FORGED}"})
            assert forged.status_code == 401
            wait_for(lambda: len(_sent(fake_green_api, CUSTOMER)) == 2)
        calls = fake_claude.calls()
    finally:
        fake_claude.stop()

    # The flow really carried every secret: the customer's words and number reached the agent's alert,
    # the model was asked (and failed once), the Green API token was in every send's URL.
    assert CUSTOMER_TEXT in alert[0] and CUSTOMER in alert[0]
    assert [c["status"] for c in calls] == [500, 200]
    assert all(c["token_ok"] for c in fake_green_api.calls("sendMessage"))
    entries = _lines(json_log)
    loggers = {e["logger"] for e in entries}
    assert {"execution.lib.delivery", "execution.generate_ai_response"} <= loggers, loggers
    assert any(e["level"] == "WARNING" and "model claude failed" in e["message"] for e in entries)
    # DEBUG lines of the libraries were on: urllib3's request lines, with the Green API token blanked out.
    assert any(e["logger"] == "urllib3.connectionpool" and "/sendMessage/*** " in e["message"] for e in entries)

    secrets = [CUSTOMER_TEXT, "Zanzibar", CUSTOMER, f"+{CUSTOMER}", f"{CUSTOMER}@c.us", SECOND_CUSTOMER, AGENT_PHONE,
               WEBHOOK_TOKEN, FORGED, fake_green_api.token, ANTHROPIC_KEY, settings.secret_key, "speak to a human"]
    everything = {"json lines": json_log.getvalue(), "records (text format, tracebacks included)": caplog.text}
    for record in caplog.records:       # the raw record too: its arguments and any extra field
        everything[f"record {record.name}:{record.lineno}"] = repr(record.__dict__)
    leaks = [f"{where}: {secret!r}" for where, text in everything.items() for secret in secrets if secret in text]
    assert leaks == []
