"""The model interface on its own: the real SDKs against the fake servers, error mapping, settings,
tool-input validation, the prompt helpers."""

import threading

import pytest

from execution.assistant_tools import BY_NAME
from execution.lib.tool_schema import ToolInputError, validate
from execution.lib.config import ConfigError, load_settings
from execution.lib.llm import (ClaudeBackend, ModelRejected, ModelUnavailable, OpenAICompatibleBackend, Prompt,
                               ToolCall, ToolResult, ToolSpec, backend_from_settings)
from execution.lib.prompting import apply_digits, history_messages, leaks
from tests.fakes import anthropic_server as A
from tests.fakes import openai_server as O

TOOL = ToolSpec("get_property", "one listing", {"type": "object", "properties": {"reference": {"type": "string"}},
                                                "required": ["reference"]})


def _prompt(*messages):
    return Prompt("You are a test assistant. " * 20, "Today is 2026-11-24.", (TOOL,),
                  messages or ({"role": "user", "text": "hi"},), 200)


@pytest.fixture
def anthropic_fake():
    with A.FakeAnthropic(api_key="k") as fake:
        yield fake


@pytest.fixture
def openai_fake():
    with O.FakeOpenAIChat(api_key="local-key", model="llama3.1") as fake:
        yield fake


def test_claude_tool_round_trip_and_usage(anthropic_fake):
    backend = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=anthropic_fake.url, max_retries=0)
    anthropic_fake.plan(A.turn("Let me look.", A.tool_use("get_property", {"reference": "NH-0001"}, id="toolu_1")),
                        A.text("NH-0001 is in Maadi."))
    first = backend.complete(_prompt())
    assert first.text == "Let me look." and first.tool_calls == (ToolCall("toolu_1", "get_property",
                                                                           {"reference": "NH-0001"}),)
    assert first.usage.input_tokens > 0 and first.usage.cache_write_tokens > 0 and first.stop_reason == "tool_use"
    second = backend.complete(_prompt({"role": "user", "text": "hi"},
                                      {"role": "assistant", "text": first.text, "tool_calls": first.tool_calls},
                                      {"role": "tool", "results": (ToolResult("toolu_1", '{"listing": {}}'),)}))
    assert second.text == "NH-0001 is in Maadi." and second.usage.cache_read_tokens > 0
    sent = anthropic_fake.requests[1]["messages"]
    assert sent[1]["content"][1]["type"] == "tool_use" and sent[2]["content"][0]["tool_use_id"] == "toolu_1"


def test_claude_retries_overload_itself_then_reports_unavailable(anthropic_fake):
    backend = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=anthropic_fake.url, max_retries=1)
    anthropic_fake.plan(A.error(529, retry_after=0), A.error(529, retry_after=0))
    with pytest.raises(ModelUnavailable, match="HTTP 529 overloaded_error"):
        backend.complete(_prompt())
    assert len(anthropic_fake.requests) == 2
    anthropic_fake.plan(A.error(429, retry_after=0), A.text("fine"))
    assert backend.complete(_prompt()).text == "fine"       # retry-after honoured by the SDK, then success


def test_claude_bad_key_is_rejected_without_retry(anthropic_fake):
    backend = ClaudeBackend(api_key="wrong", model="claude-sonnet-5-5", base_url=anthropic_fake.url, max_retries=2)
    with pytest.raises(ModelRejected) as err:
        backend.complete(_prompt())
    assert err.value.status == 401 and "wrong" not in str(err.value)
    assert len(anthropic_fake.calls()) == 1


def test_claude_connection_reset_is_unavailable(anthropic_fake):
    backend = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=anthropic_fake.url, max_retries=0)
    anthropic_fake.plan(A.reset())
    with pytest.raises(ModelUnavailable, match="connection"):
        backend.complete(_prompt())


@pytest.mark.parametrize("body", [b"not json", b'{"content": "a string"}', b'{"id": "msg_1"}',
                                  b'{"content": [{"type": "tool_use", "input": {}}]}',
                                  b'{"content": [{"type": "text", "text": null}]}'],
                         ids=["not-json", "content-not-a-list", "no-content", "tool-use-without-id", "text-null"])
def test_claude_answer_that_is_not_a_message_is_unavailable(anthropic_fake, body):
    """The body is read without the SDK's models: a broken one is the model's failure, never a crash."""
    backend = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=anthropic_fake.url, max_retries=0)
    anthropic_fake.plan(A.raw(200, body))
    with pytest.raises(ModelUnavailable, match="malformed response"):
        backend.complete(_prompt())


def test_a_model_client_the_sdk_cannot_make_is_a_configuration_error_at_start(monkeypatch):
    """Not an ImportError in every reply: a socks proxy without the package it needs fails at start-up."""
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1")
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1")
    with pytest.raises(ConfigError, match="cannot make the model client"):
        ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url="https://api.example.invalid", max_retries=0)


def test_each_thread_keeps_one_client_and_clients_share_one_tls_context(anthropic_fake):
    """Replies share SDK clients 16 threads to one (each client's connection pool walks all of its
    connections on every request); a thread always gets the same client."""
    backend = ClaudeBackend(api_key="k", model="claude-sonnet-5-5", base_url=anthropic_fake.url, max_retries=0,
                            connections=40)
    assert len(backend._clients) == 3
    seen: dict[int, list] = {}

    def use():
        mine = [backend.client for _ in range(3)]
        seen[threading.get_ident()] = mine
        backend.complete(_prompt())

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(a is b is c for a, b, c in seen.values())              # a thread keeps its client
    clients = {id(v[0]): v[0] for v in seen.values()}
    assert len(clients) == 3                                          # six threads, round robin over three
    contexts = {id(c._client._transport._pool._ssl_context) for c in clients.values()}
    assert len(contexts) == 1
    assert len(anthropic_fake.requests) == 6


