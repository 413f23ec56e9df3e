"""The inbox's JSON API: login and sessions, CSRF, rate limits, isolation between agents (a walk over
every route with agent A's session and agent B's ids), the organization admin, replies sent once,
drafts, listings and import, and live events with resume."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from execution.identify_conversation import identify_conversation
from execution.lib import message_store, tenant_store
from execution.lib.listing_import import import_listings
from execution.lib.providers import provider_class
from execution.lib.resources import Resources
from execution.lib.security import hash_password
from main import create_app
from tests.conftest import StaticDirectives

ROOT = Path(__file__).resolve().parents[1]
NILE = ROOT / "execution" / "demo_data" / "listings_nile_homes.csv"
DELTA = ROOT / "execution" / "demo_data" / "listings_delta_realty.csv"
PASSWORD = "a-long-test-password"
B_SECRET_TEXT = "omar-customer-secret-text budget 9M"


def _agency(conn, slug, name, email, agent_name, listings, *, role="agent", customer="201000000001",
            text="hello, 2 bedrooms in Maadi?"):
    org = tenant_store.upsert_organization(conn, slug=slug, name=name)
    agent = tenant_store.upsert_agent(conn, organization_id=org["id"], email=email, name=agent_name,
                                      password_hash=hash_password(PASSWORD))
    with conn.cursor() as cur:
        cur.execute("UPDATE agents SET role = %s WHERE id = %s", (role, agent["id"]))
    channel = tenant_store.upsert_channel(conn, organization_id=org["id"], agent_id=agent["id"], provider="sandbox",
                                          instance_id=f"sb{slug}")
    if listings:
        assert not import_listings(conn, path=listings, agent={**agent, "organization_id": org["id"]},
                                   reassign=True).errors
    convo = identify_conversation(conn, channel=channel, chat_id=provider_class("sandbox").chat_key(customer))
    message_store.insert_message(conn, organization_id=org["id"], conversation_id=convo["id"], direction="inbound",
                                 author="customer", body=text, provider_message_id=f"in-{slug}")
    draft = message_store.insert_message(conn, organization_id=org["id"], conversation_id=convo["id"],
                                         direction="outbound", author="ai", body=f"draft of {agent_name}",
                                         delivery_status="suppressed")
    return {"org": org, "agent": agent, "channel": channel, "conversation": convo, "draft": draft}


@pytest.fixture
def world(resources):
    with resources.db.transaction() as conn:
        a = _agency(conn, "acme", "Acme Homes", "sara@acme.example", "Sara", NILE)
        b = _agency(conn, "delta", "Delta Realty", "omar@delta.example", "Omar", DELTA, customer="201000000002",
                    text=B_SECRET_TEXT)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO escalations (organization_id, conversation_id, message_id, rule, category, reason) "
                        "SELECT organization_id, conversation_id, id, 'complaint', 'complaint', 'b secret reason' "
                        "FROM messages WHERE provider_message_id = 'in-delta'")
            cur.execute("INSERT INTO viewings (organization_id, agent_id, conversation_id, property_id, starts_at, "
                        "ends_at, blocked_until, booked_by, idempotency_key) "
                        "SELECT p.organization_id, p.agent_id, %s, p.id, now() + interval '2 days', "
                        "now() + interval '2 days 45 minutes', now() + interval '2 days 1 hour', 'assistant', 'b-view' "
                        "FROM properties p WHERE p.agent_id = %s ORDER BY p.id LIMIT 1 RETURNING id",
                        (b["conversation"]["id"], b["agent"]["id"]))
            b["viewing_id"] = cur.fetchone()["id"]
            cur.execute("INSERT INTO followups (organization_id, conversation_id, kind, due_at, owner, idempotency_key) "
                        "VALUES (%s, %s, 'answer_question', now(), 'agent', 'b-task') RETURNING id",
                        (b["org"]["id"], b["conversation"]["id"]))
            b["task_id"] = cur.fetchone()["id"]
    return a, b


@pytest.fixture
def app(resources):
    res = Resources(dataclasses.replace(resources.settings, simulator=False), resources.db, resources.redis,
                    "test", "test")
    return create_app(res, run_worker=False, directives=StaticDirectives())


_OPEN: list = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _OPEN:
        _OPEN.pop().__exit__(None, None, None)


def _login(app, email, *, https=False):
    client = TestClient(app, base_url="https://testserver" if https else "http://testserver")
    client.__enter__()
    _OPEN.append(client)
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
    return client, response


def test_login_sets_a_safe_cookie_and_wrong_passwords_are_limited(app, world, resources):
    with TestClient(app) as anon:
        assert anon.get("/api/conversations").status_code == 401
        page = anon.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        for _ in range(5):
            wrong = anon.post("/api/auth/login", json={"email": "sara@acme.example", "password": "nope"})
            assert wrong.status_code == 401 and wrong.json()["error"] == "wrong email or password"
        unknown = anon.post("/api/auth/login", json={"email": "nobody@acme.example", "password": "nope"})
        assert unknown.json()["error"] == "wrong email or password"
        blocked = anon.post("/api/auth/login", json={"email": "sara@acme.example", "password": PASSWORD})
        assert blocked.status_code == 429 and "try again in" in blocked.json()["error"]
        assert int(blocked.headers["retry-after"]) > 0
    resources.redis.flushdb()
    client, response = _login(app, "sara@acme.example")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/", follow_redirects=False).status_code == 200
    _, secure = _login(app, "sara@acme.example", https=True)
    assert "secure" in secure.headers["set-cookie"].lower()
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT token_hash FROM agent_sessions")
        stored = [r["token_hash"] for r in cur.fetchall()]
    token = re.search(r"session=([^;]+)", response.headers["set-cookie"]).group(1)
    assert token not in stored and all(len(h) == 64 for h in stored)     # only hashes are kept


def test_every_change_needs_the_csrf_token(app, world):
    a, _ = world
    client, _ = _login(app, "sara@acme.example")
    cid = a["conversation"]["id"]
    token = client.headers.pop("X-CSRF-Token")
    refused = client.post(f"/api/conversations/{cid}/mode", json={"mode": "HUMAN"})
    assert refused.status_code == 403 and "csrf" in refused.json()["error"].lower()
    wrong = client.post(f"/api/conversations/{cid}/mode", json={"mode": "HUMAN"}, headers={"X-CSRF-Token": "x" * 32})
    assert wrong.status_code == 403
    ok = client.post(f"/api/conversations/{cid}/mode", json={"mode": "HUMAN"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and ok.json()["mode"] == "HUMAN"


def test_log_out_everywhere_ends_every_session(app, world):
    first, _ = _login(app, "sara@acme.example")
    second, _ = _login(app, "sara@acme.example")
    assert first.post("/api/auth/logout-everywhere").json()["sessions"] == 2
    assert second.get("/api/me").status_code == 401 and first.get("/api/me").status_code == 401


def _routes(app) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops
            if path.startswith("/api/") and not path.startswith("/api/auth/") and path != "/api/events"]


def test_agent_a_gets_404_and_nothing_of_agent_b_on_every_route(app, world):
    a, b = world
    client, _ = _login(app, "sara@acme.example")
    ids = {"conversation_id": b["conversation"]["id"], "message_id": b["draft"], "reference": "DR-0002",
           "viewing_id": b["viewing_id"], "token": "b" * 43, "task_id": b["task_id"]}
    # What would be B's data (the reference itself is A's own input, echoed in "no listing DR-0002").
    secrets = [B_SECRET_TEXT, "b secret reason", "Omar", "9550000", "9,550,000", "201000000002", "draft of Omar"]
    walked = 0
    for method, path in _routes(app):
        if "{" not in path:
            continue
        url = path.format(**ids)
        body = {"mode": "HUMAN", "text": "hi", "client_id": "client-0001", "status": "sold", "price": 1,
                "starts_at": "2030-01-06T12:00"}
        response = client.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.status_code, response.text)
        assert not any(s.lower() in response.text.lower() for s in secrets), (method, url, response.text)
        walked += 1
    assert walked >= 9
    listing = client.get("/api/listings", params={"q": "DR-0002"}).json()
    assert listing["total"] == 0
    everything = json.dumps(client.get("/api/conversations").json()) + json.dumps(client.get("/api/listings").json())
    assert not any(s.lower() in everything.lower() for s in secrets)
    # B's conversation is untouched by A's attempts.
    omar, _ = _login(app, "omar@delta.example")
    mine = omar.get(f"/api/conversations/{b['conversation']['id']}").json()
    assert mine["conversation"]["mode"] == "AI" and mine["escalations"][0]["status"] == "open"


def test_an_organization_admin_sees_the_agencys_conversations(app, world, resources):
    a, _ = world
    with resources.db.transaction() as conn:
        for email, role in (("boss@acme.example", "admin"), ("colleague@acme.example", "agent")):
            agent = tenant_store.upsert_agent(conn, organization_id=a["org"]["id"], email=email, name=email[:4],
                                              password_hash=hash_password(PASSWORD))
            with conn.cursor() as cur:
                cur.execute("UPDATE agents SET role = %s WHERE id = %s", (role, agent["id"]))
    boss, _ = _login(app, "boss@acme.example")
    colleague, _ = _login(app, "colleague@acme.example")
    cid = a["conversation"]["id"]
    assert [c["id"] for c in boss.get("/api/conversations").json()["conversations"]] == [cid]
    assert boss.get(f"/api/conversations/{cid}").status_code == 200
    assert colleague.get("/api/conversations").json()["conversations"] == []
    assert colleague.get(f"/api/conversations/{cid}").status_code == 404


def test_a_reply_takes_over_and_a_double_tap_sends_once(app, world, resources):
    a, _ = world
    client, _ = _login(app, "sara@acme.example")
    cid = a["conversation"]["id"]
    first = client.post(f"/api/conversations/{cid}/messages", json={"text": "I'll call you at 5", "client_id": "tap-0001"})
    assert first.status_code == 200 and first.json()["outcome"] == "sent" and first.json()["mode"] == "HUMAN"
    again = client.post(f"/api/conversations/{cid}/messages", json={"text": "I'll call you at 5", "client_id": "tap-0001"})
    assert again.json()["outcome"] == "duplicate"
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM outbox WHERE idempotency_key = 'agent:tap-0001'")
        assert cur.fetchone()["n"] == 1
        cur.execute("SELECT mode_reason FROM conversations WHERE id = %s", (cid,))
        assert cur.fetchone()["mode_reason"] == "inbox_reply"
    thread = client.get(f"/api/conversations/{cid}").json()
    authors = [m["author"] for m in thread["messages"] if m["message_type"] != "mode_change"]
    assert authors == ["customer", "ai", "agent"]
    assert any(m["message_type"] == "mode_change" and m["media"]["reason"] == "inbox_reply" for m in thread["messages"])
    sent = client.post(f"/api/conversations/{cid}/drafts/{a['draft']}/send", json={"client_id": "draft-0001"})
    assert sent.json()["outcome"] == "sent"
    not_a_draft = client.post(f"/api/conversations/{cid}/drafts/{first.json()['message_id']}/send",
                              json={"client_id": "draft-0002"})
    assert not_a_draft.status_code == 400
    back = client.post(f"/api/conversations/{cid}/mode", json={"mode": "AI", "brief": "offered a Sunday viewing"})
    assert back.json()["mode"] == "AI"
    timeline = client.get(f"/api/conversations/{cid}").json()["messages"]
    assert timeline[-1]["media"]["brief"] == "offered a Sunday viewing"


def test_list_filters_search_and_paging(app, world, resources):
    a, _ = world
    with resources.db.transaction() as conn:
        for n in range(5):
            convo = identify_conversation(conn, channel=a["channel"],
                                          chat_id=provider_class("sandbox").chat_key(f"20100000010{n}"))
            message_store.insert_message(conn, organization_id=a["org"]["id"], conversation_id=convo["id"],
                                         direction="inbound", author="customer",
                                         body="عايز فيلا في الشيخ زايد" if n == 3 else f"message {n}",
                                         provider_message_id=f"page-{n}")
    client, _ = _login(app, "sara@acme.example")
    first = client.get("/api/conversations", params={"limit": 4}).json()
    second = client.get("/api/conversations", params={"limit": 4, "before": first["next"]}).json()
    ids = [c["id"] for c in first["conversations"] + second["conversations"]]
    assert len(ids) == 6 == len(set(ids)) and second["next"] is None
    found = client.get("/api/conversations", params={"q": "أريد فيلا الشيخ"}).json()["conversations"]
    assert found == []      # all words must appear together; a phrase in the text is found:
    found = client.get("/api/conversations", params={"q": "فيلا في الشيخ زايد"}).json()["conversations"]
    assert len(found) == 1 and found[0]["last_message"]["body"].startswith("عايز")
    assert client.get("/api/conversations", params={"filter": "escalated"}).json()["conversations"] == []
    assert client.get("/api/conversations", params={"filter": "nope"}).status_code == 400
    assert client.get("/api/conversations", params={"before": "garbage!"}).status_code == 400


def test_listings_search_change_and_import_with_a_dry_run(app, world, tmp_path):
    client, _ = _login(app, "sara@acme.example")
    maadi = client.get("/api/listings", params={"q": "المعادي"}).json()
    assert maadi["total"] > 0 and all(item["reference"].startswith("NH-") for item in maadi["listings"])
    changed = client.patch("/api/listings/NH-0001", json={"status": "sold"})
    assert changed.status_code == 200 and changed.json()["status"] == "sold"
    lines = NILE.read_text(encoding="utf-8").replace("sara@nile-homes.example", "sara@acme.example").splitlines()
    bad = [lines[0], lines[1].replace("NH-0001", "NH-9001"), lines[2].replace("NH-0002", "NH-9002")]
    bad[1] = bad[1].replace(",6950000,", ",lots,")
    bad[2] = bad[2].replace("twin house", "castle")
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("\n".join(bad) + "\n", encoding="utf-8")
    response = client.post("/api/listings/import", params={"dry_run": "true"},
                           files={"file": ("bad.csv", csv_file.read_bytes(), "text/csv")})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True and report["written"] is False
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(2, "price"), (3, "property_type")]
    good = tmp_path / "good.csv"
    good.write_text("\n".join([lines[0], lines[1].replace("NH-0001", "NH-9001")]) + "\n", encoding="utf-8")
    dry = client.post("/api/listings/import", files={"file": ("good.csv", good.read_bytes(), "text/csv")}).json()
    assert dry["created"] == 1 and dry["written"] is False and client.get("/api/listings/NH-9001").status_code == 404
    done = client.post("/api/listings/import", params={"dry_run": "false"},
                       files={"file": ("good.csv", good.read_bytes(), "text/csv")}).json()
    assert done["written"] is True and client.get("/api/listings/NH-9001").status_code == 200
    assert client.post("/api/listings/import", files={"file": ("x.pdf", b"%PDF", "application/pdf")}).status_code == 400


def _frames(client, last_id: int, count: int) -> list[dict]:
    frames, current = [], {}
    with client.stream("GET", "/api/events", headers={"Last-Event-ID": str(last_id)}) as stream:
        for line in stream.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                key, _, value = line.partition(": ")
                current[key] = value
            elif not line and "id" in current:
                frames.append(current)
                current = {}
                if len(frames) == count:
                    break
    return frames


def test_events_resume_from_the_last_id_and_are_scoped(app, world, resources):
    a, b = world
    client, _ = _login(app, "sara@acme.example")
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT min(id) AS first FROM inbox_events")
        first = cur.fetchone()["first"]
    frames = _frames(client, first - 1, 2)     # Sara's: her customer's message and the draft
    assert [f["event"] for f in frames] == ["message", "message"]
    assert {json.loads(f["data"])["conversation_id"] for f in frames} == {a["conversation"]["id"]}
    with resources.db.transaction() as conn:
        message_store.insert_message(conn, organization_id=b["org"]["id"], conversation_id=b["conversation"]["id"],
                                     direction="inbound", author="customer", body="b again", provider_message_id="b2")
        message_store.insert_message(conn, organization_id=a["org"]["id"], conversation_id=a["conversation"]["id"],
                                     direction="inbound", author="customer", body="a again", provider_message_id="a2")
    resumed = _frames(client, int(frames[-1]["id"]), 1)
    assert json.loads(resumed[0]["data"])["conversation_id"] == a["conversation"]["id"]
    assert int(resumed[0]["id"]) > int(frames[-1]["id"])


def test_the_pages_ship_under_100_kb_of_js_and_css():
    """Agents open the inbox on slow phone connections: no framework bundle, the total stays small."""
    static = ROOT / "templates" / "static"
    total = sum(p.stat().st_size for p in static.iterdir() if p.suffix in (".js", ".css"))
    assert 50_000 < total < 100_000, total


def test_a_promise_to_the_customer_is_on_the_agents_to_do_list_until_done(app, world, resources):
    a, _ = world
    with resources.db.transaction() as conn:
        from execution.lib import followup_store
        task = followup_store.insert_agent_task(conn, organization_id=a["org"]["id"],
                                                conversation_id=a["conversation"]["id"], message_id=1,
                                                kind="confirm_payment_plan")
    client, _ = _login(app, "sara@acme.example")
    cid = a["conversation"]["id"]
    assert client.get(f"/api/conversations/{cid}").json()["tasks"][0]["kind"] == "confirm_payment_plan"
    assert client.post(f"/api/conversations/{cid}/tasks/{task}/done").status_code == 200
    assert client.get(f"/api/conversations/{cid}").json()["tasks"] == []
    assert client.post(f"/api/conversations/{cid}/tasks/{task}/done").status_code == 404


def test_me_says_whether_the_assistant_reads_a_hand_back_note(resources, world):
    """The template responder ignores notes: the inbox warns the agent when handing back (a model reads them)."""
    offline = _login(create_app(Resources(dataclasses.replace(resources.settings, llm_backend="offline"), resources.db,
                                          resources.redis, "test", "test"), run_worker=False,
                                directives=StaticDirectives()), "sara@acme.example")[0]
    assert offline.get("/api/me").json()["assistant_reads_notes"] is False
    model = _login(create_app(Resources(dataclasses.replace(resources.settings, llm_backend="claude",
                                                            anthropic_api_key="sk-test"), resources.db,
                                        resources.redis, "test", "test"), run_worker=False,
                              directives=StaticDirectives()), "sara@acme.example")[0]
    assert model.get("/api/me").json()["assistant_reads_notes"] is True
