import copy

import pytest

from execution.lib.providers.base import EventKind
from execution.lib.providers.green_api import event_key, instance_id, parse_webhook, unwrap
from tests.conftest import load_fixture

TEXT = load_fixture("greenapi_incoming_text.json")


def _with_message(message_data: dict, chat_id: str = "15550000001@c.us", **top) -> dict:
    p = copy.deepcopy(TEXT)
    p["messageData"] = message_data
    p["senderData"]["chatId"] = chat_id
    p.update(top)
    return p


@pytest.mark.parametrize(
    "fixture, kind, message_type, text",
    [
        ("greenapi_incoming_text.json", EventKind.MESSAGE, "text", "Hi, is the 2-bedroom flat still available?"),
        ("greenapi_incoming_extended_text.json", EventKind.MESSAGE, "text", None),
        ("greenapi_incoming_quoted.json", EventKind.MESSAGE, "text", "Yes, this one please"),
        ("greenapi_incoming_image.json", EventKind.MESSAGE, "image", "Like this kitchen"),
        ("greenapi_incoming_audio.json", EventKind.MESSAGE, "audio", None),
        ("greenapi_incoming_location.json", EventKind.MESSAGE, "location", None),
        ("greenapi_incoming_buttons_response.json", EventKind.MESSAGE, "choice", "Green"),
        ("greenapi_incoming_interactive_buttons_response.json", EventKind.MESSAGE, "choice", "Tomorrow"),
        ("greenapi_incoming_template_button_reply.json", EventKind.MESSAGE, "choice", "red"),
        ("greenapi_outgoing_from_phone.json", EventKind.AGENT_MESSAGE, "text", None),
        ("greenapi_outgoing_api.json", EventKind.ECHO, "text", "Here is the listing: https://example.com/listing/12"),
        ("greenapi_receive_notification.json", EventKind.MESSAGE, "text", "Hi, is the 2-bedroom flat still available?"),
    ],
)
def test_every_message_fixture_parses(fixture, kind, message_type, text):
    payload = load_fixture(fixture)
    event = parse_webhook(payload)
    assert event.kind is kind
    msg = event.message
    assert msg.message_type == message_type
    assert msg.chat_id.endswith("@c.us") and msg.provider_message_id
    if text is not None:
        assert msg.text == text
    else:
        assert msg.text is None or isinstance(msg.text, str)


def test_media_and_quotes_and_choices_keep_their_details():
    image = parse_webhook(load_fixture("greenapi_incoming_image.json")).message
    assert image.media["url"].startswith("https://") and image.media["mime_type"] == "image/jpeg"
    quoted = parse_webhook(load_fixture("greenapi_incoming_quoted.json")).message
    assert quoted.quoted_id == "3EB063C771F28EB323FAE3"
    choice = parse_webhook(load_fixture("greenapi_incoming_interactive_buttons_response.json")).message
    assert choice.media["choice_id"] == "2" and choice.quoted_id == "BAE5FB1FDA0E58E8"
    loc = parse_webhook(load_fixture("greenapi_incoming_location.json")).message
    assert isinstance(loc.media["latitude"], float) and isinstance(loc.media["longitude"], float)


@pytest.mark.parametrize(
    "fixture, status",
    [("greenapi_status_delivered.json", "delivered"), ("greenapi_status_read.json", "read"),
     ("greenapi_status_noaccount.json", "no_account")],
)
def test_status_fixtures(fixture, status):
    event = parse_webhook(load_fixture(fixture))
    assert event.kind is EventKind.STATUS and event.status.status == status
    if status == "no_account":
        assert event.status.description == "SWE004: 1000"


def test_state_change():
    event = parse_webhook(load_fixture("greenapi_state_changed.json"))
    assert event.kind is EventKind.STATE and event.details == {"state": "notAuthorized"}


