"""A fake Anthropic Messages API (`POST /v1/messages`) on 127.0.0.1 speaking the real wire format.

The real `anthropic` SDK runs against it unchanged:

    fake = FakeAnthropic().start()
    client = anthropic.Anthropic(api_key="test-key", base_url=fake.url, max_retries=0, timeout=2)
    fake.plan(tool_use("search_properties", {"city": "Lisbon"}), text("Two flats match."))
    ...
    fake.stop()

Answers come from a script (`plan`), then from `responder(body)` when given, then a default text.
A planned answer is one of:
    text("...")                        -> `end_turn` message with one text block (a bare str means the same)
    tool_use(name, input, id=None)     -> `tool_use` message with one tool_use block
    turn(text(..), tool_use(..), ...)  -> one message with several blocks (stop_reason `tool_use` if any tool)
    error(status, type, message, retry_after=None, retry_after_ms=None)
                                       -> {"type": "error", "error": {...}} with that HTTP status
    slow(seconds, then=None)           -> wait, then answer `then` (default: the next default answer)
    reset()                            -> close the connection without an answer
    raw(status, body)                  -> exactly these bytes as the JSON body (a broken answer)

Usage is reported on every message: input_tokens / output_tokens estimated from the JSON size
(about four characters a token), and prompt caching simulated per breakpoint: the first request
whose prefix up to a `cache_control` block is new reports `cache_creation_input_tokens`, a later
request with the same prefix reports `cache_read_input_tokens`.

`stream: true` is answered with the real server-sent events (message_start, content_block_*,
message_delta, message_stop), so `client.messages.stream(...)` works too.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

DEFAULT_TEXT = "Hello from the fake Anthropic API."

# HTTP status -> the error type Anthropic sends with it
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "This request would exceed the rate limit for your organization. Please try again later.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out.",
    "overloaded_error": "Overloaded",
}


# ------------------------------------------------------------------ script items


@dataclass
class Turn:
    """One assistant message: its content blocks, and optionally a forced stop_reason / usage override."""

    content: list[dict]
    stop_reason: str | None = None
    usage: dict | None = None


@dataclass
class Error:
    status: int
    type: str
    message: str
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


@dataclass
class Raw:
    status: int
    body: bytes


def text(value: str) -> Turn:
    return Turn([{"type": "text", "text": value}])


def tool_use(name: str, input: dict | None = None, id: str | None = None) -> Turn:
    # id None: the fake fills in a fresh `toolu_...` id when it answers
    return Turn([{"type": "tool_use", "id": id, "name": name, "input": dict(input or {})}])


def turn(*parts: Turn | str, stop_reason: str | None = None, usage: dict | None = None) -> Turn:
    content: list[dict] = []
    for part in parts:
        content.extend(text(part).content if isinstance(part, str) else part.content)
    return Turn(content, stop_reason=stop_reason, usage=usage)


def error(status: int, type: str | None = None, message: str | None = None, retry_after: float | str | None = None,
          *, retry_after_ms: float | None = None, headers: dict | None = None) -> Error:
    kind = type or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return Error(status, kind, message or _DEFAULT_MESSAGES.get(kind, "Error"), retry_after, retry_after_ms,
                 dict(headers or {}))


def slow(seconds: float, then: Any = None) -> Slow:
    return Slow(seconds, then)


def reset() -> Reset:
    return Reset()


def raw(status: int, body: bytes | str) -> Raw:
    return Raw(status, body.encode() if isinstance(body, str) else body)


# ------------------------------------------------------------------ helpers


def _tokens(value: Any) -> int:
    """A stable, rough token count: about four characters a token."""
    raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return max(1, (len(raw) + 3) // 4)


def _blocks(content: Any) -> list:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _flatten(body: dict) -> list[Any]:
    """The prompt in the order the API caches it: tools, then system, then messages, block by block."""
    flat: list[Any] = list(body.get("tools") or [])
    flat.extend(_blocks(body.get("system")))
    for message in body.get("messages") or []:
        for block in _blocks(message.get("content") if isinstance(message, dict) else None):
            flat.append({"role": message.get("role"), "block": block})
    return flat


def _cache_control(item: Any) -> dict | None:
    if isinstance(item, dict) and "block" in item and "role" in item:
        item = item["block"]
    if isinstance(item, dict) and isinstance(item.get("cache_control"), dict):
        return item["cache_control"]
    return None


def _validate(body: Any) -> str | None:
    """The invalid_request_error messages the real API gives for the mistakes a client makes most."""
    if not isinstance(body, dict):
        return "Input should be an object"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    for i, message in enumerate(messages):
        blocks = _blocks(message.get("content"))
        if message["role"] == "assistant":
            ids = [b.get("id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
            if ids and i + 1 < len(messages):
                answered = {b.get("tool_use_id") for b in _blocks(messages[i + 1].get("content"))
                            if isinstance(b, dict) and b.get("type") == "tool_result"}
                missing = [x for x in ids if x not in answered]
                if missing:
                    return (f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                            f"after: {', '.join(map(str, missing))}. Each `tool_use` block must have a corresponding "
                            "`tool_result` block in the next message.")
        else:
            previous = _blocks(messages[i - 1].get("content")) if i > 0 and messages[i - 1]["role"] == "assistant" \
                else []
            asked = {b.get("id") for b in previous if isinstance(b, dict) and b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("tool_use_id") \
                        not in asked:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            "`tool_use` block in the previous message.")
    return None


# ------------------------------------------------------------------ the server


class FakeAnthropic:
    """A fake `POST /v1/messages`.

    api_key: when given, requests must carry it (as `x-api-key` or `Authorization: Bearer`), else 401.
    responder: `callable(request_body) -> answer` used when the plan is empty (None -> the default text).
    validate: answer 400 to a body the real API refuses (missing fields, unpaired tool_use/tool_result).
    cache_min_tokens: prefixes shorter than this are not cached (the real API: 1024 to 4096 by model).
    """

    def __init__(self, *, api_key: str | None = None, responder: Callable[[dict], Any] | None = None,
                 default_text: str = DEFAULT_TEXT, validate: bool = True, cache_min_tokens: int = 0) -> None:
        self.api_key = api_key
        self.responder = responder
        self.default_text = default_text
        self.validate = validate
        self.cache_min_tokens = cache_min_tokens
        self._records: list[dict] = []
        self._plan: deque = deque()
        self._cache: set[str] = set()
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
                fake._send_json(self, *fake._error_body(error(404, message=f"Not found: {self.path}")))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The base URL to give the SDK (`base_url=`); the SDK appends `/v1/messages`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeAnthropic":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeAnthropic":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- scripting and inspection

    def plan(self, *answers) -> None:
        """Queue answers, one a request: Turn (text/tool_use/turn), str, Error, Slow or Reset."""
        with self._lock:
            self._plan.extend(answers)

    def pending(self) -> int:
        with self._lock:
            return len(self._plan)

    def forget_cache(self) -> None:
        """As if every prompt-cache entry expired."""
        with self._lock:
            self._cache.clear()

    def calls(self) -> list[dict]:
        """Every request: path, headers (lower-case names), body, auth_header, status, at."""
        with self._lock:
            return list(self._records)

    @property
    def requests(self) -> list[dict]:
        """The parsed JSON bodies of the `/v1/messages` requests, in order."""
        with self._lock:
            return [r["body"] for r in self._records if r["path"] == "/v1/messages"]

    def tool_results(self, request: int = -1) -> list[dict]:
        """The tool_result blocks in the user messages of one request (default: the latest, which
        carries the whole conversation so far)."""
        bodies = self.requests
        if not bodies:
            return []
        return [block for message in bodies[request].get("messages") or [] if message.get("role") == "user"
                for block in _blocks(message.get("content"))
                if isinstance(block, dict) and block.get("type") == "tool_result"]

    # -------------------------------------------------------------- answering

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path.split("?", 1)[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        auth_header = "x-api-key" if "x-api-key" in headers else "authorization" if "authorization" in headers \
            else None
        record = {"path": path, "query": handler.path.partition("?")[2], "headers": headers, "body": body,
                  "auth_header": auth_header, "status": None, "at": time.time()}
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
            self._reset(handler)
            return
        if isinstance(answer, Error):
            record["status"] = answer.status
            self._send_json(handler, *self._error_body(answer))
            return
        if isinstance(answer, Raw):
            record["status"] = answer.status
            self._send_bytes(handler, answer.status, answer.body, {"request-id": self._next_id("req")})
            return
        if not isinstance(answer, Turn):
            raise TypeError(f"not a planned answer: {answer!r}")
        message = self._message(body, answer)
        record["status"] = 200
        record["response"] = message
        if body.get("stream"):
            self._send_stream(handler, message)
        else:
            self._send_json(handler, 200, message, {})

    def _gate(self, path: str, headers: dict, body: Any) -> Error | None:
        """The answers the real API gives before it looks at the model: path, key, body."""
        if path != "/v1/messages":
            return error(404, message=f"Not found: {path}")
        if self.api_key is not None:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if given != self.api_key:
                return error(401, message="invalid x-api-key")
        if body is None:
            return error(400, message="There was an error parsing the body of your request.")
        if self.validate:
            problem = _validate(body)
            if problem:
                return error(400, message=problem)
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
            return f"{prefix}_01FAKE{self._count:018d}"

    def _usage(self, body: dict, out: Turn) -> dict:
        flat = _flatten(body)
        sizes = [_tokens(item) for item in flat]
        total = sum(sizes) + 3
        read = created = 0
        ttl = "5m"
        with self._lock:
            running = 0
            breakpoints = []
            for i, item in enumerate(flat):
                running += sizes[i]
                control = _cache_control(item)
                if control is not None and running >= self.cache_min_tokens:
                    key = hashlib.sha256(json.dumps([body.get("model"), flat[:i + 1]], sort_keys=True).encode())
                    breakpoints.append((key.hexdigest(), running, control.get("ttl") or "5m"))
            if breakpoints:
                read = max((n for key, n, _ in breakpoints if key in self._cache), default=0)
                ttl = breakpoints[-1][2]
                created = breakpoints[-1][1] - read
                self._cache.update(key for key, _, _ in breakpoints)
        output = sum(_tokens(b.get("text") if b.get("type") == "text" else b) for b in out.content) + 1
        usage = {
            "input_tokens": total - read - created,
            "output_tokens": output,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": created if ttl != "1h" else 0,
                               "ephemeral_1h_input_tokens": created if ttl == "1h" else 0},
            "service_tier": "standard",
        }
        usage.update(out.usage or {})
        return usage

    def _message(self, body: dict, out: Turn) -> dict:
        content = []
        for block in out.content:
            block = dict(block)
            if block.get("type") == "tool_use" and not block.get("id"):
                block["id"] = self._next_id("toolu")
            content.append(block)
        stop_reason = out.stop_reason or ("tool_use" if any(b.get("type") == "tool_use" for b in content)
                                          else "end_turn")
        return {"id": self._next_id("msg"), "type": "message", "role": "assistant", "model": body.get("model"),
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": self._usage(body, out)}

    def _error_body(self, err: Error) -> tuple[int, dict, dict]:
        headers = dict(err.headers)
        if err.retry_after is not None:
            headers["retry-after"] = str(err.retry_after)
        if err.retry_after_ms is not None:
            headers["retry-after-ms"] = str(err.retry_after_ms)
        request_id = self._next_id("req")
        headers.setdefault("request-id", request_id)
        body = {"type": "error", "error": {"type": err.type, "message": err.message}, "request_id": request_id}
        return err.status, body, headers

    def _send_json(self, handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict) -> None:
        headers = dict(headers)
        headers.setdefault("request-id", body.get("request_id") or self._next_id("req"))
        self._send_bytes(handler, status, json.dumps(body).encode(), headers)

    def _send_bytes(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_stream(self, handler: BaseHTTPRequestHandler, message: dict) -> None:
        usage = message["usage"]
        start = dict(message, content=[], stop_reason=None, stop_sequence=None,
                     usage=dict(usage, output_tokens=1))
        events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start})]
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}}))
                pieces = [block["text"][i:i + 16] for i in range(0, len(block["text"]), 16)]
                deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": dict(block, input={})}))
                raw = json.dumps(block.get("input", {}))
                deltas = [{"type": "input_json_delta", "partial_json": raw[i:i + 16]} for i in range(0, len(raw), 16)]
            if block["type"] in ("text", "tool_use"):
                events.extend(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                              for d in deltas)
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                         "usage": {"output_tokens": usage["output_tokens"]}}))
        events.append(("message_stop", {"type": "message_stop"}))
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache")
            handler.send_header("request-id", self._next_id("req"))
            handler.end_headers()
            handler.close_connection = True
            for name, data in events:
                handler.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _reset(handler: BaseHTTPRequestHandler) -> None:
        """Close with a TCP reset and no answer."""
        handler.close_connection = True
        try:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
