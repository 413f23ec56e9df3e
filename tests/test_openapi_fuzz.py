"""Fuzz every route the app serves, from its own OpenAPI document (schemathesis): never a 5xx.

The app is `create_app(resources, run_worker=False)` in process (Starlette's TestClient: the real ASGI
app and its lifespan, no network), with a Green API and a Meta channel connected, so generated requests
reach authentication and, with the right credential, storage.

FastAPI's document says little about these routes: the webhook route reads its raw body (there is no
body in the schema), the handshake reads `hub.*` query parameters and authentication reads headers.
So the test adds to a copy of `app.openapi()` what the routes really read: a body (a Green API- or
Meta-shaped object naming the connected numbers, any bytes, any text), the `Authorization` and
`X-Hub-Signature-256` headers, the handshake's query parameters. Each operation is fuzzed in passes:

- schemathesis positive mode (what the schema allows: the known routes, the real token among others);
- schemathesis negative mode (what it forbids: any route, any header value, wrong types);
- passes that get past authentication: the Green API route with the connected instance's token and a
  Green API-shaped body (positive and negative), Meta's handshake with its verify token;
- a raw pass (plain Hypothesis): any text in every path and query parameter (NUL and other control
  characters included, which schemathesis does not send), unknown query parameters and headers, any
  bytes or JSON as the body, and for Meta sometimes a valid signature of that body.

Every response must be below 500; an exception escaping the app counts as a 500. The routes FastAPI
leaves out of the document (`/openapi.json`, `/docs`, `/redoc`, the simulator and its API, served with
SIMULATOR=true) get the same treatment in a second test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shlex
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from execution.lib.resources import Resources
from main import create_app
from tests.conftest import (INSTANCE_ID, META_PHONE_NUMBER_ID, META_VERIFY_TOKEN, WEBHOOK_TOKEN, StaticDirectives,
                            meta_signature)

pytestmark = [pytest.mark.slow, pytest.mark.race]

EXAMPLES_PER_PASS = 50          # per operation and pass: about 900 requests over both tests
BASE_URL = "http://testserver"
ROOT = Path(__file__).resolve().parents[1]

# Positive mode sends what the schema allows (the known routes, the real token among a few), negative mode
# anything else (any route, any header value): together, the known and the unknown.
ROUTE = {"type": "string", "enum": ["green-api", "meta"]}
AUTHORIZATION = {"name": "Authorization", "in": "header", "required": False,
                 "schema": {"type": "string", "enum": [f"Bearer {WEBHOOK_TOKEN}", f"Bearer {WEBHOOK_TOKEN}x", "Bearer ",
                                                       "Basic x", WEBHOOK_TOKEN]}}
SIGNATURE = {"name": "X-Hub-Signature-256", "in": "header", "required": False,
             "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"}}
GREEN_API_BODY = {
    "type": "object",
    "properties": {
        "typeWebhook": {"anyOf": [{"enum": ["incomingMessageReceived", "outgoingMessageReceived",
                                            "outgoingAPIMessageReceived", "outgoingMessageStatus",
                                            "stateInstanceChanged", "incomingCall", "deviceInfo",
                                            "quotaExceeded"]}, {"type": "string"}]},
        "instanceData": {"type": "object", "properties": {
            "idInstance": {"enum": [int(INSTANCE_ID), INSTANCE_ID]},
            "wid": {"type": "string"}, "typeInstance": {"type": "string"}}, "required": ["idInstance"]},
        "timestamp": {"type": "integer"},
        "idMessage": {"type": "string"},
        "senderData": {"type": "object", "properties": {
            "chatId": {"anyOf": [{"enum": ["15550000001@c.us", "120363000000000000@g.us", "status@broadcast"]},
                                 {"type": "string"}]},
            "sender": {"type": "string"}, "chatName": {"type": "string"}, "senderName": {"type": "string"}}},
        "messageData": {"type": "object", "properties": {
            "typeMessage": {"anyOf": [{"enum": ["textMessage", "extendedTextMessage", "imageMessage",
                                                "locationMessage", "reactionMessage"]}, {"type": "string"}]},
            "textMessageData": {"type": "object", "properties": {"textMessage": {"type": "string"}}}}},
        "status": {"type": "string"},
    },
    "required": ["typeWebhook", "instanceData"],
}
META_BODY = {
    "type": "object",
    "properties": {
        "object": {"enum": ["whatsapp_business_account"]},
        "entry": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
            "id": {"type": "string"},
            "changes": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
                "field": {"enum": ["messages"]},
                "value": {"type": "object", "properties": {
                    "metadata": {"type": "object", "properties": {
                        "phone_number_id": {"anyOf": [{"enum": [META_PHONE_NUMBER_ID]}, {"type": "string"}]}}},
                    "messages": {"type": "array", "maxItems": 3, "items": {"type": "object"}},
                    "statuses": {"type": "array", "maxItems": 3, "items": {"type": "object"}}}}}}}}}},
    },
    "required": ["object", "entry"],
}
WEBHOOK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"anyOf": [GREEN_API_BODY, META_BODY]}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}
HANDSHAKE_QUERY = [
    {"name": "hub.mode", "in": "query", "required": False, "schema": {"anyOf": [{"enum": ["subscribe"]},
                                                                              {"type": "string"}]}},
    {"name": "hub.verify_token", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "hub.challenge", "in": "query", "required": False, "schema": {"type": "string"}},
]
OK = {"200": {"description": "OK"}}
# The webhook route once more, as the connected Green API instance calls it: its token, a Green API body.
# What gets past authentication to storage (positive) and the parser's refusals (negative).
GREEN_API_WITH_TOKEN = {"/webhooks/green-api": {"post": {
    "operationId": "green_api_webhook_with_token", "responses": OK,
    "parameters": [{"name": "Authorization", "in": "header", "required": True,
                    "schema": {"type": "string", "enum": [f"Bearer {WEBHOOK_TOKEN}"]}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": GREEN_API_BODY}}},
}}}
# Served outside production, left out of the document by `include_in_schema=False`.
HIDDEN = {
    "/openapi.json": {"get": {"operationId": "openapi", "responses": OK}},
    "/docs": {"get": {"operationId": "docs", "responses": OK}},
    "/redoc": {"get": {"operationId": "redoc", "responses": OK}},
    "/simulator": {"get": {"operationId": "simulator", "responses": OK}},
    "/simulator/api/agents": {"get": {"operationId": "simulator_agents", "responses": OK}},
    "/simulator/api/messages": {"get": {"operationId": "simulator_messages", "responses": OK, "parameters": [
        {"name": "channel_id", "in": "query", "required": True, "schema": {"type": "integer"}},
        {"name": "chat_id", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "after_id", "in": "query", "required": False, "schema": {"type": "integer"}},
    ]}},
}


def documented(paths: dict) -> dict:
    """The app's own document with what its routes really read added."""
    assert set(paths) == {"/health", "/webhooks/{route}"} | INBOX_API, (
        f"the app's documented routes changed: {sorted(paths)}; teach this test what the new ones read")
    paths = copy.deepcopy({k: v for k, v in paths.items() if k in ("/health", "/webhooks/{route}")})
    paths["/health"]["get"].setdefault("parameters", []).append(AUTHORIZATION)
    for method, operation in paths["/webhooks/{route}"].items():
        for parameter in operation["parameters"]:
            if parameter["name"] == "route":
                parameter["schema"] = ROUTE
        operation["parameters"] += [AUTHORIZATION, SIGNATURE]
        if method == "post":
            operation["requestBody"] = WEBHOOK_BODY
        else:
            operation["parameters"] += HANDSHAKE_QUERY
    return paths


