from __future__ import annotations

import copy
import hashlib
import hmac
import json
import socket
from datetime import datetime, timezone
from pathlib import Path

import pytest

from execution.lib.errors import (
    BadRequest,
    ConfigError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderRetryable,
    Unauthorized,
)
from execution.lib.providers.base import EventKind, WebhookRequest
from execution.lib.providers.meta_cloud import DEFAULT_API_URL, MetaCloudProvider
from execution.lib.security import encrypt_secret, hash_token
from tests.fakes.meta_graph_server import FakeGraphApi

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "meta"
APP_SECRET = "test_app_secret_not_real"
NUMBER = "100000000000001"
TOKEN = "test-meta-access-token-not-real"
SIGNATURES = {
    "meta_text.json": "sha256=1603bec93f8c5ce5b475c4104aea15fd139cf5c16198cf087b9b060aa4bed7ca",
    "meta_interactive_reply.json": "sha256=942277d8d7bb8139e2ab1976946927ed761ca5468dc9e95734f7e39bb5cb8723",
    "meta_status.json": "sha256=998754c7a04ad3cbd7ace53e6845d01d9b4c5e971c2a547aefebabb8ac25a161",
}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def events(name: str):
    """(envelopes, parsed events) of a fixture body."""
    envs = MetaCloudProvider.envelopes(MetaCloudProvider.read_body(raw(name)))
    return envs, [e for env in envs for e in MetaCloudProvider.parse(env.payload)]


def only_message(name: str):
    envs, parsed = events(name)
    assert len(envs) == 1 and len(parsed) == 1 and parsed[0].kind is EventKind.MESSAGE
    return parsed[0].message


def post(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"x-hub-signature-256": signature} if signature is not None else {}
    return WebhookRequest(method="POST", headers=headers, query={}, body=body)


# ---------------------------------------------------------------- receiving


def test_class_attributes():
    assert (MetaCloudProvider.name, MetaCloudProvider.route) == ("meta_cloud", "meta")
    assert MetaCloudProvider.window_hours == 24 and MetaCloudProvider.sends_templates is True


@pytest.mark.parametrize(
    "fixture, message_type, text",
    [
        ("meta_text.json", "text", "Does it come in another color?"),
        ("meta_interactive_reply.json", "choice", "Tomorrow"),
        ("meta_list_reply.json", "choice", "Center"),
        ("meta_button.json", "choice", "Yes, confirm"),
        ("meta_image.json", "image", "Like this kitchen"),
        ("meta_audio.json", "audio", None),
        ("meta_document.json", "document", "The signed offer"),
        ("meta_location.json", "location", "Open house"),
        ("meta_contacts.json", "contact", "Omar Example"),
        ("meta_reaction.json", "reaction", "\U0001F44D"),
    ],
)
def test_every_message_fixture_parses(fixture, message_type, text):
    envs, _ = events(fixture)
    msg = only_message(fixture)
    assert (msg.message_type, msg.text) == (message_type, text)
    assert msg.chat_id == msg.sender_id == "15550000001" and not msg.is_group
    assert msg.sender_name == "Test Customer"
    assert msg.provider_message_id.startswith("wamid.TEST")
    assert isinstance(msg.timestamp, datetime) and msg.timestamp.tzinfo is timezone.utc
    assert envs[0].instance_key == NUMBER and envs[0].event_type == "message"
    assert envs[0].event_key == f"{NUMBER}:msg:{msg.provider_message_id}"


def test_text_keeps_its_envelope_self_contained():
    (env,), _ = events("meta_text.json")
    assert env.payload["object"] == "whatsapp_business_account" and env.payload["field"] == "messages"
    assert env.payload["metadata"]["phone_number_id"] == NUMBER
    assert env.payload["contacts"] == [{"profile": {"name": "Test Customer"}, "wa_id": "15550000001"}]
    assert env.payload["message"]["text"]["body"] == "Does it come in another color?"
    msg = only_message("meta_text.json")
    assert msg.timestamp == datetime.fromtimestamp(1749416383, tz=timezone.utc) and msg.quoted_id is None


