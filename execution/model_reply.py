"""Write a reply with a model and its tools, then check it in code before anyone sends it.

Reads: the thread, preferences, lead details, shown listings and hand-back brief (one short
connection), then the agent's listings through the tools (assistant_tools; one connection per call),
the model_replies / persona / retrieval / escalation / sending directives.
Writes: nothing itself; the tools write preferences and lead details. Returns a `Reply` that
answer_conversation sends behind the fence, or one that asks for escalation.
Guards, in code and whatever the model wrote: the grounding guard (every price, size, bedroom and
bathroom count, reference, date and payment term must be a retrieved listing's; no discount; no
sold or reserved listing offered as available), no run of the private prompt repeated, and the
customer's script. A draft that fails is regenerated `regenerations` times, told exactly what did
not match; then the directive's `on_guard_miss` answer (offline responder, or "let me confirm").
At most `max_tool_rounds` tool rounds; past them, the offline responder. Model errors propagate as
ModelError (generate_ai_response falls back).

usage: python -m execution.model_reply --conversation 42 [--backend openai_compatible]
       (the model's reply only: a model error is printed, not answered offline; see generate_ai_response)
"""

from __future__ import annotations

import time
from datetime import date
from typing import Callable

from execution.assistant_tools import SPECS, ToolContext, run_tool
from execution.lib import conversation_store, property_store
from execution.lib.criteria import detect_language
from execution.lib.db import Database
from execution.lib.directives import Snapshot, localized
from execution.lib.grounding import GuardResult
from execution.lib.llm import ModelBackend, Prompt, ToolCall, Usage
from execution.lib.prompting import apply_digits, build_prompt
from execution.lib.reply_guards import check_reply
from execution.lib.replies import Reply

OfflineAnswer = Callable[[], Reply]


def prepare(db: Database, *, conversation: dict, messages: list[dict], snapshot: Snapshot, agent: dict,
            today: date | None = None) -> tuple[Prompt, ToolContext]:
    """The prompt and the tools' context for this turn (also what --dry-run prints)."""
    models, sending = snapshot["model_replies"], snapshot["message_sending_rules"]
    router = snapshot["incoming_message_router"]
    text = "\n".join(m["body"] or "" for m in messages if m.get("body"))[: router["max_customer_text_chars"]]
    language = detect_language(text) if text.strip() else snapshot["persona_enforcement"]["default_language"]
    digits = sending["arabic_digits"] if agent.get("arabic_digits") is None else agent["arabic_digits"]
    with db.connection() as conn:
        ctx_rows = conversation_store.model_context(conn, conversation_id=conversation["id"],
                                                    before_id=messages[0]["id"], turns=models["history_turns"])
        shown = [row for ref in ctx_rows["shown"]
                 if (row := property_store.get_property(conn, agent_id=conversation["agent_id"], reference=ref))]
    clipped = [{**m, "body": (m.get("body") or "")[: router["max_customer_text_chars"]]} for m in messages]
    prompt = build_prompt(snapshot=snapshot, agent=agent, tools=SPECS, language=language, arabic_digits=digits,
                          preferences=ctx_rows["preferences"], lead=ctx_rows["lead"], shown=shown, brief=ctx_rows["brief"],
                          history=ctx_rows["history"], unanswered=clipped, today=today or date.today())
    ctx = ToolContext(db=db, conversation=conversation, agent=agent, snapshot=snapshot, customer_text=text,
                      language=language, arabic_digits=digits, retrieved={p["reference"].upper(): p for p in shown},
                      message_id=messages[-1]["id"])
    return prompt, ctx


