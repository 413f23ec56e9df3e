"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, as Ollama / vLLM / llama.cpp serve it.

    fake = FakeOpenAIChat(api_key="test-key").start()
    # base URL for clients: fake.url ("http://127.0.0.1:PORT/v1"); POST {fake.url}/chat/completions
    fake.plan(tool_calls([("search_properties", {"city": "Porto"})]), text("One house matches."))
    ...
    fake.stop()

Answers come from a script (`plan`), then from `responder(body)` when given, then a default text.
A planned answer is one of:
    text("...")                                   -> choices[0].message.content, finish_reason "stop"
    tool_calls([(name, args_dict), ...])          -> choices[0].message.tool_calls, finish_reason "tool_calls"
                                                     (a 3-tuple (name, args, id) fixes the call id)
    error(status, message, type=None, code=None, retry_after=None, retry_after_ms=None)
                                                  -> {"error": {"message", "type", "param", "code"}}
    slow(seconds, then=None)                      -> wait, then answer `then` (default: the default answer)
    reset()                                       -> close the connection without an answer

`stream: true` is answered with `chat.completion.chunk` server-sent events ending in `data: [DONE]`
(with a usage chunk when `stream_options.include_usage` is set). `GET /v1/models` lists `model`.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

DEFAULT_TEXT = "Hello from the fake chat-completions server."

# HTTP status -> (type, code) as OpenAI sends them
ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


@dataclass
class Answer:
    content: str | None = None
    tool_calls: list[dict] | None = None
    finish_reason: str | None = None
    usage: dict | None = None


@dataclass
class Error:
    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retry_after: float | str | None = None
    retry_after_ms: float | None = None
    headers: dict = field(default_factory=dict)


@dataclass
class Slow:
    seconds: float
    then: Any = None


@dataclass
class Reset:
    pass


def text(value: str, *, finish_reason: str = "stop", usage: dict | None = None) -> Answer:
    return Answer(content=value, finish_reason=finish_reason, usage=usage)


