"""Intake under hostile or odd input: poison bodies, deep nesting, junk instances; the chat id on each row."""

import json
import logging
import secrets
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from execution.lib import channel_directory, tenant_store
from execution.lib.channel_directory import ChannelDirectory
from execution.lib.errors import BadRequest
from execution.lib.providers.base import MAX_JSON_DEPTH, parse_json_object
from execution.lib.security import hash_token
from execution.webhook_handler import EventRefused, PendingEvent, Receipt, store_events
from main import create_app
from tests.conftest import (
    INSTANCE_ID,
    META_FIXTURES,
    META_PHONE_NUMBER_ID,
    WEBHOOK_TOKEN,
    load_fixture,
    meta_signature,
    post_green_api,
)

AUTH = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
SECRET_TEXT = "poison-marker-7f3a"   # in every poison body: must never reach a log


def _green_body(n: int, text: str = "hello") -> dict:
    body = load_fixture("greenapi_incoming_text.json")
    body["idMessage"] = f"FAULT{n:08d}"
    body["messageData"]["textMessageData"]["textMessage"] = text
    return body


def _raw(body: dict) -> bytes:
    return json.dumps(body).encode()


def _poison(n: int, kind: str) -> bytes:
    """A Green API text webhook whose text PostgreSQL's jsonb refuses as sent."""
    marker = f'"{SECRET_TEXT}"'.encode()
    raw = _raw(_green_body(n, SECRET_TEXT))
    if kind == "nul":
        return raw.replace(marker, f'"{SECRET_TEXT}\\u0000tail"'.encode())
    if kind == "surrogate":
        return raw.replace(marker, f'"{SECRET_TEXT}\\ud800tail"'.encode())
    if kind == "encoded-surrogate":   # the UTF-8 bytes of U+DC00: json.loads passes them through
        return raw.replace(marker, f'"{SECRET_TEXT}'.encode() + b"\xed\xb0\x80" + b'tail"')
    if kind == "nan":
        return raw.replace(b'"timestamp": ', b'"score": NaN, "big": 1e400, "timestamp": ')
    if kind == "infinity":
        return raw.replace(b'"timestamp": ', b'"low": -Infinity, "timestamp": ')
    raise AssertionError(kind)


def _unstorable(n: int) -> bytes:
    """Still refused after cleaning: an event key too large for its unique index."""
    body = _green_body(n, SECRET_TEXT)
    body["idMessage"] = "LONG" + secrets.token_urlsafe(9000)
    return _raw(body)


def _stored(db, where="TRUE", params=()) -> list[dict]:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT event_key, payload, chat_id FROM webhook_events WHERE {where}", params)
        return cur.fetchall()


# ------------------------------------------------------------------ 1. poison bodies


