"""Connecting a number: what is stored (encrypted, hashed), what is printed, what is refused."""

import io
import json

import pytest

from execution import register_channel as cmd
from execution.lib import tenant_store
from execution.lib.errors import BadRequest
from execution.lib.security import decrypt_secret, hash_token


@pytest.fixture
def agent(resources):
    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="reg", name="Reg Homes")
        return tenant_store.upsert_agent(c, organization_id=org["id"], email="reg@reg.example", name="Reg",
                                         password_hash=None)


def _channel(resources, provider):
    with resources.db.connection() as c, c.cursor() as cur:
        cur.execute("SELECT * FROM channels WHERE provider = %s", (provider,))
        return cur.fetchone()


def test_green_api_prints_every_setting_it_needs_and_stores_no_secret_in_the_clear(resources, agent, capsys,
                                                                                   monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("the-api-token\n"))
    assert cmd.main(["--agent", "reg@reg.example", "--instance", "1101000077", "--api-url",
                     "https://1101.api.greenapi.com", "--api-token", "-", "--public-url", "https://a.example"],
                    resources=resources) == 0
    out = json.loads(capsys.readouterr().out)
    settings = out["set_settings"]
    assert settings["webhookUrl"] == "https://a.example/webhooks/green-api"
    assert settings["delaySendMessagesMilliseconds"] >= 1000
    assert settings["outgoingMessageWebhook"] == "yes"            # phone replies take over
    row = _channel(resources, "green_api")
    assert row["webhook_token_hash"] == hash_token(out["webhook_token"])
    assert "the-api-token" not in json.dumps(row, default=str)
    assert decrypt_secret(resources.settings.secret_key, row["api_token_encrypted"]) == "the-api-token"


def test_meta_needs_its_app_secret_and_prints_the_dashboard_fields(resources, agent, capsys, monkeypatch):
    assert cmd.main(["--provider", "meta_cloud", "--agent", "reg@reg.example", "--instance", "100000000000077",
                     "--api-token", "tok"], resources=resources) == 1
    assert "app secret" in json.loads(capsys.readouterr().err)["message"]
    monkeypatch.setattr("sys.stdin", io.StringIO("meta-token\nmeta-secret\n"))
    assert cmd.main(["--provider", "meta_cloud", "--agent", "reg@reg.example", "--instance", "100000000000077",
                     "--api-token", "-", "--app-secret", "-", "--public-url", "https://a.example"],
                    resources=resources) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["webhook_path"] == "/webhooks/meta"
    assert out["set_settings"] == {"callback_url": "https://a.example/webhooks/meta",
                                   "verify_token": out["webhook_token"], "subscribe_fields": ["messages"]}
    row = _channel(resources, "meta_cloud")
    assert decrypt_secret(resources.settings.secret_key, row["webhook_secret_encrypted"]) == "meta-secret"
    assert row["api_url"] == "https://graph.facebook.com/v21.0"


@pytest.mark.parametrize("provider, instance", [("green_api", "not-a-number"), ("meta_cloud", "+20 100")])
def test_an_instance_that_cannot_be_the_providers_is_refused(resources, agent, provider, instance):
    with resources.db.connection() as c, pytest.raises(BadRequest):
        cmd.register_channel(c, agent_email="reg@reg.example", instance_id=instance, api_token="t",
                             app_secret="s", provider=provider, secret_key=resources.settings.secret_key)