INBOX_API = {"/api/auth/login", "/api/auth/logout", "/api/auth/logout-everywhere", "/api/me", "/api/conversations",
             "/api/conversations/{conversation_id}", "/api/conversations/{conversation_id}/mode",
             "/api/conversations/{conversation_id}/messages", "/api/conversations/{conversation_id}/read",
             "/api/conversations/{conversation_id}/drafts/{message_id}/send",
             "/api/conversations/{conversation_id}/messages/{message_id}/resend",
             "/api/conversations/{conversation_id}/escalations/resolve", "/api/events", "/api/listings",
             "/api/listings/{reference}", "/api/listings/import", "/api/viewings",
             "/api/conversations/{conversation_id}/viewings", "/api/viewings/{viewing_id}/confirm",
             "/api/viewings/{viewing_id}/move", "/api/viewings/{viewing_id}/cancel", "/api/calendar/link",
             "/api/conversations/{conversation_id}/tasks/{task_id}/done"}


def inbox_documented(paths: dict, csrf: str) -> dict:
    """The inbox API's operations, each also told about the CSRF header (the real token among others).
    The event stream never ends, so it is left to tests/test_inbox_api.py; logging out would end the
    session the other requests use, so those two are fuzzed without one (the first test's client)."""
    header = {"name": "X-CSRF-Token", "in": "header", "required": False,
              "schema": {"type": "string", "enum": [csrf, csrf + "x", ""]}}
    out = {}
    for path in INBOX_API - {"/api/events", "/api/auth/logout", "/api/auth/logout-everywhere"}:
        out[path] = copy.deepcopy(paths[path])
        for operation in out[path].values():
            operation.setdefault("parameters", []).append(header)
    return out


