"""Play scripted conversations through a backend, or replay stored ones under an edited directive set.

Scenarios (`--scenarios FILE`, YAML; shipped: execution/demo_data/evaluation_scenarios.yaml and
conversation_scenarios.yaml): each turn is what a customer says and what should happen (escalate,
language, mentions / not_mentions, kind, references in order, promise: the task a reply records;
`defaults` at the top applies to every turn). The evaluation runs in a throwaway
agency of its own (an agent with the file's listings and a sandbox channel), removed at the end:
nothing is sent and no real conversation is touched. Per turn it prints the reply, whether every
figure in it is grounded in the agent's listings (the grounding guard, run on every backend's
output, the offline templates' included), whether it is in the customer's language, and whether it
escalated when it should. Exit 1 when any expectation fails.

Replay (`--directives DIR [--days 7]`): the customer messages of the last N days, decided again under
the directive set in DIR and under the live one; prints every decision that would change (answer <->
escalate, and whether an agent's phone reply would take the conversation over) before the edit goes
live. Reads only.

usage: python -m execution.evaluate_responder --scenarios execution/demo_data/evaluation_scenarios.yaml [--backend offline]
       python -m execution.evaluate_responder --directives /tmp/directives-edit --days 7
"""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from execution.check_escalation import check_escalation
from execution.generate_ai_response import agent_profile, generate_ai_response
from execution.lib import cli, conversation_store, message_store, property_store, tenant_store
from execution.lib.criteria import detect_language
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import BadRequest
from execution.lib.grounding import check_draft
from execution.lib.listing_import import import_listings
from execution.lib.llm import BACKENDS, backend_from_settings
from execution.lib.providers import provider_class
from execution.lib.viewing_intent import wants_viewing
from execution.viewing_reply import viewing_reply

SANDBOX = "sandbox"


def _agency(conn, spec: dict, listings: Path) -> tuple[dict, dict]:
    tag = secrets.token_hex(4)
    org = tenant_store.upsert_organization(conn, slug=f"evaluation-{tag}", name=spec.get("agency", "Evaluation"))
    agent = tenant_store.upsert_agent(conn, organization_id=org["id"], email=f"evaluation-{tag}@evaluation.invalid",
                                      name=spec.get("name", "Sara"), password_hash=None)
    with conn.cursor() as cur:
        cur.execute("UPDATE agents SET gender = %s WHERE id = %s", (spec.get("gender"), agent["id"]))
    channel = tenant_store.upsert_channel(conn, organization_id=org["id"], agent_id=agent["id"], provider=SANDBOX,
                                          instance_id=f"eval{tag}")
    report = import_listings(conn, path=listings, agent={**agent, "organization_id": org["id"]}, reassign=True,
                             actor="evaluate_responder")
    if report.errors:
        raise BadRequest(f"{listings}: {len(report.errors)} listing row(s) refused")
    return org, channel


def _turn(db, model, snapshot: Snapshot, conversation: dict, agent: dict, text: str, n: int) -> dict:
    with db.transaction() as conn:
        mid = message_store.insert_message(conn, organization_id=conversation["organization_id"],
                                           conversation_id=conversation["id"], direction="inbound",
                                           author="customer", body=text, provider_message_id=f"eval-{n}")
    decision = check_escalation(text, directive=snapshot["escalation_triggers"], agent_name=agent["name"],
                                agent_gender=agent.get("gender"))
    if decision.escalate and not (decision.rule.startswith("examples:") and wants_viewing(text)):
        return {"escalated": True, "reply": decision.reply, "rule": decision.rule, "language": decision.language}
    messages = [{"id": mid, "body": text}]
    # As answer_conversation does: the viewing flow first (its bookings land in the throwaway agency).
    reply = viewing_reply(db, None, None, conversation=conversation, messages=messages, snapshot=snapshot,
                          agent=agent) or generate_ai_response(db, conversation=conversation, messages=messages,
                                                               snapshot=snapshot, agent=agent, model=model)
    if reply.escalation:
        return {"escalated": True, "reply": "", "rule": "model", "language": reply.language}
    with db.transaction() as conn:
        message_store.insert_message(conn, organization_id=conversation["organization_id"],
                                     conversation_id=conversation["id"], direction="outbound", author="ai",
                                     body=reply.text, generation=reply.generation)
        listings = [p for ref in (reply.generation or {}).get("references", [])
                    if (p := property_store.get_property(conn, agent_id=conversation["agent_id"], reference=ref))]
    guard = check_draft(reply.text, listings=listings, customer_text=text)
    return {"escalated": False, "reply": reply.text, "kind": reply.kind, "language": reply.language,
            "backend": (reply.generation or {}).get("backend"), "grounded": guard.ok, "misses": guard.codes(),
            "written_in": detect_language(reply.text), "references": list(reply.references),
            "promise": reply.promise}