def test_choices_carry_their_id_source_and_quoted_message():
    button = only_message("meta_interactive_reply.json")
    assert button.media == {"choice_id": "slot_tomorrow", "source": "button_reply"}
    assert button.quoted_id == "wamid.TEST0000000000000000000000000000000010"
    listed = only_message("meta_list_reply.json")
    assert listed.media == {"choice_id": "d1", "source": "list_reply"}
    assert listed.quoted_id == "wamid.TEST0000000000000000000000000000000011"
    template = only_message("meta_button.json")
    assert template.media == {"choice_id": "confirm_viewing", "source": "button"}
    assert template.quoted_id == "wamid.TEST0000000000000000000000000000000012"


def test_media_location_contacts_and_reaction_details():
    assert only_message("meta_image.json").media == {
        "media_id": "1000000000000101", "mime_type": "image/jpeg",
        "sha256": "KZ6lrP3o1dU9Ejm3rHp6KU2hXcJZq3bNfUMQ0bkQ5fA="}
    audio = only_message("meta_audio.json").media
    assert audio["voice"] is True and audio["media_id"] == "1000000000000102"
    assert audio["mime_type"] == "audio/ogg; codecs=opus" and "file_name" not in audio
    document = only_message("meta_document.json").media
    assert document["file_name"] == "offer-flat-12.pdf" and document["mime_type"] == "application/pdf"
    assert only_message("meta_location.json").media == {
        "latitude": 38.9071923, "longitude": -77.0368707, "name": "Open house", "address": "1 Example St, Springfield"}
    assert only_message("meta_contacts.json").media == {
        "contacts": [{"name": "Omar Example", "phones": [{"phone": "+1 555-000-0002", "wa_id": "15550000002"}]}]}
    reaction = only_message("meta_reaction.json")
    assert reaction.quoted_id == "wamid.TEST0000000000000000000000000000000010" and reaction.media is None


@pytest.mark.parametrize(
    "fixture, status, chat_id, description",
    [
        ("meta_status.json", "delivered", "15550000001", None),
        ("meta_status_read.json", "read", "15550000001", None),
        ("meta_status_failed.json", "failed", "15550000009", "131026: Message undeliverable"),
    ],
)
def test_status_fixtures(fixture, status, chat_id, description):
    (env,), (event,) = events(fixture)
    assert event.kind is EventKind.STATUS and event.event_type == "status"
    update = event.status
    assert (update.status, update.chat_id, update.description) == (status, chat_id, description)
    assert update.provider_message_id.startswith("wamid.TEST") and update.timestamp is not None
    assert env.event_key == f"{NUMBER}:status:{update.provider_message_id}:{status}" and env.event_type == "status"


def test_error_webhook_is_an_operator_notice():
    (env,), (event,) = events("meta_error.json")
    assert event.kind is EventKind.NOTICE and event.event_type == env.event_type == "error"
    assert event.details["code"] == 130429 and event.details["title"] == "Rate limit hit"
    assert event.details["details"].startswith("Message failed to send because there were too many messages")
    assert env.event_key.startswith(f"{NUMBER}:error:sha256:")


def test_a_batched_body_gives_one_envelope_per_message_and_status():
    envs, parsed = events("meta_batch.json")
    assert [e.event_type for e in envs] == ["message", "message", "status"]
    assert [e.instance_key for e in envs] == [NUMBER, NUMBER, "100000000000003"]
    assert len({e.event_key for e in envs}) == 3
    first, second, status = parsed
    assert (first.message.text, first.message.sender_name) == ("Is parking included?", "Test Customer")
    assert (second.message.text, second.message.sender_name) == ("Can I see it on Saturday?", "Second Customer")
    assert second.message.chat_id == "15550000004"
    assert [c["wa_id"] for c in envs[1].payload["contacts"]] == ["15550000004"]
    assert status.kind is EventKind.STATUS and status.status.status == "sent"
    assert envs[2].payload["metadata"]["phone_number_id"] == "100000000000003" and "contacts" not in envs[2].payload


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("meta_*.json")))
def test_a_duplicate_delivery_gives_identical_keys(fixture):
    first, _ = events(fixture)
    again = MetaCloudProvider.envelopes(json.loads(raw(fixture)))
    assert [(e.instance_key, e.event_key) for e in first] == [(e.instance_key, e.event_key) for e in again]