def operations(document: dict, paths: dict) -> list:
    schema = schemathesis.openapi.from_dict({**document, "paths": paths})
    return [result.ok() for result in schema.get_all_operations()]


# ------------------------------------------------------------------ the raw pass (plain Hypothesis)

# Any code point but surrogates (emoji, RTL marks, ...), with the characters that break things drawn often.
ANY_TEXT = st.lists(st.one_of(st.characters(), st.sampled_from("\x00\r\n\t\x1b\u200f\ufeff%&=?#/\\'\"")),
                    max_size=24).map("".join)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
HEADER_NAME = st.from_regex(r"\AX-[A-Za-z0-9-]{1,16}\Z")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), ANY_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(ANY_TEXT, inner, max_size=5)),
                           max_leaves=25)
SIGN = "<a valid signature of the body>"


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes | None

    @property
    def url(self) -> str:
        return self.path + ("?" + urlencode(self.query, quote_via=quote) if self.query else "")

    def header_dict(self) -> dict[str, str]:
        out = {}
        for name, value in self.headers:
            out[name] = meta_signature(self.body or b"") if value == SIGN else value
        return out

    def wire_headers(self) -> dict[str, bytes]:
        """As a raw client sends them: latin-1 bytes (0x80-0xFF included; the client would refuse them as str)."""
        return {name: value.encode("latin-1") for name, value in self.header_dict().items()}

    def as_curl_command(self) -> str:
        parts = ["curl", "-X", self.method, BASE_URL + self.url]
        for name, value in self.header_dict().items():
            parts += ["-H", f"{name}: {value}"]
        if self.body is not None:
            parts += ["--data-binary", repr(self.body)]
        return " ".join(shlex.quote(p) for p in parts)