def test_openai_compatible_tool_calls_and_errors(openai_fake):
    backend = OpenAICompatibleBackend(base_url=openai_fake.url, model="llama3.1", api_key="local-key", max_retries=0)
    openai_fake.plan(O.tool_calls([("get_property", {"reference": "NH-0001"}, "call_1")]), O.text("Done."))
    turn = backend.complete(_prompt())
    assert turn.tool_calls == (ToolCall("call_1", "get_property", {"reference": "NH-0001"}),)
    done = backend.complete(_prompt({"role": "user", "text": "hi"},
                                    {"role": "assistant", "text": "", "tool_calls": turn.tool_calls},
                                    {"role": "tool", "results": (ToolResult("call_1", "{}"),)}))
    assert done.text == "Done."
    messages = openai_fake.requests[1]["messages"]
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "tool", "tool_call_id": "call_1",
                                                                "content": "{}"}
    openai_fake.plan(O.tool_calls([("get_property", "{not json", "call_2")]))
    assert backend.complete(_prompt()).tool_calls[0].input == {"_unparsed": "{not json"}
    openai_fake.plan(O.error(503))
    with pytest.raises(ModelUnavailable, match="HTTP 503"):
        backend.complete(_prompt())
    openai_fake.plan(O.error(404, message="model 'nope' not found"))
    with pytest.raises(ModelRejected, match="HTTP 404"):
        backend.complete(_prompt())


def test_settings_choose_the_backend(tmp_path):
    def settings(**env):
        return load_settings({"APP_ENV": "development", **env}, env_file=None)

    assert backend_from_settings(settings()) is None
    assert backend_from_settings(settings(ANTHROPIC_API_KEY="sk-test-key")).name == "claude"
    local = settings(LLM_BASE_URL="http://127.0.0.1:11434/v1", LLM_MODEL="qwen2.5")
    assert backend_from_settings(local).name == "openai_compatible"
    both = settings(ANTHROPIC_API_KEY="sk-test-key", LLM_BASE_URL="http://x/v1", LLM_MODEL="m",
                    LLM_BACKEND="openai_compatible")
    assert backend_from_settings(both).name == "openai_compatible"
    assert backend_from_settings(both, choice="offline") is None
    for bad, message in [({"LLM_BACKEND": "gpt"}, "LLM_BACKEND must be"),
                         ({"LLM_BACKEND": "claude"}, "needs ANTHROPIC_API_KEY"),
                         ({"LLM_BACKEND": "openai_compatible"}, "needs LLM_BASE_URL"),
                         ({"ANTHROPIC_TIMEOUT_S": "90"}, "between 1 and 30")]:
        with pytest.raises(ConfigError, match=message):
            settings(**bad)


@pytest.mark.parametrize("tool, value, message", [
    ("get_property", {"reference": "NH-0001", "agent_id": 2}, "unknown field(s) ['agent_id']"),
    ("get_property", {}, "reference is required"),
    ("get_property", {"reference": "NH-0001'; DROP TABLE properties; --"}, "not in the expected format"),
    ("search_properties", {"price_max": -1}, "between 0"),
    ("search_properties", {"bedrooms_min": 99999999999999999999}, "between 0 and 20"),
    ("search_properties", {"bedrooms_min": True}, "whole number"),
    ("search_properties", {"property_types": ["castle"]}, "must be one of"),
    ("search_properties", {"query": "x" * 201}, "characters"),
    ("save_lead_details", {"financing": "crypto"}, "must be one of"),
    ("escalate_to_human", {"reason": "a", "category": "negotiation"}, "characters"),
    ("send_listing_media", {"reference": "NH-0001", "kind": "video"}, "must be one of"),
])
def test_tool_inputs_are_validated(tool, value, message):
    with pytest.raises(ToolInputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        validate(BY_NAME[tool].input_schema, value)


def test_arabic_digits_keep_references_latin():
    text = "شقة NH-0001 بسعر EGP 6,950,000 و ٣ غرف"
    assert apply_digits(text, language="ar", arabic_digits=True) == "شقة NH-0001 بسعر EGP ٦٬٩٥٠٬٠٠٠ و ٣ غرف"
    assert apply_digits("٦٬٩٥٠٬٠٠٠ NH-0001", language="ar", arabic_digits=False) == "6,950,000 NH-0001"
    assert apply_digits("EGP 6,950,000", language="en", arabic_digits=True) == "EGP 6,950,000"


def test_a_run_of_the_private_prompt_is_a_leak():
    private = "Never go below 6.5 million for Amber Court, and always mention the free parking spot."
    assert leaks("Sure: never go below 6.5 million for Amber Court!", private)
    assert leaks("Amber Court has free parking.", private) is None


def test_history_is_capped_by_turns_and_characters_and_ends_with_the_new_messages():
    history = [{"author": a, "body": f"turn {i}"} for i, a in enumerate(["customer", "ai", "agent", "customer", "ai"])]
    out = history_messages(history, [{"body": "new one"}], agent_name="Sara", turns=3, chars=1000)
    # The last three: the agent's turn 2 is dropped (a conversation starts with the customer).
    assert out == ({"role": "user", "text": "turn 3"}, {"role": "assistant", "text": "turn 4"},
                   {"role": "user", "text": "new one"})
    whole = history_messages(history, [{"body": "new one"}], agent_name="Sara", turns=10, chars=1000)
    assert whole[1] == {"role": "assistant", "text": "turn 1\n(Sara replied personally:) turn 2"}
    tight = history_messages(history, [{"body": "new one"}], agent_name="Sara", turns=10, chars=12)
    assert tight == ({"role": "user", "text": "new one"},)