def test_other_fields_are_stored_under_their_field_and_ignored():
    body = json.loads(raw("meta_text.json"))
    change = body["entry"][0]["changes"][0]
    change["field"] = "account_update"
    change["value"] = {"metadata": {"phone_number_id": NUMBER}, "event": "VERIFIED_ACCOUNT"}
    (env,) = MetaCloudProvider.envelopes(body)
    assert env.event_type == "account_update" and "sha256" in env.event_key and env.instance_key == NUMBER
    (event,) = MetaCloudProvider.parse(env.payload)
    assert event.kind is EventKind.IGNORED and "account_update" in event.reason


def test_fields_without_a_phone_number_are_skipped():
    body = json.loads(raw("meta_batch.json"))
    body["entry"].append({"id": "1", "changes": [{"field": "message_template_status_update",
                                                  "value": {"event": "APPROVED", "message_template_id": 1}}]})
    assert len(MetaCloudProvider.envelopes(body)) == 3


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"object": "page", "entry": []}, "whatsapp_business_account"),
        ({"entry": []}, "whatsapp_business_account"),
        ({"object": "whatsapp_business_account"}, "entry"),
        ({"object": "whatsapp_business_account", "entry": {"id": "1"}}, "entry"),
        ({"object": "whatsapp_business_account", "entry": []}, "phone_number_id"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
            "messages": [{"id": "wamid.X", "from": "1", "type": "text"}]}}]}]}, "phone_number_id"),
        ({"object": "whatsapp_business_account",
          "entry": [{"changes": [{"field": "account_update", "value": {"event": "X"}}]}]}, "phone_number_id"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": NUMBER}}}]}]}, "phone_number_id"),
    ],
)
def test_bodies_naming_no_channel_are_bad_requests(body, reason):
    with pytest.raises(BadRequest, match=reason):
        MetaCloudProvider.envelopes(body)


# ---------------------------------------------------------------- odd shapes


def _slice(fixture: str, **changes) -> dict:
    (env,), _ = events(fixture)
    payload = copy.deepcopy(env.payload)
    for path, value in changes.items():
        target = payload
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return payload


@pytest.mark.parametrize(
    "payload, reason",
    [
        (_slice("meta_text.json", message=["not", "a", "dict"]), "not an object"),
        (_slice("meta_text.json", message__from=None), "without from or id"),
        (_slice("meta_text.json", message__id={"x": 1}), "without from or id"),
        (_slice("meta_text.json", message__text=["body"]), "without body"),
        (_slice("meta_text.json", message__type="order"), "'order' is not handled"),
        (_slice("meta_text.json", message__type=None), "None is not handled"),
        (_slice("meta_text.json", message__type="unsupported",
                message__errors=[{"code": 131051, "title": "Message type unknown"}]), "error 131051"),
        (_slice("meta_interactive_reply.json", message__interactive__type="nfm_reply"), "'nfm_reply' is not handled"),
        (_slice("meta_interactive_reply.json", message__interactive__button_reply=[1]), "without id or title"),
        (_slice("meta_image.json", message__image="x"), "without its image object"),
        (_slice("meta_location.json", message__location__latitude="38.9"), "without coordinates"),
        (_slice("meta_contacts.json", message__contacts={"name": "x"}), "without contacts"),
        (_slice("meta_reaction.json", message__reaction__message_id=None), "without message_id"),
        (_slice("meta_status.json", status="delivered"), "not an object"),
        (_slice("meta_status.json", status__id=None), "without id"),
        (_slice("meta_status.json", status__status="played"), "'played' is not tracked"),
        (_slice("meta_status.json", status__status="deleted"), "'deleted' is not tracked"),
        (_slice("meta_error.json", error=[130429]), "not an object"),
        ({"field": "messages"}, "'messages' is not handled"),
        ({"field": ["x"]}, "'unknown' is not handled"),
    ],
)
def test_odd_shapes_are_ignored_with_a_reason(payload, reason):
    (event,) = MetaCloudProvider.parse(payload)
    assert event.kind is EventKind.IGNORED and reason in event.reason