@st.composite
def raw_requests(draw, operation) -> RawRequest:
    path = operation.path
    for parameter in operation.path_parameters:
        value = draw(st.one_of(st.sampled_from(["green-api", "meta"]), ANY_TEXT).filter(
            lambda v: v.strip("./") != ""))
        path = path.replace("{" + parameter.name + "}", quote(value, safe=""))
    values = st.one_of(st.sampled_from(["subscribe", META_VERIFY_TOKEN, "1"]), st.integers().map(str), ANY_TEXT)
    numbers = st.one_of(st.integers().map(str), st.integers().map(str), ANY_TEXT)   # a number, mostly
    query = [(p.name, draw(numbers if p.definition.get("schema", {}).get("type") == "integer" else values))
             for p in operation.query if p.is_required or draw(st.booleans())]              # the known ones
    query += draw(st.lists(st.tuples(ANY_TEXT, values), max_size=3))                      # and unknown ones
    query = draw(st.permutations(query))
    header_names = [p.name for p in operation.headers] + ["Content-Type"]
    header_values = st.one_of(HEADER_TEXT, st.sampled_from([f"Bearer {WEBHOOK_TOKEN}", "application/json", SIGN]))
    headers = draw(st.dictionaries(st.one_of(st.sampled_from(header_names), HEADER_NAME), header_values, max_size=4))
    body = None
    if operation.method == "post":
        body = draw(st.one_of(st.none(), st.binary(max_size=300),
                              JSON_VALUES.map(lambda v: json.dumps(v).encode())))
    return RawRequest(operation.method.upper(), path, tuple(query), tuple(headers.items()), body)


# ------------------------------------------------------------------ sending, checking


def passes(operation):
    """(label, strategy) for each way an operation is fuzzed."""
    name = f"{operation.method.upper()} {operation.path}"
    yield f"{name} (positive)", operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    yield f"{name} (negative)", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    if (operation.method, operation.path) == ("get", "/webhooks/{route}"):
        yield f"{name} (meta handshake)", operation.as_strategy(
            generation_mode=GenerationMode.POSITIVE, path_parameters={"route": "meta"},
            query={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN})
    yield f"{name} (raw)", raw_requests(operation)


def _raised_in_app(exc: BaseException) -> bool:
    """Whether an exception came out of the app (a 500), not out of the test client refusing the request."""
    frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
    return any(name == str(ROOT / "main.py") or name.startswith(str(ROOT / "execution"))
               or ("/starlette/" in name and not name.endswith("testclient.py")) or "/fastapi/" in name
               for name in frames)


def send(client: TestClient, item) -> int:
    """One generated request through the in-process app; its status."""
    if isinstance(item, RawRequest):
        response = client.request(item.method, item.url, headers=item.wire_headers(), content=item.body,
                                  follow_redirects=False)
        return response.status_code
    kw = item.as_transport_kwargs(base_url=BASE_URL)
    body = {}
    if "json" in kw:
        body["json"] = kw["json"]
    elif isinstance(kw.get("data"), (bytes, str)):
        body["content"] = kw["data"]
    elif kw.get("data") is not None:
        body["data"] = kw["data"]
    response = client.request(kw["method"], kw["url"], headers=kw.get("headers"), params=kw.get("params"),
                              follow_redirects=False, **body)
    return response.status_code


def fuzz_all(client: TestClient, ops: list, *, known_bug=lambda label, item: False, examples: int = EXAMPLES_PER_PASS):
    """Run every pass of every operation; ({label: {status: count}}, [failure reports])."""
    counts: dict[str, dict[int, int]] = {}
    failures: list[str] = []
    for operation in ops:
        for label, strategy in passes(operation):
            seen = counts.setdefault(label, {})

            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(item=strategy)
            def fuzz(item) -> None:
                detail = ""
                try:
                    status = send(client, item)
                except Exception as exc:
                    if not _raised_in_app(exc):
                        reject()                    # a request the HTTP client itself will not send
                    status, detail = 500, traceback.format_exc(limit=-4)
                if status >= 500 and known_bug(label, item):
                    reject()
                seen[status] = seen.get(status, 0) + 1
                assert status < 500, f"{status}\n{item.as_curl_command()}\n{detail}"

            try:
                fuzz()
            except Unsatisfiable:                   # nothing to violate (no parameters, no body)
                counts.pop(label)
            except AssertionError as exc:           # shrunk to a minimal request; the next pass still runs
                failures.append(f"{label}: {exc}")
    return counts, failures


