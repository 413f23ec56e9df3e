"""The fake LLM servers against real clients: the `anthropic` SDK, `requests`, and the `openai` SDK if installed."""

from __future__ import annotations

import time

import anthropic
import pytest
import requests

from tests.fakes import anthropic_server as A
from tests.fakes import openai_server as O

import openai  # requirements-dev: the OpenAI-compatible backend is tested with the real SDK

TOOLS = [{"name": "search_properties", "description": "Search the agency's listings.",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
SYSTEM = "You are the assistant of a real-estate agency. Answer briefly. " * 20
USER = [{"role": "user", "content": "Any flats in Lisbon?"}]


@pytest.fixture
def fake():
    server = A.FakeAnthropic().start()
    yield server
    server.stop()


def client(fake, *, max_retries: int = 0, timeout: float = 2.0, api_key: str = "test-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=fake.url, max_retries=max_retries, timeout=timeout)


def ask(c: anthropic.Anthropic, messages=None, **kwargs):
    return c.messages.create(model="claude-test", max_tokens=256, messages=messages or USER, **kwargs)


# ------------------------------------------------------------------ Anthropic: answers


def test_plain_text_turn_is_recorded_and_answered(fake):
    fake.plan(A.text("Three flats in Lisbon."))
    message = ask(client(fake), system=SYSTEM)

    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == "claude-test"
    assert message.stop_reason == "end_turn"
    assert [(b.type, b.text) for b in message.content] == [("text", "Three flats in Lisbon.")]
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    body = fake.requests[0]
    assert body["model"] == "claude-test" and body["max_tokens"] == 256
    assert body["system"] == SYSTEM and body["messages"] == USER
    assert fake.calls()[0]["headers"]["anthropic-version"]


def test_default_answer_when_nothing_is_planned(fake):
    assert ask(client(fake)).content[0].text == A.DEFAULT_TEXT
    assert ask(client(fake)).content[0].text == A.DEFAULT_TEXT


def test_tool_use_then_tool_result_round_trip(fake):
    fake.plan(A.turn(A.text("Let me look."), A.tool_use("search_properties", {"city": "Lisbon"})),
              A.text("Two flats: Rua Augusta 10 and Alfama 3."))
    c = client(fake)
    first = ask(c, tools=TOOLS, tool_choice={"type": "auto"})

    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert call.name == "search_properties" and call.input == {"city": "Lisbon"} and call.id.startswith("toolu_")
    assert fake.requests[0]["tools"] == TOOLS and fake.requests[0]["tool_choice"] == {"type": "auto"}

    follow_up = USER + [first.to_param(), {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call.id, "content": "Rua Augusta 10; Alfama 3"}]}]
    second = ask(c, follow_up, tools=TOOLS)

    assert second.stop_reason == "end_turn" and second.content[0].text.startswith("Two flats")
    assert fake.tool_results() == [{"type": "tool_result", "tool_use_id": call.id,
                                    "content": "Rua Augusta 10; Alfama 3"}]
    assert fake.tool_results(0) == []
    assert len(fake.requests) == 2


def test_tool_use_with_a_fixed_id(fake):
    fake.plan(A.tool_use("search_properties", {"city": "Porto"}, id="toolu_fixed"))
    assert ask(client(fake), tools=TOOLS).content[0].id == "toolu_fixed"


def test_responder_answers_from_the_conversation():
    def responder(body):
        results = [b for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list)
                   for b in m["content"] if b.get("type") == "tool_result"]
        if not results:
            return A.tool_use("search_properties", {"city": "Lisbon"})
        return A.text(f"Found: {results[-1]['content']}")

    with A.FakeAnthropic(responder=responder) as fake:
        c = client(fake)
        first = ask(c, tools=TOOLS)
        call = first.content[0]
        second = ask(c, USER + [first.to_param(), {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "T2 in Alfama, 350000 EUR"}]}], tools=TOOLS)
    assert second.content[0].text == "Found: T2 in Alfama, 350000 EUR"


def test_a_tool_use_left_without_tool_result_is_refused_like_the_real_api(fake):
    fake.plan(A.tool_use("search_properties", {"city": "Lisbon"}))
    c = client(fake)
    first = ask(c, tools=TOOLS)
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(c, USER + [first.to_param(), {"role": "user", "content": "and?"}], tools=TOOLS)
    assert "`tool_use` ids were found without `tool_result` blocks" in err.value.api_message
    assert fake.pending() == 0


def test_streaming_gives_the_same_message(fake):
    fake.plan(A.turn(A.text("Searching Lisbon now."), A.tool_use("search_properties", {"city": "Lisbon"})))
    with client(fake).messages.stream(model="claude-test", max_tokens=256, messages=USER, tools=TOOLS) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "Searching Lisbon now."
    assert final.stop_reason == "tool_use" and final.content[1].input == {"city": "Lisbon"}


# ------------------------------------------------------------------ Anthropic: usage and prompt caching


