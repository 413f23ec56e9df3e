"""Every provider's receiving side takes any JSON a client can send without an uncaught exception."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.lib.errors import BadRequest
from execution.lib.providers.base import ParsedEvent, parse_json_object
from execution.lib.providers.green_api import GreenApiProvider
from execution.lib.providers.meta_cloud import MetaCloudProvider
from tests.conftest import FIXTURES, META_FIXTURES

PROVIDERS = (GreenApiProvider, MetaCloudProvider)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                         max_leaves=30)


def _mutations(fixture: dict):
    """A real payload with any one value replaced by anything: the shapes parsers meet in practice."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(fixture, ())
    return st.tuples(st.sampled_from(paths[1:]), documents)


def _replace(doc, path, value):
    doc = json.loads(json.dumps(doc))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def _receive(cls, payload):
    """What the worker and the intake do with a body: cut envelopes, parse each; only BadRequest may come out."""
    try:
        envelopes = cls.envelopes(payload)
    except BadRequest:
        return
    for envelope in envelopes:
        assert isinstance(envelope.event_key, str) and envelope.event_key
        events = cls.parse(envelope.payload)
        assert all(isinstance(e, ParsedEvent) for e in events)
        for event in events:
            if event.message is not None:
                cls.describe_chat(event.message.chat_id)


@pytest.mark.parametrize("cls", PROVIDERS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(st.text(max_size=12), documents, max_size=6))
def test_any_object_is_received_or_refused_with_a_reason(cls, payload):
    _receive(cls, payload)


GREEN = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("greenapi_*.json"))]
META = [json.loads(p.read_text()) for p in sorted(META_FIXTURES.glob("meta_*.json"))]


@pytest.mark.parametrize("cls, fixtures", [(GreenApiProvider, GREEN), (MetaCloudProvider, META)])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_real_payload_with_any_value_changed_never_breaks_the_parser(cls, fixtures, data):
    fixture = data.draw(st.sampled_from(fixtures))
    path, value = data.draw(_mutations(fixture))
    _receive(cls, _replace(fixture, path, value))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
def test_any_bytes_are_a_json_object_or_a_reason(body):
    try:
        assert isinstance(parse_json_object(body), dict)
    except BadRequest as exc:
        assert str(exc)
