"""One interface to the model that drafts replies, three backends chosen by settings.

- `ClaudeBackend`: the Anthropic Messages API through the `anthropic` SDK (explicit timeout and
  `max_retries`; the SDK retries 408/409/429/5xx and honours `retry-after` itself: nothing is
  retried on top). The system prompt's stable part and the tools carry `cache_control`, and the
  cache read/write tokens come back in `Usage`.
- `OpenAICompatibleBackend`: any chat-completions server (Ollama, vLLM, llama.cpp server, a hosted
  one) through the `openai` SDK, with the same tools.
- No backend (`backend_from_settings` returns None): the offline responder answers, as it does
  whenever a backend fails.

The conversation is passed in a neutral form, so the tool loop never knows which backend it talks to:
    {"role": "user", "text": ...}
    {"role": "assistant", "text": ..., "tool_calls": [ToolCall, ...]}
    {"role": "tool", "results": [ToolResult, ...]}
Errors become `ModelUnavailable` (an outage that outlived the SDK's retries: answer offline) or
`ModelRejected` (400/401/403/404: configuration, never retried; shown by /health). Their messages
carry the HTTP status and error type only, never the request (it quotes the customer).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from execution.lib import cpu_gate
from execution.lib.config import Settings
from execution.lib.errors import ConfigError

REJECTED_STATUSES = frozenset({400, 401, 403, 404, 413, 422})


class ModelError(Exception):
    kind = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelUnavailable(ModelError):
    """Rate limited, overloaded, a 5xx, a reset or a timeout, after the SDK's own bounded retries."""
    kind = "unavailable"


class ModelRejected(ModelError):
    """The request was refused as such (bad key, no permission, unknown model, invalid request)."""
    kind = "rejected"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: dict


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    content: str          # JSON text
    is_error: bool = False


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens)


@dataclass(frozen=True)
class ModelTurn:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    latency_ms: int = 0


@dataclass(frozen=True)
class Prompt:
    """What one call sends: a stable system part (cached), a per-conversation part, tools, history."""
    stable: str
    context: str
    tools: tuple[ToolSpec, ...]
    messages: tuple[dict, ...]
    max_tokens: int = 1024


class ModelBackend(Protocol):
    name: str
    model: str

    def complete(self, prompt: Prompt) -> ModelTurn: ...


def _http_client(sdk, connections: int, ssl_context):
    """The SDK's own HTTP client, keeping alive as many connections as threads use it."""
    httpx = _httpx()
    size = max(4, connections)
    return sdk.DefaultHttpxClient(verify=ssl_context,
                                  limits=httpx.Limits(max_connections=size * 2, max_keepalive_connections=size))


def _httpx():
    try:
        import httpx2 as httpx      # what the SDKs of this version are built on
    except ImportError:             # pragma: no cover - older SDKs
        import httpx
    return httpx