@pytest.mark.parametrize(
    "data, message_type, text, quoted",
    [
        ({"typeMessage": "videoMessage", "fileMessageData": {"downloadUrl": "https://x/v.mp4", "caption": "tour",
                                                             "mimeType": "video/mp4"}}, "video", "tour", None),
        ({"typeMessage": "documentMessage", "fileMessageData": {"downloadUrl": "https://x/c.pdf", "fileName": "c.pdf",
                                                                "mimeType": "application/pdf"}}, "document", None, None),
        ({"typeMessage": "stickerMessage", "fileMessageData": {"downloadUrl": "https://x/s.webp"}}, "sticker", None, None),
        ({"typeMessage": "contactMessage", "contactMessageData": {"displayName": "Omar", "vcard": "BEGIN:VCARD"}},
         "contact", "Omar", None),
        ({"typeMessage": "contactsArrayMessage", "messageData": {"contacts": [{"displayName": "A", "vcard": "v"},
                                                                             {"displayName": "B", "vcard": "v"}]}},
         "contact", "A, B", None),
        ({"typeMessage": "listResponseMessage", "listResponseMessage": {
            "title": "Maadi", "singleSelectReply": {"selectedRowId": "maadi"}, "stanzaId": "L1"}}, "choice", "Maadi", "L1"),
        ({"typeMessage": "reactionMessage", "extendedTextMessageData": {"text": "👍"},
          "quotedMessage": {"stanzaId": "R1"}}, "reaction", "👍", "R1"),
        ({"typeMessage": "pollMessage", "pollMessageData": {"name": "Budget?", "options": [{"optionName": "a"}],
                                                            "multipleAnswers": False}}, "poll", "Budget?", None),
        ({"typeMessage": "pollUpdateMessage", "pollMessageData": {"stanzaId": "P1", "name": "Budget?", "votes": []}},
         "poll_update", "Budget?", "P1"),
        ({"typeMessage": "editedMessage", "editedMessageData": {"textMessage": "3 bedrooms not 2", "stanzaId": "E1"}},
         "edited", "3 bedrooms not 2", "E1"),
        ({"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": "D1"}}, "deleted", None, "D1"),
        ({"typeMessage": "textMessage", "textMessageData": {"textMessage": "this one"},
          "quotedMessage": {"stanzaId": "Q1", "typeMessage": "textMessage", "textMessage": "old"}}, "text", "this one", "Q1"),
    ],
)
def test_every_message_kind_parses(data, message_type, text, quoted):
    msg = parse_webhook(_with_message(data)).message
    assert (msg.message_type, msg.text, msg.quoted_id) == (message_type, text, quoted)


def test_group_and_lid_chat_ids_stay_opaque():
    group = parse_webhook(_with_message(TEXT["messageData"], chat_id="120363043968066561@g.us")).message
    assert group.is_group and group.chat_id == "120363043968066561@g.us"
    lid = parse_webhook(_with_message(TEXT["messageData"], chat_id="120650379300963@lid")).message
    assert not lid.is_group and lid.chat_id == "120650379300963@lid"


def test_calls_are_messages_of_their_own_kind():
    call = {"typeWebhook": "incomingCall", "instanceData": TEXT["instanceData"], "from": "15550000001@c.us",
            "status": "offer", "timestamp": 1, "idMessage": "CALL1"}
    event = parse_webhook(call)
    assert event.kind is EventKind.CALL and event.message.message_type == "call"
    assert event_key(call) != event_key({**call, "status": "hangUp"})
    # Stored with the caller's chat, so it is applied in order with that chat's messages.
    from execution.lib.providers.green_api import GreenApiProvider

    assert [e.chat_id for e in GreenApiProvider.envelopes(call)] == ["15550000001@c.us"]


@pytest.mark.parametrize(
    "payload, reason",
    [
        (_with_message({"typeMessage": "brandNewMessage"}), "brandNewMessage"),
        ({"typeWebhook": "somethingNew", "instanceData": {"idInstance": 1}}, "somethingNew"),
        ({"instanceData": {"idInstance": 1}}, "typeWebhook missing"),
        ({**TEXT, "senderData": {}}, "without chatId"),
    ],
)
def test_unknown_kinds_are_ignored_with_a_reason(payload, reason):
    event = parse_webhook(payload)
    assert event.kind is EventKind.IGNORED and reason in event.reason


def test_event_keys_come_from_provider_ids():
    delivered = load_fixture("greenapi_status_delivered.json")
    read = load_fixture("greenapi_status_read.json")
    assert event_key(delivered) != event_key(read)
    assert event_key(TEXT) == event_key(copy.deepcopy(TEXT)) == "1101000001:incomingMessageReceived:" + TEXT["idMessage"]
    no_id = {k: v for k, v in TEXT.items() if k != "idMessage"}
    assert event_key(no_id) == event_key(copy.deepcopy(no_id)) and "sha256" in event_key(no_id)
    assert instance_id(unwrap(load_fixture("greenapi_receive_notification.json"))) == "1101000001"