def model_reply(db: Database, backend: ModelBackend, *, conversation: dict, messages: list[dict],
                snapshot: Snapshot, agent: dict, offline: OfflineAnswer, act: bool = True) -> Reply:
    """`act=False` (a preview): the viewing tools book nothing."""
    models = snapshot["model_replies"]
    prompt, ctx = prepare(db, conversation=conversation, messages=messages, snapshot=snapshot, agent=agent)
    ctx.act = act
    started = time.monotonic()
    usage, turns = Usage(), list(prompt.messages)
    regenerations, guard_reasons, outcome = models["regenerations"], [], "passed"

    def record(reply: Reply, guard: str, **extra) -> Reply:
        refs = sorted({*reply.references, *(p["reference"] for p in ctx.retrieved.values()
                                             if p["reference"] in reply.text)})
        answered = {"backend": "offline", "fallback_from": backend.name} if guard == "fallback:offline" \
            else {"backend": backend.name}
        return reply.with_generation(
            **answered, model=backend.model, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens, latency_ms=int((time.monotonic() - started) * 1000),
            tool_calls=list(ctx.calls), guard=guard, guard_reasons=guard_reasons, references=refs,
            **({"viewing": {**ctx.viewing, "alert": True}} if ctx.viewing else {}), **extra)

    rounds = 0
    while True:
        turn = backend.complete(Prompt(prompt.stable, prompt.context, prompt.tools, tuple(turns), prompt.max_tokens))
        usage += turn.usage
        if turn.tool_calls:
            rounds += 1
            if rounds > models["max_tool_rounds"]:
                guard_reasons.append("too_many_tool_rounds")
                return record(offline(), "fallback:offline")
            results = [run_tool(ctx, call) for call in turn.tool_calls]
            turns += [{"role": "assistant", "text": turn.text, "tool_calls": turn.tool_calls},
                      {"role": "tool", "results": results}]
            if ctx.escalation is not None:
                return record(Reply("", ctx.language, "escalate", escalation=ctx.escalation), "escalated")
            continue
        verdict = check(turn.text, ctx=ctx, private=prompt.stable)
        if verdict.ok:
            text = apply_digits(turn.text, language=ctx.language, arabic_digits=ctx.arabic_digits)
            return record(Reply(text, ctx.language, "model", media=tuple(ctx.media)), outcome)
        guard_reasons.extend(c for c in verdict.codes() if c not in guard_reasons)
        if regenerations <= 0:
            return _on_miss(models, ctx, offline, record)
        regenerations -= 1
        outcome = "regenerated"
        turns += [{"role": "assistant", "text": turn.text or "(empty)"},
                  {"role": "user", "text": "Automatic check (not from the customer): your draft was NOT sent.\n"
                                           + verdict.feedback() + "\nWrite the reply again using only facts from "
                                           "the tool results, in the customer's language."}]


def check(draft: str, *, ctx: ToolContext, private: str) -> GuardResult:
    """Everything a draft must pass before it may be sent (lib/reply_guards.py)."""
    return check_reply(draft, db=ctx.db, conversation=ctx.conversation, agent=ctx.agent, snapshot=ctx.snapshot,
                       customer_text=ctx.customer_text, language=ctx.language,
                       retrieved=list(ctx.retrieved.values()), private=private, booked=ctx.viewing is not None)


def _on_miss(models, ctx: ToolContext, offline: OfflineAnswer, record) -> Reply:
    if models["on_guard_miss"] == "confirm":
        text = localized(models["confirm_reply"], ctx.language, gender=ctx.agent.get("gender")).format(
            agent_name=ctx.agent["name"])
        return record(Reply(text, ctx.language, "confirm", promise="confirm_details"), "fallback:confirm")
    return record(offline(), "fallback:offline")


def dry_run(db: Database, backend: ModelBackend | None, *, conversation: dict, messages: list[dict],
            snapshot: Snapshot, agent: dict) -> dict:
    """The request the backend would send for this conversation, without calling anything."""
    prompt, _ = prepare(db, conversation=conversation, messages=messages, snapshot=snapshot, agent=agent)
    if backend is not None and hasattr(backend, "request"):
        return {"backend": backend.name, "request": backend.request(prompt)}
    return {"backend": "none (offline responder; shown as the Claude request would be)",
            "system": [prompt.stable, prompt.context], "tools": [s.__dict__ for s in prompt.tools],
            "messages": [dict(m) for m in prompt.messages]}


def main(argv: list[str] | None = None, *, resources=None) -> int:
    from execution.lib import cli
    from execution.lib.directives import load_directives
    from execution.lib.errors import BadRequest, NotFound
    from execution.lib.llm import backend_from_settings
    from execution.offline_reply import agent_profile, offline_reply

    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    p.add_argument("--backend", choices=("claude", "openai_compatible"), default=None)
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            conversation = conversation_store.get_conversation(conn, conversation_id=args.conversation)
            if conversation is None:
                raise NotFound(f"conversation {args.conversation} does not exist")
            messages = conversation_store.unanswered_customer_messages(conn, conversation_id=args.conversation)
            agent = agent_profile(conn, agent_id=conversation["agent_id"])
        backend = backend_from_settings(res.settings, choice=args.backend)
        if backend is None or not messages:
            raise BadRequest("needs a model backend (settings or --backend) and an unanswered customer message")
        snapshot = load_directives()

        def offline() -> Reply:
            with res.db.connection() as conn:
                return offline_reply(conn, conversation=conversation, messages=messages, snapshot=snapshot,
                                     agent=agent)

        return model_reply(res.db, backend, conversation=conversation, messages=messages, snapshot=snapshot,
                           agent=agent, offline=offline)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