def test_poison_bodies_never_fail_the_legitimate_requests_committed_with_them(resources, green_channel, caplog):
    kinds = ["nul", "surrogate", "encoded-surrogate", "nan", "infinity"]
    requests = []   # (what, n, body)
    for n in range(300):
        if n % 6 == 5:
            requests.append(("poison", n, _poison(n, kinds[(n // 6) % len(kinds)])))
        elif n % 50 == 7:
            requests.append(("unstorable", n, _unstorable(n)))
        else:
            requests.append(("legit", n, _raw(_green_body(n))))
    caplog.set_level(logging.INFO)
    with TestClient(create_app(resources, run_worker=False)) as client:
        barrier = threading.Barrier(16)

        def post(item):
            what, n, body = item
            if n < 16:
                barrier.wait()
            return what, n, client.post("/webhooks/green-api", content=body, headers=AUTH)

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(post, requests))
    legit = [(n, r) for what, n, r in results if what == "legit"]
    assert [n for n, r in legit if r.status_code != 200] == []
    poison = [(n, r) for what, n, r in results if what == "poison"]
    assert [(n, r.status_code) for n, r in poison if r.status_code != 200] == []
    unstorable = [r for what, _, r in results if what == "unstorable"]
    assert {r.status_code for r in unstorable} == {503}
    assert all("could not be stored" in r.json()["error"] for r in unstorable)

    keys = {row["event_key"]: row for row in _stored(resources.db)}
    assert all(f"{INSTANCE_ID}:incomingMessageReceived:FAULT{n:08d}" in keys for n, _ in legit + poison)
    assert not any("LONG" in k for k in keys)
    texts = [keys[f"{INSTANCE_ID}:incomingMessageReceived:FAULT{n:08d}"]["payload"]["messageData"]
             ["textMessageData"]["textMessage"] for n, _ in poison]
    assert f"{SECRET_TEXT}\ufffdtail" in texts and "\x00" not in "".join(texts)
    nan_row = next(keys[f"{INSTANCE_ID}:incomingMessageReceived:FAULT{n:08d}"]["payload"] for n, _ in poison
                   if "score" in keys[f"{INSTANCE_ID}:incomingMessageReceived:FAULT{n:08d}"]["payload"])
    assert nan_row["score"] is None and nan_row["big"] is None

    refusals = [r for r in caplog.records if "event not stored" in r.getMessage()]
    assert len(refusals) == len(unstorable)
    assert all("reason=54000 program_limit_exceeded" in r.getMessage() for r in refusals)
    assert SECRET_TEXT not in caplog.text and "LONG" not in caplog.text


def test_one_refused_row_is_refused_alone_in_its_batch(resources, green_channel):
    def pending(key, payload=None):
        return PendingEvent("green_api", green_channel["id"], key, "incomingMessageReceived",
                            payload or {"idMessage": key}, "15550000001@c.us")

    # NaN reaching the store (not through read_body) is refused by the database, as a long key is.
    too_long = secrets.token_urlsafe(9000)
    batch = [pending("a"), pending("b", {"x": float("nan")}), pending("c"), pending(too_long), pending("a")]
    results = store_events(resources.db, batch)
    assert [type(r).__name__ for r in results] == ["WebhookReceipt", "EventRefused", "WebhookReceipt",
                                                   "EventRefused", "WebhookReceipt"]
    assert [r.outcome for r in results if not isinstance(r, EventRefused)] == [
        Receipt.STORED, Receipt.STORED, Receipt.DUPLICATE]
    assert sorted(row["event_key"] for row in _stored(resources.db)) == ["a", "c"]


def test_bodies_are_made_storable_and_ordinary_ones_are_untouched():
    payload = parse_json_object(
        b'{"a\\u0000": "x\\u0000y", "s": ["\\ud800", "\\uDFFF!"], "ok": "\\ud83d\\ude00 \\u0645", '
        b'"n": NaN, "i": Infinity, "m": -Infinity, "big": 1e400, "f": 1.5, "int": 10}')
    assert payload == {"a\ufffd": "x\ufffdy", "s": ["\ufffd", "\ufffd!"], "ok": "\U0001F600 \u0645",
                       "n": None, "i": None, "m": None, "big": None, "f": 1.5, "int": 10}
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    body = _raw(_green_body(1, "مرحبا"))
    assert parse_json_object(body) == json.loads(body)


# ------------------------------------------------------------------ 2. deep nesting


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
], ids=["arrays", "objects"])
def test_deeply_nested_bodies_get_400_quickly_without_a_traceback(resources, green_channel, body, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(resources, run_worker=False)) as client:
        started = time.perf_counter()
        r = client.post("/webhooks/green-api", content=body, headers=AUTH)
        elapsed = time.perf_counter() - started
    assert r.status_code == 400
    assert r.json()["error"] == f"body is nested deeper than {MAX_JSON_DEPTH} levels"
    assert elapsed < 3.0      # refused before parsing: a parse of 100k levels would take far longer or crash
    assert "Traceback" not in caplog.text and not any(rec.exc_info for rec in caplog.records)
    assert _stored(resources.db) == []


def test_nesting_inside_strings_does_not_count():
    assert parse_json_object(b'{"a": "' + b"[" * 1000 + b'"}') == {"a": "[" * 1000}
    with pytest.raises(BadRequest, match="nested deeper"):
        parse_json_object(b'{"a": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}")


# ------------------------------------------------------------------ 3. unknown instances


def _count_lookups(monkeypatch) -> list[str]:
    calls = []
    real = tenant_store.channel_by_instance

    def counted(conn, **kw):
        calls.append(kw["instance_id"])
        return real(conn, **kw)

    monkeypatch.setattr(tenant_store, "channel_by_instance", counted)
    return calls


def test_requests_for_one_unknown_instance_cost_one_query(resources, green_channel, monkeypatch):
    calls = _count_lookups(monkeypatch)
    body = _green_body(1)
    body["instanceData"]["idInstance"] = 1109999999
    with TestClient(create_app(resources, run_worker=False)) as client:
        codes = [client.post("/webhooks/green-api", content=_raw(body), headers=AUTH).status_code for _ in range(25)]
    assert codes == [401] * 25
    assert calls == ["1109999999"]


def test_a_channel_registered_after_a_miss_is_found_after_the_miss_ttl(resources, green_channel, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(channel_directory, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    calls = _count_lookups(monkeypatch)
    directory = ChannelDirectory(resources.db, secret_key=resources.settings.secret_key, miss_ttl_s=5.0)
    assert directory.find("green-api", "1108888888") is None
    with resources.db.transaction() as c:
        tenant_store.upsert_channel(
            c, organization_id=green_channel["organization_id"], agent_id=green_channel["agent_id"],
            provider="green_api", instance_id="1108888888", api_url=green_channel["api_url"],
            api_token_encrypted=None, webhook_token_hash=hash_token("another-token"))
    now[0] += 4.9
    assert directory.find("green-api", "1108888888") is None     # the miss is still remembered
    assert len(calls) == 1
    now[0] += 0.2
    assert directory.find("green-api", "1108888888")["instance_id"] == "1108888888"
    assert len(calls) == 2


def test_remembered_misses_are_bounded_oldest_first(resources, green_channel, monkeypatch):
    calls = _count_lookups(monkeypatch)
    directory = ChannelDirectory(resources.db, secret_key=resources.settings.secret_key, max_misses=3)
    for n in range(10):
        assert directory.find("green-api", f"11077777{n:02d}") is None
    assert len(directory._misses) == 3 and len(calls) == 10
    directory.find("green-api", "1107777709")           # the newest miss is still remembered
    assert len(calls) == 10
    directory.find("green-api", "1107777700")           # the oldest was dropped: asked again
    assert len(calls) == 11


# ------------------------------------------------------------------ 6. the chat id of each event


def test_a_green_api_webhook_row_carries_its_chat_id(resources, green_channel):
    post_green_api(resources.db, load_fixture("greenapi_incoming_text.json"))
    post_green_api(resources.db, load_fixture("greenapi_status_delivered.json"))
    post_green_api(resources.db, load_fixture("greenapi_state_changed.json"))
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT event_type, chat_id FROM webhook_events ORDER BY id")
        rows = [(r["event_type"], r["chat_id"]) for r in cur.fetchall()]
    assert rows == [("incomingMessageReceived", "15550000001@c.us"), ("outgoingMessageStatus", "15550000001@c.us"),
                    ("stateInstanceChanged", None)]


def test_a_meta_webhook_row_carries_its_chat_id(resources, meta_channel):
    with TestClient(create_app(resources, run_worker=False)) as client:
        for name in ("meta_text.json", "meta_status.json"):
            body = (META_FIXTURES / name).read_bytes()
            r = client.post("/webhooks/meta", content=body,
                            headers={"X-Hub-Signature-256": meta_signature(body), "Content-Type": "application/json"})
            assert r.status_code == 200, r.text
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT event_type, chat_id, channel_id FROM webhook_events ORDER BY id")
        rows = [(r["event_type"], r["chat_id"], r["channel_id"]) for r in cur.fetchall()]
    assert rows == [("message", "15550000001", meta_channel["id"]), ("status", "15550000001", meta_channel["id"])]
    assert META_PHONE_NUMBER_ID == meta_channel["instance_id"]