def test_lenient_readings():
    numeric_ids = MetaCloudProvider.parse(_slice("meta_text.json", message__from=15550000001, contacts="oops"))
    assert numeric_ids[0].message.chat_id == "15550000001" and numeric_ids[0].message.sender_name is None
    removed = MetaCloudProvider.parse(_slice("meta_reaction.json", message__reaction__emoji=None))[0].message
    assert removed.message_type == "reaction" and removed.text == ""
    group = MetaCloudProvider.parse(_slice("meta_text.json", message__group_id="G123"))[0].message
    assert group.is_group and group.chat_id == "group:G123" and group.sender_id == "15550000001"
    failed_without_errors = _slice("meta_status_failed.json", status__errors="x")
    assert MetaCloudProvider.parse(failed_without_errors)[0].status.description is None
    bad_time = MetaCloudProvider.parse(_slice("meta_text.json", message__timestamp="soon"))[0].message
    assert bad_time.timestamp is None
    assert MetaCloudProvider.parse([1, 2])[0].kind is EventKind.IGNORED


_ODD_VALUES = (None, [], {}, 7, "x", True, [{"x": 1}])


def _mutations(node, path=()):
    """Every copy of a body with one node replaced by an odd value."""
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return
    for key, child in items:
        yield path + (key,), child
        yield from _mutations(child, path + (key,))


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("meta_*.json")))
def test_no_odd_shape_makes_receiving_raise(fixture):
    body = json.loads(raw(fixture))
    for path, _ in list(_mutations(body)):
        for odd in _ODD_VALUES:
            mutated = copy.deepcopy(body)
            target = mutated
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = odd
            try:
                envs = MetaCloudProvider.envelopes(mutated)
            except BadRequest:
                continue
            for env in envs:
                assert isinstance(env.instance_key, str) and isinstance(env.event_key, str)
                for event in MetaCloudProvider.parse(env.payload):
                    assert event.kind is not EventKind.IGNORED or event.reason


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize("fixture", sorted(SIGNATURES))
def test_published_signatures_verify_over_the_exact_bytes(fixture):
    MetaCloudProvider.verify(post(raw(fixture), SIGNATURES[fixture]), {"webhook_secret": APP_SECRET})