def _judge(expect: dict, out: dict, said_language: str) -> list[str]:
    problems = []
    if "escalate" in expect and expect["escalate"] != out["escalated"]:
        problems.append("should escalate" if expect["escalate"] else "escalated but should answer")
    if not out["escalated"]:
        if not out["grounded"]:
            problems.append(f"ungrounded: {out['misses']}")
        wanted = expect.get("language", said_language)
        if (wanted == "ar") != (out["written_in"] == "ar"):
            problems.append(f"written in {out['written_in']}, customer wrote {wanted}")
        for word in expect.get("mentions", ()):
            if word.lower() not in out["reply"].lower():
                problems.append(f"does not mention {word!r}")
        for word in expect.get("not_mentions", ()):
            if word.lower() in out["reply"].lower():
                problems.append(f"mentions {word!r}")
        if "kind" in expect and out["kind"] not in ([expect["kind"]] if isinstance(expect["kind"], str)
                                                    else expect["kind"]):
            problems.append(f"kind {out['kind']}, expected {expect['kind']}")
        if "references" in expect and out["references"] != list(expect["references"]):
            problems.append(f"references {out['references']}, expected {list(expect['references'])}")
        if "promise" in expect and out["promise"] != (expect["promise"] or None):
            problems.append(f"promise {out['promise']!r}, expected {expect['promise']!r}")
    return problems


def run_scenarios(db, model, snapshot: Snapshot, path: Path) -> dict:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    with db.transaction() as conn:
        org, channel = _agency(conn, spec.get("agent", {}), (path.parent / spec["listings"]).resolve())
    results, failed, n = [], 0, 0
    try:
        for s, scenario in enumerate(spec["scenarios"]):
            with db.transaction() as conn:
                chat = provider_class(SANDBOX).chat_key(f"2010{s:08d}")
                conversation = conversation_store.upsert_conversation(conn, channel=channel, chat_id=chat,
                                                                      contact_id=None, is_group=False, title=None)
                agent = agent_profile(conn, agent_id=channel["agent_id"])
            for turn in scenario["turns"]:
                n += 1
                out = _turn(db, model, snapshot, conversation, agent, turn["say"], n)
                expect = {**spec.get("defaults", {}), **turn.get("expect", {})}
                problems = _judge(expect, out, detect_language(turn["say"]))
                failed += bool(problems)
                results.append({"scenario": scenario["name"], "say": turn["say"], **out, "problems": problems})
                _print_turn(results[-1])
                if out["escalated"]:
                    break
    finally:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM organizations WHERE id = %s", (org["id"],))
    return {"turns": len(results), "failed": failed, "exit_code": 1 if failed else 0}


def _print_turn(r: dict) -> None:
    mark = "ok  " if not r["problems"] else "FAIL"
    what = f"escalated ({r['rule']})" if r["escalated"] else \
        f"{r['backend']}, grounded={'yes' if r['grounded'] else 'NO'}, language={r['written_in']}"
    print(f"{mark} [{r['scenario']}] {r['say'][:70]!r}\n     -> {what}: {r['reply'][:160]!r}"
          + (f"\n     problems: {'; '.join(r['problems'])}" if r["problems"] else ""), flush=True)


def replay(db, live: Snapshot, candidate: Snapshot, *, days: int) -> dict:
    """Decisions the candidate directives would change over the stored messages of the last `days`."""
    changes = []
    with db.connection() as conn:
        rows = message_store.recent_decisions(conn, days=days)
    for row in rows:
        if row["author"] == "customer":
            before = check_escalation(row["body"], directive=live["escalation_triggers"]).escalate
            after = check_escalation(row["body"], directive=candidate["escalation_triggers"]).escalate
            kind = "escalate" if after else "answer"
        else:
            before = live["ai_human_toggle_logic"]["phone_reply_takes_over"]
            after = candidate["ai_human_toggle_logic"]["phone_reply_takes_over"]
            kind = "takes over" if after else "stays AI"
        if before != after:
            changes.append({"message_id": row["id"], "conversation_id": row["conversation_id"],
                            "author": row["author"], "now": kind, "text": (row["body"] or "")[:80]})
    return {"messages": len(rows), "changed": len(changes), "changes": changes}


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenarios", type=Path, help="a scenario file (YAML)")
    what.add_argument("--directives", type=Path, help="an edited copy of directives/ to replay stored messages under")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="override LLM_BACKEND")
    p.add_argument("--days", type=int, default=7, help="with --directives: how far back to replay")
    args = p.parse_args(argv)

    def work(res):
        live = load_directives()
        if args.directives:
            return replay(res.db, live, load_directives(args.directives), days=args.days)
        return run_scenarios(res.db, backend_from_settings(res.settings, choice=args.backend), live, args.scenarios)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