class ClientShards:
    """SDK clients, each with its own small connection pool; a thread always uses the same one.

    The SDK's connection pool walks all of its connections (and probes each idle socket) under one
    lock on every request and every response. With hundreds of replies in flight on one client that
    walk cost more interpreter time than the rest of the model call, and the threads queued on its
    lock. THREADS_PER_CLIENT threads share a client; the first is made at once, the others on first
    use, all with one TLS context (loading the certificate authorities is the costly part of making a
    client)."""

    THREADS_PER_CLIENT = 16

    def __init__(self, make, threads: int) -> None:
        self._make = make
        self._clients: list = [None] * max(1, -(-threads // self.THREADS_PER_CLIENT))
        self._turn = itertools.count()
        self._mine = threading.local()
        self._lock = threading.Lock()
        # The first one now: a setting the SDK refuses (a proxy it cannot use) fails at start-up, not in
        # every reply.
        try:
            self._ssl = _httpx().create_ssl_context()
            self._clients[0] = make(self.THREADS_PER_CLIENT, self._ssl)
        except (ImportError, ValueError, OSError) as exc:     # e.g. a socks proxy without its package
            raise ConfigError(f"cannot make the model client: {type(exc).__name__}: {exc}") from None

    def __len__(self) -> int:
        return len(self._clients)

    def get(self):
        i = getattr(self._mine, "index", None)
        if i is None:
            i = self._mine.index = next(self._turn) % len(self._clients)
        client = self._clients[i]
        if client is None:
            with self._lock:
                client = self._clients[i]
                if client is None:
                    client = self._clients[i] = self._make(self.THREADS_PER_CLIENT, self._ssl)
        return client


def _status_error(exc, status: int, kind: str | None) -> ModelError:
    text = f"HTTP {status}" + (f" {kind}" if kind else "")
    return ModelRejected(text, status=status) if status in REJECTED_STATUSES else ModelUnavailable(text, status=status)


def _error_type(exc) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        value = err.get("type") or err.get("code")
        return str(value)[:60] if value else None
    return None


class ClaudeBackend:
    name = "claude"

    def __init__(self, *, api_key: str, model: str, timeout_s: float = 30.0, max_retries: int = 2,
                 base_url: str | None = None, connections: int = 100) -> None:
        import anthropic

        self._sdk = anthropic
        self.model = model
        self._clients = ClientShards(
            lambda size, tls: anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=min(timeout_s, 30.0),
                                                  max_retries=max_retries,
                                                  http_client=_http_client(anthropic, size, tls)),
            connections)

    @property
    def client(self):
        """This thread's SDK client."""
        return self._clients.get()

    def request(self, prompt: Prompt) -> dict:
        """The Messages API request body (also what --dry-run prints)."""
        tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                 for t in prompt.tools]
        if tools:
            tools[-1] = {**tools[-1], "cache_control": {"type": "ephemeral"}}
        system = [{"type": "text", "text": prompt.stable, "cache_control": {"type": "ephemeral"}}]
        if prompt.context:
            system.append({"type": "text", "text": prompt.context})
        return {"model": self.model, "max_tokens": prompt.max_tokens, "system": system, "tools": tools,
                "messages": [_anthropic_message(m) for m in prompt.messages]}

    def complete(self, prompt: Prompt) -> ModelTurn:
        sdk = self._sdk
        started = time.monotonic()
        try:
            with cpu_gate.waiting():
                # The raw response: the body is read as plain JSON below, not built into the SDK's
                # models (a tenth of the call's interpreter time); errors still raise as usual.
                raw = self.client.messages.with_raw_response.create(**self.request(prompt))
        except sdk.APIStatusError as exc:
            raise _status_error(exc, exc.status_code, _error_type(exc)) from None
        except sdk.APITimeoutError:
            raise ModelUnavailable("timeout") from None
        except sdk.APIConnectionError:
            raise ModelUnavailable("connection failed") from None
        return _anthropic_turn(raw.http_response, started)


def _anthropic_turn(response, started: float) -> ModelTurn:
    """A Messages API response body as a ModelTurn; a body that is not one is the model's failure."""
    try:
        body = response.json()
        blocks = body["content"]
        texts = [b["text"] for b in blocks if b.get("type") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("a text block without text")
        calls = tuple(ToolCall(str(b["id"]), str(b["name"]), dict(b.get("input") or {}))
                      for b in blocks if b.get("type") == "tool_use")
        u = body.get("usage") or {}
        usage = Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0),
                      int(u.get("cache_read_input_tokens") or 0), int(u.get("cache_creation_input_tokens") or 0))
        stop = body.get("stop_reason")
        text = "\n".join(texts).strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelUnavailable("malformed response") from None
    return ModelTurn(text, calls, usage, stop, int((time.monotonic() - started) * 1000))


def _anthropic_message(m: dict) -> dict:
    if m["role"] == "user":
        return {"role": "user", "content": m["text"]}
    if m["role"] == "assistant":
        blocks = [{"type": "text", "text": m["text"]}] if m.get("text") else []
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in m.get("tool_calls", ())]
        return {"role": "assistant", "content": blocks}
    return {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}
        for r in m["results"]]}