@pytest.mark.parametrize("fixture", sorted(SIGNATURES))
def test_a_changed_byte_fails(fixture):
    body = bytearray(raw(fixture))
    body[len(body) // 2] ^= 0x01
    with pytest.raises(Unauthorized):
        MetaCloudProvider.verify(post(bytes(body), SIGNATURES[fixture]), {"webhook_secret": APP_SECRET})
    reserialised = json.dumps(json.loads(raw(fixture))).encode()
    with pytest.raises(Unauthorized):
        MetaCloudProvider.verify(post(reserialised, SIGNATURES[fixture]), {"webhook_secret": APP_SECRET})


def _sha1(body: bytes) -> str:
    return "sha1=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()


@pytest.mark.parametrize(
    "signature, channel",
    [
        (None, {"webhook_secret": APP_SECRET}),
        ("", {"webhook_secret": APP_SECRET}),
        (SIGNATURES["meta_text.json"], {"webhook_secret": "another_secret"}),
        (SIGNATURES["meta_text.json"], {"webhook_secret": None}),
        (SIGNATURES["meta_text.json"], {"webhook_secret": ""}),
        (SIGNATURES["meta_text.json"], {}),
        (SIGNATURES["meta_text.json"].replace("sha256=", ""), {"webhook_secret": APP_SECRET}),
        (SIGNATURES["meta_text.json"].replace("sha256=", "sha1="), {"webhook_secret": APP_SECRET}),
        (_sha1(raw("meta_text.json")), {"webhook_secret": APP_SECRET}),
        (SIGNATURES["meta_text.json"][:-2], {"webhook_secret": APP_SECRET}),
        ("sha256=" + "é" * 64, {"webhook_secret": APP_SECRET}),
    ],
)
def test_bad_signatures_are_unauthorized(signature, channel):
    with pytest.raises(Unauthorized):
        MetaCloudProvider.verify(post(raw("meta_text.json"), signature), channel)


def test_get_handshake_returns_the_token_hash_and_the_challenge():
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    request = WebhookRequest(method="GET", headers={}, query=query)
    assert MetaCloudProvider.verify_token_hash(request) == (hash_token("verify-me"), "1158201444")
    for broken in ({**query, "hub.mode": "unsubscribe"}, {**query, "hub.verify_token": ""},
                   {k: v for k, v in query.items() if k != "hub.challenge"}, {}):
        assert MetaCloudProvider.verify_token_hash(WebhookRequest(method="GET", headers={}, query=broken)) is None


# ---------------------------------------------------------------- chats


def test_chat_keys_and_descriptions():
    assert MetaCloudProvider.chat_key("+1 (555) 000-0001") == "15550000001"
    one = MetaCloudProvider.describe_chat("15550000001")
    assert (one.is_group, one.contact_key, one.answerable) == (False, "15550000001", True)
    group = MetaCloudProvider.describe_chat("group:G123")
    assert (group.is_group, group.contact_key, group.answerable) == (True, None, False)
    assert not MetaCloudProvider.describe_chat("12345").answerable
    assert not MetaCloudProvider.describe_chat("1234567890123456").answerable
    odd = MetaCloudProvider.describe_chat("+15550000001")
    assert odd.contact_key == "15550000001" and not odd.answerable
    assert MetaCloudProvider.describe_chat("abc").contact_key is None


# ---------------------------------------------------------------- sending


@pytest.fixture()
def graph():
    server = FakeGraphApi().start()
    yield server
    server.stop()


def make(graph: FakeGraphApi, **kw) -> MetaCloudProvider:
    options = {"api_url": graph.url, "access_token": TOKEN, "connect_timeout_s": 0.5, "read_timeout_s": 0.5,
               "backoff_s": 0.001, "max_total_s": 2.0, **kw}
    return MetaCloudProvider(phone_number_id=NUMBER, **options)


def sent(graph: FakeGraphApi) -> dict:
    (call,) = graph.calls()
    assert call["authorization"] == f"Bearer {TOKEN}" and call["path"] == f"/v21.0/{NUMBER}/messages"
    return call["body"]


def _envelope(kind: str, content: dict, to: str = "15550000001") -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: content}


def test_from_channel_decrypts_the_token_and_defaults_the_url(graph):
    secret_key = "test-app-secret-key"
    channel = {"id": 1, "provider": "meta_cloud", "api_url": graph.url, "instance_id": NUMBER,
               "api_token_encrypted": encrypt_secret(secret_key, TOKEN)}
    provider = MetaCloudProvider.from_channel(channel, secret_key=secret_key)
    assert provider.send_text(chat_id="15550000001", text="hi").provider_message_id.startswith("wamid.FAKE")
    assert graph.calls()[0]["token_ok"]
    default = MetaCloudProvider.from_channel({**channel, "api_url": ""}, secret_key=secret_key)
    assert repr(default) == f"MetaCloudProvider(url='{DEFAULT_API_URL}/{NUMBER}/messages')"
    assert TOKEN not in repr(default)
    with pytest.raises(ConfigError):
        MetaCloudProvider.from_channel({**channel, "api_token_encrypted": None}, secret_key=secret_key)