def tool_calls(calls, *, content: str | None = None, usage: dict | None = None) -> Answer:
    """calls: [(name, args_dict), ...] or [(name, args_dict, id), ...]; args may also be a JSON string."""
    out = []
    for call in calls:
        name, args, *rest = call
        out.append({"id": rest[0] if rest else None, "type": "function",
                    "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}})
    return Answer(content=content, tool_calls=out, finish_reason="tool_calls", usage=usage)


def error(status: int, message: str | None = None, type: str | None = None, code: str | None = None,
          retry_after: float | str | None = None, *, retry_after_ms: float | None = None, param: str | None = None,
          headers: dict | None = None) -> Error:
    kind, default_code = ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return Error(status, message or f"Error {status}", type or kind, code if code is not None else default_code,
                 param, retry_after, retry_after_ms, dict(headers or {}))


def slow(seconds: float, then: Any = None) -> Slow:
    return Slow(seconds, then)


def reset() -> Reset:
    return Reset()


def _tokens(value: Any) -> int:
    raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return max(1, (len(raw) + 3) // 4)


def _validate(body: Any) -> Error | None:
    """What OpenAI answers 400 to (Ollama and vLLM are laxer): missing fields, unpaired tool calls."""
    if not isinstance(body, dict):
        return error(400, "We could not parse the JSON body of your request.")
    for name in ("model", "messages"):
        if name not in body:
            return error(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return error(400, "[] is too short - 'messages'", param="messages", code="invalid_value")
    open_ids: set = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            if message.get("tool_call_id") not in open_ids:
                return error(400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                  "message with 'tool_calls'.", param=f"messages.[{i}].role")
            open_ids.discard(message.get("tool_call_id"))
            continue
        if open_ids:
            return error(400, "An assistant message with 'tool_calls' must be followed by tool messages responding "
                              "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                              + ", ".join(sorted(map(str, open_ids))), param="messages.[%d].role" % i)
        if role == "assistant":
            open_ids = {c.get("id") for c in message.get("tool_calls") or []}
    return None


class FakeOpenAIChat:
    """A fake `POST /v1/chat/completions`.

    api_key: when given, requests must carry `Authorization: Bearer <api_key>`, else 401.
    responder: `callable(request_body) -> answer` used when the plan is empty (None -> the default text).
    validate: answer 400 to bodies OpenAI refuses (missing model/messages, unanswered tool calls).
    """

    def __init__(self, *, api_key: str | None = None, model: str = "fake-model",
                 responder: Callable[[dict], Any] | None = None, default_text: str = DEFAULT_TEXT,
                 validate: bool = True) -> None:
        self.api_key = api_key
        self.model = model
        self.responder = responder
        self.default_text = default_text
        self.validate = validate
        self._records: list[dict] = []
        self._plan: deque = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._count = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                fake._handle(self, raw)

            def do_GET(self):
                fake._handle_get(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The base URL clients take (`base_url=` in the openai SDK, OPENAI_BASE_URL): it ends in /v1."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAIChat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeOpenAIChat":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- scripting and inspection

    def plan(self, *answers) -> None:
        """Queue answers, one a request: Answer (text/tool_calls), str, Error, Slow or Reset."""
        with self._lock:
            self._plan.extend(answers)

    def pending(self) -> int:
        with self._lock:
            return len(self._plan)

    def calls(self) -> list[dict]:
        """Every request: method, path, headers (lower-case names), body, authorization, status, at."""
        with self._lock:
            return list(self._records)

    @property
    def requests(self) -> list[dict]:
        """The parsed JSON bodies of the chat-completions requests, in order."""
        with self._lock:
            return [r["body"] for r in self._records if r["path"] == "/v1/chat/completions"]

    def tool_messages(self, request: int = -1) -> list[dict]:
        """The role=tool messages of one request (default: the latest)."""
        bodies = self.requests
        if not bodies:
            return []
        return [m for m in bodies[request].get("messages") or [] if isinstance(m, dict) and m.get("role") == "tool"]

    # -------------------------------------------------------------- answering

    def _authorized(self, headers: dict) -> bool:
        return self.api_key is None or headers.get("authorization") == f"Bearer {self.api_key}"

    def _handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self._records.append({"method": "GET", "path": path, "headers": headers, "body": None,
                                  "authorization": headers.get("authorization"), "status": None, "at": time.time()})
        if not self._authorized(headers):
            self._send_error(handler, error(401, "Incorrect API key provided."))
        elif path == "/v1/models":
            self._send_json(handler, 200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": int(time.time()), "owned_by": "fake"}]})
        else:
            self._send_error(handler, error(404, f"Unknown path: {path}", code="unknown_url"))

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path.split("?", 1)[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        record = {"method": "POST", "path": path, "headers": headers, "body": body,
                  "authorization": headers.get("authorization"), "status": None, "at": time.time()}
        with self._lock:
            self._records.append(record)
            answer = self._gate(path, headers, body)
            if answer is None:
                answer = self._plan.popleft() if self._plan else None
        if answer is None:
            answer = self._default(body)
        while isinstance(answer, Slow):
            if self._stopping.wait(answer.seconds):
                answer = Reset()
                break
            answer = answer.then if answer.then is not None else self._default(body)
        if isinstance(answer, str):
            answer = text(answer)
        if isinstance(answer, Reset):
            record["status"] = "reset"
            handler.close_connection = True
            try:
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            return
        if isinstance(answer, Error):
            record["status"] = answer.status
            self._send_error(handler, answer)
            return
        if not isinstance(answer, Answer):
            raise TypeError(f"not a planned answer: {answer!r}")
        completion = self._completion(body, answer)
        record["status"] = 200
        record["response"] = completion
        if body.get("stream"):
            self._send_stream(handler, completion, bool((body.get("stream_options") or {}).get("include_usage")))
        else:
            self._send_json(handler, 200, completion)

    def _gate(self, path: str, headers: dict, body: Any) -> Error | None:
        if path != "/v1/chat/completions":
            return error(404, f"Unknown path: {path}", code="unknown_url")
        if not self._authorized(headers):
            return error(401, "Incorrect API key provided.")
        if body is None:
            return error(400, "We could not parse the JSON body of your request.")
        if self.validate:
            return _validate(body)
        return None

    def _default(self, body: Any) -> Any:
        if self.responder is not None:
            answer = self.responder(body)
            if answer is not None:
                return answer
        return text(self.default_text)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._count += 1
            return f"{prefix}{self._count:024d}"

    def _completion(self, body: dict, answer: Answer) -> dict:
        message: dict = {"role": "assistant", "content": answer.content}
        if answer.tool_calls:
            message["tool_calls"] = [dict(c, id=c["id"] or self._next_id("call_")) for c in answer.tool_calls]
        prompt = _tokens(body.get("messages")) + (_tokens(body["tools"]) if body.get("tools") else 0)
        completion = _tokens(answer.content or "") + sum(_tokens(c) for c in answer.tool_calls or [])
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        usage.update(answer.usage or {})
        return {"id": self._next_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or self.model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")}],
                "usage": usage}

    def _send_json(self, handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_error(self, handler: BaseHTTPRequestHandler, err: Error) -> None:
        headers = dict(err.headers)
        if err.retry_after is not None:
            headers["retry-after"] = str(err.retry_after)
        if err.retry_after_ms is not None:
            headers["retry-after-ms"] = str(err.retry_after_ms)
        body = {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}
        self._send_json(handler, err.status, body, headers)

    def _send_stream(self, handler: BaseHTTPRequestHandler, completion: dict, include_usage: bool) -> None:
        choice = completion["choices"][0]
        message = choice["message"]
        base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"

        def chunk(delta: dict, finish=None) -> dict:
            return dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

        chunks = [chunk({"role": "assistant", "content": ""})]
        content = message.get("content") or ""
        chunks += [chunk({"content": content[i:i + 16]}) for i in range(0, len(content), 16)]
        for index, call in enumerate(message.get("tool_calls") or []):
            chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                 "function": {"name": call["function"]["name"], "arguments": ""}}]}))
            args = call["function"]["arguments"]
            chunks += [chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i:i + 16]}}]})
                       for i in range(0, len(args), 16)]
        chunks.append(chunk({}, choice["finish_reason"]))
        if include_usage:
            chunks.append(dict(base, choices=[], usage=completion["usage"]))
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache")
            handler.end_headers()
            handler.close_connection = True
            for data in chunks:
                handler.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
