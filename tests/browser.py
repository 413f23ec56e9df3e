"""Helpers of the real-browser tests (tests/test_inbox_browser.py): the app served by uvicorn in a thread,
the first demo agency seeded with a known password, customer messages posted as the simulator posts them, and
axe-core run in a page. Nothing here imports Playwright, so the module imports without it."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import uvicorn

from execution.lib import tenant_store
from execution.lib.listing_import import import_listings
from execution.lib.resources import Resources
from execution.lib.security import hash_token, sandbox_webhook_token
from execution.manage_agents import set_password
from execution.seed_demo import DEMO_AGENCIES, DEMO_DATA
from tests.processes import free_port

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AGENT_EMAIL = "sara@nile-homes.example"         # the demo CSV's rows name this agent (Nile Homes, seed_demo)
AGENT_PASSWORD = "browser-test-password-42"     # at least 10 characters (manage_agents.set_password)


class ServedApp:
    """`create_app(...)` under uvicorn in a thread of this process: real HTTP and the real lifespan
    (the worker, the responder and the outbox dispatcher run in-process, so replies happen)."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                                    log_level="warning", access_log=False,
                                                    timeout_graceful_shutdown=3))
        self.thread = threading.Thread(target=self.server.run, name="browser-test-app", daemon=True)

    def start(self, timeout: float = 30.0) -> "ServedApp":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise AssertionError("the app stopped before it was serving (start-up failed: see the log above)")
            if time.monotonic() > deadline:
                raise AssertionError(f"the app was not serving within {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        # Open event streams (SSE) hold connections: the graceful shutdown cuts them after its timeout.
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(5)
        assert not self.thread.is_alive(), f"the served app did not stop within {timeout:.0f} s"


@dataclass(frozen=True)
class Demo:
    """The seeded demo agency the browser tests log in to."""

    email: str
    password: str
    channel_id: int
    instance_id: str
    token: str          # the sandbox channel's webhook token (what /simulator/api/agents hands the page)


def simulator_resources(resources: Resources) -> Resources:
    """The test's resources with the simulator on (SIMULATOR=true)."""
    return Resources(dataclasses.replace(resources.settings, simulator=True), resources.db, resources.redis,
                     resources.database_kind, resources.redis_kind)


def seed(resources: Resources) -> Demo:
    """Nile Homes as execution.seed_demo makes it (Sara, a sandbox channel, the demo CSV's 60 listings),
    with one known password set by manage_agents.set_password (argon2id): one hash, not seed_demo's one per
    agency and then another."""
    agency = DEMO_AGENCIES[0]
    secret = resources.settings.secret_key
    with resources.db.transaction() as conn:
        org = tenant_store.upsert_organization(conn, slug=agency.slug, name=agency.organization)
        agent = tenant_store.upsert_agent(conn, organization_id=org["id"], email=AGENT_EMAIL, name=agency.agent_name,
                                          password_hash=None, gender=agency.gender)
        channel = tenant_store.upsert_channel(
            conn, organization_id=org["id"], agent_id=agent["id"], provider="sandbox", instance_id=agency.instance_id,
            webhook_token_hash=hash_token(sandbox_webhook_token(secret, agency.instance_id)))
        report = import_listings(conn, path=DEMO_DATA / agency.listings, agent={**agent, "organization_id": org["id"]},
                                 reassign=True, actor="seed_demo")
        assert not report.errors, report.errors
        set_password(conn, email=AGENT_EMAIL, password=AGENT_PASSWORD)
    return Demo(AGENT_EMAIL, AGENT_PASSWORD, channel["id"], agency.instance_id,
                sandbox_webhook_token(secret, agency.instance_id))


def set_language(resources: Resources, email: str, language: str) -> None:
    from execution.manage_agents import update_agent

    with resources.db.transaction() as conn:
        update_agent(conn, email=email, changes={"language": language}, actor="cli")


def post_customer(base: str, demo: Demo, chat_id: str, text: str) -> None:
    """A customer message through the real webhook route, exactly as templates/simulator.html posts it."""
    payload = {
        "typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": int(demo.instance_id), "wid": f"{demo.instance_id}@c.us",
                         "typeInstance": "whatsapp"},
        "timestamp": int(time.time()),
        "idMessage": "SIM" + secrets.token_hex(10).upper(),
        "senderData": {"chatId": chat_id, "chatName": "Simulated customer", "sender": chat_id,
                       "senderName": "Simulated customer"},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
    }
    r = requests.post(f"{base}/webhooks/green-api", json=payload,
                      headers={"Authorization": f"Bearer {demo.token}"}, timeout=10)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ axe-core


AXE_PATH = "/__tests__/axe.min.js"     # answered by the browser context itself (serve_axe), never by the app


def serve_axe(context) -> None:
    """Answer AXE_PATH on the app's own origin from tests/vendor/axe.min.js, inside the browser context.

    The pages' CSP (`script-src 'self'`) refuses the inline <script> that `add_script_tag(path=...)` writes;
    a script tag whose src is on the page's own origin is allowed, so axe runs under the real CSP."""
    context.route(f"**{AXE_PATH}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))


def inject_axe(page) -> None:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_PATH)
    assert page.evaluate("typeof window.axe !== 'undefined'"), "axe-core could not be put in the page"


def run_axe(page, name: str, findings: dict, *, rules: list[str] | None = None) -> list[dict]:
    """Run axe-core on the page as it is now (every rule, or only `rules`); record its violations in
    findings[name] and return them."""
    inject_axe(page)
    result = page.evaluate("""async (rules) => {
        const options = {resultTypes: ["violations"]};
        if (rules) options.runOnly = {type: "rule", values: rules};
        const r = await axe.run(document, options);
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: (n.failureSummary || "").slice(0, 300)}))}));
    }""", rules)
    findings[name] = result
    return result


def describe_axe(findings: dict) -> str:
    lines = []
    for name, violations in findings.items():
        lines.append(f"[axe] {name}: {len(violations)} violation(s)")
        for v in violations:
            lines.append(f"  - {v['impact']}: {v['id']} ({v['help']}) on {len(v['nodes'])} node(s)")
            for n in v["nodes"][:5]:
                lines.append(f"      {n['target']}: {' '.join(n['summary'].split())[:200]}")
    return "\n".join(lines)


def serious(findings: dict, known: frozenset[tuple[str, str]] = frozenset()) -> dict:
    """page → the serious and critical violations ("rule: target"), without the `known` (rule, target) pairs."""
    out: dict[str, list[str]] = {}
    for name, violations in findings.items():
        for v in violations:
            if v["impact"] not in ("serious", "critical"):
                continue
            for n in v["nodes"]:
                if (v["id"], n["target"]) not in known:
                    out.setdefault(name, []).append(f"{v['id']} ({v['impact']}): {n['target']}")
    return out