def test_send_text(graph):
    result = make(graph).send_text(chat_id="15550000001", text="Here is the listing: https://example.com/l/12")
    assert result.provider_message_id.startswith("wamid.FAKE") and result.delivery_status == "pending"
    text = "Here is the listing: https://example.com/l/12"
    assert sent(graph) == _envelope("text", {"preview_url": True, "body": text})


def test_send_text_quoting_a_message(graph):
    make(graph).send_text(chat_id="+1 555 000 0001", text="Yes", quoted_id="wamid.TEST1")
    assert sent(graph) == {**_envelope("text", {"preview_url": False, "body": "Yes"}),
                           "context": {"message_id": "wamid.TEST1"}}


@pytest.mark.parametrize(
    "file_name, caption, kind, content",
    [
        ("flat-12.JPG", "Living room", "image", {"link": "https://x/f", "caption": "Living room"}),
        ("plan.png", None, "image", {"link": "https://x/f"}),
        ("tour.mp4", "Tour", "video", {"link": "https://x/f", "caption": "Tour"}),
        ("note.ogg", None, "audio", {"link": "https://x/f"}),
        ("note.mp3", "Listen", "document", {"link": "https://x/f", "filename": "note.mp3", "caption": "Listen"}),
        ("offer.pdf", "Offer", "document", {"link": "https://x/f", "filename": "offer.pdf", "caption": "Offer"}),
        ("README", None, "document", {"link": "https://x/f", "filename": "README"}),
        ("sticker.webp", None, "document", {"link": "https://x/f", "filename": "sticker.webp"}),
    ],
)
def test_send_file_picks_the_kind_by_extension(graph, file_name, caption, kind, content):
    make(graph).send_file(chat_id="15550000001", url="https://x/f", file_name=file_name, caption=caption)
    assert sent(graph) == _envelope(kind, content)


def test_send_location(graph):
    make(graph).send_location(chat_id="15550000001", latitude=12.3456789, longitude=10.1112131, name="Showroom",
                              address="1 Example St")
    assert sent(graph) == _envelope("location", {"latitude": 12.3456789, "longitude": 10.1112131, "name": "Showroom",
                                                 "address": "1 Example St"})


def test_send_template(graph):
    provider = make(graph)
    provider.send_template(chat_id="15550000001", name="viewing_reminder", language="en_US",
                           parameters=("Tomorrow 10:00", "Flat 12"))
    provider.send_template(chat_id="15550000001", name="hello", language="en")
    first, second = (c["body"] for c in graph.calls())
    parameters = [{"type": "text", "text": "Tomorrow 10:00"}, {"type": "text", "text": "Flat 12"}]
    assert first == _envelope("template", {"name": "viewing_reminder", "language": {"code": "en_US"},
                                           "components": [{"type": "body", "parameters": parameters}]})
    assert second == _envelope("template", {"name": "hello", "language": {"code": "en"}})


def test_groups_and_empty_recipients_are_refused_before_any_request(graph):
    provider = make(graph)
    for chat_id in ("group:G123", "abc"):
        with pytest.raises(ProviderRejected):
            provider.send_text(chat_id=chat_id, text="hi")
    assert graph.calls() == []


def _raised(exc_type, call) -> ProviderError:
    with pytest.raises(exc_type) as info:
        call()
    exc = info.value
    for text in (str(exc), repr(exc), exc.detail or "", *map(str, exc.args)):
        assert TOKEN not in text
    return exc


@pytest.mark.parametrize(
    "code, meaning",
    [
        (131047, "re-engagement"),
        (131026, "undeliverable"),
        (100, "invalid parameter"),
    ],
)
def test_rejections_are_not_retried(graph, code, meaning):
    graph.plan(("error", code), 200)
    exc = _raised(ProviderRejected, lambda: make(graph).send_text(chat_id="15550000001", text="hi"))
    assert exc.code == code and exc.status == 400 and f"Meta error {code} (" in str(exc) and meaning in str(exc)
    assert exc.detail and len(graph.calls()) == 1