def report(title: str, counts: dict) -> int:
    total = sum(sum(c.values()) for c in counts.values())
    print(f"\n[openapi fuzz] {title}: {total} requests")
    for label, seen in counts.items():
        print(f"  {label}: {dict(sorted(seen.items()))}")
    return total


@pytest.fixture
def app_client(resources, green_channel, meta_channel):
    res = Resources(dataclasses.replace(resources.settings, simulator=True), resources.db, resources.redis,
                    "test", "test")
    app = create_app(res, run_worker=False, directives=StaticDirectives())
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=True) as client:
        document = client.get("/openapi.json")
        assert document.status_code == 200 and document.json() == app.openapi()
        yield client, document.json()


# ------------------------------------------------------------------ the tests


def test_no_documented_operation_answers_5xx(app_client, capsys):
    """Every operation in the app's /openapi.json, in every pass: no response >= 500."""
    client, document = app_client
    ops = operations(document, documented(document["paths"]))
    assert {(op.method, op.path) for op in ops} == {("get", "/health"), ("post", "/webhooks/{route}"),
                                                    ("get", "/webhooks/{route}")}
    counts, failures = fuzz_all(client, ops + operations(document, copy.deepcopy(GREEN_API_WITH_TOKEN)))
    with capsys.disabled():
        total = report("documented operations", counts)
    assert 200 in counts["POST /webhooks/green-api (positive)"], "no generated webhook was ever stored"
    assert total >= 300, f"only {total} requests were generated"
    assert not failures, "responses >= 500:\n\n" + "\n\n".join(failures)


def test_no_inbox_api_operation_answers_5xx(app_client, resources, capsys):
    """Every inbox API operation, logged in as an agent (a session cookie, the CSRF token among others
    in the header): no response >= 500. Logged out, every one is 401."""
    from execution.lib.security import hash_password

    client, document = app_client
    for path, method in [("/api/conversations", "get"), ("/api/listings", "get"), ("/api/me", "get")]:
        assert client.request(method, path).status_code == 401
    with resources.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("UPDATE agents SET password_hash = %s WHERE email = 'agent@acme.example'",
                    (hash_password("fuzz-password-1"),))
    assert client.post("/api/auth/login", json={"email": "agent@acme.example",
                                                "password": "fuzz-password-1"}).status_code == 200
    csrf = client.get("/api/me").json()["csrf_token"]
    counts, failures = fuzz_all(client, operations(document, inbox_documented(document["paths"], csrf)),
                                examples=20)
    with capsys.disabled():
        total = report("inbox API, logged in", counts)
    assert any(200 in seen for label, seen in counts.items() if label.startswith("GET /api/conversations "))
    assert total >= 300, f"only {total} requests were generated"
    assert not failures, "responses >= 500:\n\n" + "\n\n".join(failures)


def test_no_route_left_out_of_the_document_answers_5xx(app_client, capsys):
    """The routes FastAPI leaves out of /openapi.json (docs, simulator and its API), in every pass: no 5xx."""
    client, document = app_client
    ops = operations(document, copy.deepcopy(HIDDEN))
    counts, failures = fuzz_all(client, ops)
    with capsys.disabled():
        total = report("routes left out of the document", counts)
    assert total >= 150, f"only {total} requests were generated"
    assert not failures, "responses >= 500:\n\n" + "\n\n".join(failures)


def test_a_nul_in_the_simulators_chat_id_is_refused_not_500(app_client):
    client, _ = app_client
    status = send_raw_status(client, "/simulator/api/messages?channel_id=1&chat_id=%00")
    assert status < 500, f"GET /simulator/api/messages?channel_id=1&chat_id=%00 answered {status}"


def send_raw_status(client: TestClient, url: str) -> int:
    try:
        return client.get(url).status_code
    except Exception as exc:
        if _raised_in_app(exc):
            return 500
        raise