def test_usage_reports_cache_creation_then_cache_reads(fake):
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    c = client(fake)
    first, second = ask(c, system=system, tools=TOOLS).usage, ask(c, system=system, tools=TOOLS).usage

    assert first.cache_creation_input_tokens > 0 and first.cache_read_input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens == first.input_tokens  # the uncached tail: the same user message
    total = lambda u: u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens  # noqa: E731
    assert total(first) == total(second)

    changed = [{"type": "text", "text": SYSTEM + " Changed.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    third = ask(c, system=changed, tools=TOOLS).usage
    assert third.cache_read_input_tokens == 0 and third.cache_creation.ephemeral_1h_input_tokens > 0


def test_no_cache_control_no_cache_tokens(fake):
    c = client(fake)
    for _ in range(2):
        usage = ask(c, system=SYSTEM, tools=TOOLS).usage
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


# ------------------------------------------------------------------ Anthropic: errors and retries


def test_429_with_retry_after_is_retried_then_succeeds(fake):
    fake.plan(A.error(429, retry_after=0.01), A.error(429, retry_after=0.01), A.text("made it"))
    message = ask(client(fake, max_retries=2))

    assert message.content[0].text == "made it"
    assert len(fake.requests) == 3
    assert [c["headers"]["x-stainless-retry-count"] for c in fake.calls()] == ["0", "1", "2"]
    assert [c["status"] for c in fake.calls()] == [429, 429, 200]


def test_the_sdk_waits_as_long_as_retry_after_ms_says(fake):
    # Without the header the first retry waits 0.375-0.5 s; 600 ms can only come from the header.
    fake.plan(A.error(429, retry_after_ms=600), A.text("made it"))
    assert ask(client(fake, max_retries=1)).content[0].text == "made it"
    first, second = fake.calls()
    assert second["at"] - first["at"] >= 0.6


def test_429_error_body_and_headers_as_the_sdk_sees_them(fake):
    fake.plan(A.error(429, "rate_limit_error", "Slow down.", retry_after=7))
    with pytest.raises(anthropic.RateLimitError) as err:
        ask(client(fake))
    e = err.value
    assert e.status_code == 429 and e.type == "rate_limit_error" and e.api_message == "Slow down."
    assert e.response.headers["retry-after"] == "7" and e.request_id.startswith("req_")
    assert e.body["type"] == "error" and e.body["error"] == {"type": "rate_limit_error", "message": "Slow down."}


def test_429_retries_exhausted_raises(fake):
    fake.plan(*[A.error(429, retry_after_ms=5)] * 3)
    with pytest.raises(anthropic.RateLimitError):
        ask(client(fake, max_retries=2))
    assert len(fake.requests) == 3


@pytest.mark.parametrize("status, kind, exc", [(529, "overloaded_error", anthropic.OverloadedError),
                                               (500, "api_error", anthropic.InternalServerError)])
def test_server_errors_are_retried(fake, status, kind, exc):
    fake.plan(A.error(status, retry_after_ms=5), A.text("recovered"))
    assert ask(client(fake, max_retries=2)).content[0].text == "recovered"
    assert len(fake.requests) == 2

    fake.plan(A.error(status))
    with pytest.raises(exc) as err:
        ask(client(fake, max_retries=0))
    assert err.value.status_code == status and err.value.type == kind


@pytest.mark.parametrize("status, exc", [(400, anthropic.BadRequestError), (401, anthropic.AuthenticationError),
                                         (403, anthropic.PermissionDeniedError)])
def test_client_errors_are_not_retried(fake, status, exc):
    fake.plan(A.error(status), A.text("never reached"))
    with pytest.raises(exc) as err:
        ask(client(fake, max_retries=2))
    assert err.value.type == A.ERROR_TYPES[status]
    assert len(fake.requests) == 1 and fake.pending() == 1


def test_wrong_key_is_refused_with_401():
    with A.FakeAnthropic(api_key="the-right-key") as fake:
        with pytest.raises(anthropic.AuthenticationError) as err:
            ask(client(fake, max_retries=2, api_key="a-wrong-key"))
        assert err.value.api_message == "invalid x-api-key" and len(fake.requests) == 1
        assert ask(client(fake, api_key="the-right-key")).stop_reason == "end_turn"


def test_slow_answer_beyond_the_timeout_raises_api_timeout_error(fake):
    fake.plan(A.slow(5, then=A.text("too late")))  # stop() cuts the wait short
    with pytest.raises(anthropic.APITimeoutError):
        ask(client(fake, timeout=0.3))
    assert len(fake.requests) == 1


def test_slow_answer_within_the_timeout_arrives(fake):
    fake.plan(A.slow(0.2, then=A.text("worth the wait")))
    started = time.monotonic()
    assert ask(client(fake, timeout=2)).content[0].text == "worth the wait"
    assert time.monotonic() - started >= 0.2


def test_reset_connection_is_a_connection_error_and_retried(fake):
    fake.plan(A.reset())
    with pytest.raises(anthropic.APIConnectionError) as err:
        ask(client(fake))
    assert not isinstance(err.value, anthropic.APITimeoutError)

    fake.plan(A.reset(), A.text("second try"))
    assert ask(client(fake, max_retries=1)).content[0].text == "second try"
    assert [c["status"] for c in fake.calls()] == ["reset", "reset", 200]


def test_the_sdk_sends_the_key_as_a_bearer_authorization_header(fake):
    ask(client(fake, api_key="sk-ant-test-123"))
    call = fake.calls()[0]
    assert call["auth_header"] == "authorization"
    assert call["headers"]["authorization"] == "Bearer sk-ant-test-123"
    assert "x-api-key" not in call["headers"]


# ------------------------------------------------------------------ OpenAI-compatible: with requests


@pytest.fixture
def chat():
    server = O.FakeOpenAIChat(api_key="local-key").start()
    yield server
    server.stop()


def post(chat, body, *, key="local-key", timeout=2.0):
    return requests.post(f"{chat.url}/chat/completions", json=body, timeout=timeout,
                         headers={"Authorization": f"Bearer {key}"})


BODY = {"model": "qwen2.5:7b", "messages": [{"role": "user", "content": "Any flats in Porto?"}]}


def test_openai_text(chat):
    chat.plan(O.text("One flat in Porto."))
    answer = post(chat, BODY).json()
    assert answer["object"] == "chat.completion" and answer["model"] == "qwen2.5:7b"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "One flat in Porto."}
    assert answer["choices"][0]["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert chat.requests == [BODY] and chat.calls()[0]["authorization"] == "Bearer local-key"


def test_openai_tool_calls(chat):
    chat.plan(O.tool_calls([("search_properties", {"city": "Porto"}), ("get_agent", {}, "call_fixed")]))
    choice = post(chat, dict(BODY, tools=[{"type": "function", "function": {"name": "search_properties"}}])) \
        .json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert first["type"] == "function" and first["id"].startswith("call_")
    assert first["function"] == {"name": "search_properties", "arguments": '{"city": "Porto"}'}
    assert second["id"] == "call_fixed" and second["function"]["arguments"] == "{}"


def test_openai_error_shape(chat):
    chat.plan(O.error(429, "Rate limit reached.", retry_after=1), O.error(500, "boom"))
    r = post(chat, BODY)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json() == {"error": {"message": "Rate limit reached.", "type": "requests", "param": None,
                                  "code": "rate_limit_exceeded"}}
    r = post(chat, BODY)
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"


def test_openai_bearer_key_check(chat):
    r = post(chat, BODY, key="wrong")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert requests.get(f"{chat.url}/models", headers={"Authorization": "Bearer local-key"}).json()["data"][0]["id"]


def test_openai_slow(chat):
    chat.plan(O.slow(5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(chat, BODY, timeout=0.3)


# ------------------------------------------------------------------ OpenAI-compatible: with the openai SDK


@pytest.fixture
def sdk(chat):
    return openai.OpenAI(api_key="local-key", base_url=chat.url, max_retries=2, timeout=2)


def test_openai_sdk_tool_call_round_trip_with_a_retried_429(chat, sdk):
    chat.plan(O.tool_calls([("search_properties", {"city": "Porto"})]),
              O.error(429, "Rate limit reached.", retry_after_ms=5), O.text("One house in Foz."))
    first = sdk.chat.completions.create(model="m", messages=BODY["messages"])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "search_properties" and call.function.arguments == '{"city": "Porto"}'

    second = sdk.chat.completions.create(model="m", messages=BODY["messages"] + [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Foz do Douro, 3 rooms"}])
    assert second.choices[0].message.content == "One house in Foz." and second.usage.completion_tokens > 0
    assert [c["status"] for c in chat.calls()] == [200, 429, 200]
    assert chat.tool_messages() == [{"role": "tool", "tool_call_id": call.id, "content": "Foz do Douro, 3 rooms"}]


def test_openai_sdk_errors(chat, sdk):
    chat.plan(O.error(400, "bad"), O.text("never reached"))
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="m", messages=BODY["messages"])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=chat.url, max_retries=2).chat.completions.create(
            model="m", messages=BODY["messages"])
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
        sdk.chat.completions.create(model="m", messages=BODY["messages"] + [
            {"role": "tool", "tool_call_id": "call_unknown", "content": "?"}])
    assert len(chat.calls()) == 3 and chat.pending() == 1


def test_openai_sdk_stream(chat, sdk):
    chat.plan(O.text("Streaming works fine."))
    chunks = list(sdk.chat.completions.create(model="m", messages=BODY["messages"], stream=True,
                                              stream_options={"include_usage": True}))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Streaming works fine."
    assert chunks[-1].usage.prompt_tokens > 0