def test_an_expired_token_is_rejected_and_named(graph):
    exc = _raised(ProviderRejected, lambda: make(graph, access_token="expired-token").send_text(
        chat_id="15550000001", text="hi"))
    assert str(exc) == "sendMessage: Meta error 190 (access token expired or invalid)"
    assert exc.code == 190 and exc.status == 401 and len(graph.calls()) == 1 and not graph.calls()[0]["token_ok"]


def test_rate_limit_is_retried_then_succeeds(graph):
    graph.plan(("error", 130429), 200)
    result = make(graph).send_text(chat_id="15550000001", text="hi")
    assert result.provider_message_id.startswith("wamid.FAKE") and len(graph.calls()) == 2


def test_rate_limits_give_up_after_the_attempts(graph):
    graph.plan(("error", 130429), ("error", 131056), ("error", 80007), 200)
    exc = _raised(ProviderRetryable, lambda: make(graph, max_attempts=3).send_text(chat_id="15550000001", text="hi"))
    assert exc.code == 80007 and len(graph.calls()) == 3


@pytest.mark.parametrize("first", [500, 503, ("error", 2), ("error", 4), 429])
def test_server_errors_are_retried(graph, first):
    graph.plan(first, 200)
    make(graph).send_file(chat_id="15550000001", url="https://x/f", file_name="a.pdf")
    assert len(graph.calls()) == 2


def test_a_read_timeout_is_an_unknown_outcome_and_not_resent(graph):
    graph.plan(("slow", 0.5), 200)
    exc = _raised(ProviderOutcomeUnknown, lambda: make(graph, read_timeout_s=0.1).send_text(
        chat_id="15550000001", text="hi"))
    assert "0.1s" in str(exc) and len(graph.calls()) == 1


def test_a_dropped_connection_is_an_unknown_outcome(graph):
    graph.plan(("drop",), 200)
    _raised(ProviderOutcomeUnknown, lambda: make(graph).send_text(chat_id="15550000001", text="hi"))
    assert len(graph.calls()) == 1


def test_a_refused_connection_is_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = MetaCloudProvider(api_url=f"http://127.0.0.1:{port}/v21.0", phone_number_id=NUMBER,
                                 access_token=TOKEN, backoff_s=0.001, max_attempts=2)
    exc = _raised(ProviderRetryable, lambda: provider.send_text(chat_id="15550000001", text="hi"))
    assert "refused" in str(exc)


@pytest.mark.parametrize(
    "answer",
    [(200, {"messaging_product": "whatsapp"}), (200, {"messages": []}), (200, {"messages": [{"id": 5}]}), (200, [1])],
)
def test_a_200_without_a_message_id_is_an_unknown_outcome(graph, answer):
    graph.plan(answer)
    exc = _raised(ProviderOutcomeUnknown, lambda: make(graph).send_text(chat_id="15550000001", text="hi"))
    assert "messages[0].id" in str(exc) and len(graph.calls()) == 1


def test_unexpected_error_bodies(graph):
    graph.plan((400, "not json"), (403, {"error": {"code": "10", "message": "(#10) Permission denied"}}))
    provider = make(graph)
    plain = _raised(ProviderRejected, lambda: provider.send_text(chat_id="15550000001", text="hi"))
    assert str(plain) == "sendMessage: HTTP 400" and plain.code is None
    named = _raised(ProviderRejected, lambda: provider.send_text(chat_id="15550000001", text="hi"))
    assert named.code == 10 and "(#10) Permission denied" in str(named)


def test_the_token_never_leaks_even_when_meta_echoes_it(graph):
    echo = {"error": {"code": 999, "message": f"bad token {TOKEN}", "error_data": {"details": f"token={TOKEN}"}}}
    graph.plan((400, echo), (500, echo), (500, echo), (500, echo))
    provider = make(graph)
    rejected = _raised(ProviderRejected, lambda: provider.send_text(chat_id="15550000001", text="hi"))
    assert "***" in str(rejected) and "***" in rejected.detail
    _raised(ProviderRetryable, lambda: provider.send_text(chat_id="15550000001", text="hi"))