class OpenAICompatibleBackend:
    name = "openai_compatible"

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0,
                 max_retries: int = 2, connections: int = 100) -> None:
        import openai

        self._sdk = openai
        self.model = model
        # Local servers take any key; the SDK insists on one.
        self._clients = ClientShards(
            lambda size, tls: openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                            timeout=min(timeout_s, 30.0), max_retries=max_retries,
                                            http_client=_http_client(openai, size, tls)),
            connections)

    @property
    def client(self):
        """This thread's SDK client."""
        return self._clients.get()

    def request(self, prompt: Prompt) -> dict:
        messages = [{"role": "system", "content": prompt.stable + ("\n\n" + prompt.context if prompt.context else "")}]
        for m in prompt.messages:
            messages += _openai_messages(m)
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                    "parameters": t.input_schema}} for t in prompt.tools]
        return {"model": self.model, "max_tokens": prompt.max_tokens, "messages": messages, "tools": tools}

    def complete(self, prompt: Prompt) -> ModelTurn:
        sdk = self._sdk
        started = time.monotonic()
        try:
            with cpu_gate.waiting():
                completion = self.client.chat.completions.create(**self.request(prompt))
        except sdk.APIStatusError as exc:
            raise _status_error(exc, exc.status_code, _error_type(exc)) from None
        except sdk.APITimeoutError:
            raise ModelUnavailable("timeout") from None
        except sdk.APIConnectionError:
            raise ModelUnavailable("connection failed") from None
        if not completion.choices:
            raise ModelUnavailable("empty completion")
        choice = completion.choices[0]
        calls = []
        for c in choice.message.tool_calls or ():
            try:
                args = json.loads(c.function.arguments or "{}")
            except json.JSONDecodeError:
                args = {"_unparsed": (c.function.arguments or "")[:200]}
            calls.append(ToolCall(c.id, c.function.name, args if isinstance(args, dict) else {"_unparsed": args}))
        u = completion.usage
        details = getattr(u, "prompt_tokens_details", None) if u else None
        usage = Usage(getattr(u, "prompt_tokens", 0) or 0, getattr(u, "completion_tokens", 0) or 0,
                      getattr(details, "cached_tokens", 0) or 0, 0)
        return ModelTurn((choice.message.content or "").strip(), tuple(calls), usage, choice.finish_reason,
                         int((time.monotonic() - started) * 1000))


def _openai_messages(m: dict) -> list[dict]:
    if m["role"] == "user":
        return [{"role": "user", "content": m["text"]}]
    if m["role"] == "assistant":
        out = {"role": "assistant", "content": m.get("text") or None}
        if m.get("tool_calls"):
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.input, ensure_ascii=False)}}
                                 for c in m["tool_calls"]]
        return [out]
    return [{"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in m["results"]]


BACKENDS = ("offline", "claude", "openai_compatible")


def backend_choice(settings: Settings) -> str:
    """Which backend the settings ask for ("offline", "claude", "openai_compatible"), without making it."""
    if settings.llm_backend:
        return settings.llm_backend
    return "claude" if settings.anthropic_api_key else "openai_compatible" if settings.llm_base_url else "offline"


def backend_from_settings(settings: Settings, *, choice: str | None = None) -> ModelBackend | None:
    """The backend the settings ask for; None means the offline responder answers alone.

    LLM_BACKEND picks one explicitly; otherwise an ANTHROPIC_API_KEY means Claude, an LLM_BASE_URL an
    OpenAI-compatible server, and neither the offline responder.
    """
    choice = choice or backend_choice(settings)
    if choice == "offline":
        return None
    if choice == "claude":
        if not settings.anthropic_api_key:
            raise ValueError("LLM_BACKEND=claude needs ANTHROPIC_API_KEY")
        return ClaudeBackend(api_key=settings.anthropic_api_key, model=settings.anthropic_model,
                             timeout_s=settings.anthropic_timeout_s, max_retries=settings.anthropic_max_retries,
                             base_url=settings.anthropic_base_url, connections=settings.reply_workers)
    if choice == "openai_compatible":
        if not settings.llm_base_url or not settings.llm_model:
            raise ValueError("LLM_BACKEND=openai_compatible needs LLM_BASE_URL and LLM_MODEL")
        return OpenAICompatibleBackend(base_url=settings.llm_base_url, model=settings.llm_model,
                                       api_key=settings.llm_api_key, timeout_s=settings.anthropic_timeout_s,
                                       max_retries=settings.anthropic_max_retries, connections=settings.reply_workers)
    raise ValueError(f"LLM_BACKEND must be one of {', '.join(BACKENDS)}")
