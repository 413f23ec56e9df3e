"""Write the reply to a customer's unanswered messages with the configured backend, never leaving them silent.

Reads: the model backend chosen by settings (lib/llm.py: Claude, an OpenAI-compatible server, or none),
the directives in the snapshot passed in, the conversation through model_reply / offline_reply.
Writes: model_health (the backend's last success or error, for /health); preferences and lead
details through the tools. Sends nothing: answer_conversation sends the returned Reply.
Falls back, in this order: a model error (an outage after the SDK's bounded retries, or a rejected
request) -> the offline responder answers and the reply carries a flag for the agent (one per
outage per conversation); a draft the guards refuse -> model_replies.on_guard_miss. The backend that
answered, the model, tokens, latency, tool calls and the guard's outcome go on the message.

usage: python -m execution.generate_ai_response --conversation 42 [--backend offline|claude|openai_compatible]
       python -m execution.generate_ai_response --conversation 42 --dry-run   (prints prompt and tools only)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace

from execution.lib import cli, conversation_store, ops_store
from execution.lib.db import Database
from execution.lib.directives import Snapshot, load_directives
from execution.lib.errors import NotFound
from execution.lib.llm import BACKENDS, ModelBackend, ModelError, backend_from_settings
from execution.lib.replies import Reply
from execution.model_reply import dry_run, model_reply
from execution.offline_reply import agent_profile, offline_reply

log = logging.getLogger(__name__)

__all__ = ["Reply", "agent_profile", "generate_ai_response"]

HEALTH_OK_EVERY_S = 5.0          # a healthy backend's success is written at most this often per process
_health_lock = threading.Lock()
_last_ok: dict[tuple[str, str], float] = {}     # (backend, model) → when this process last wrote a success


def _note_ok(db: Database, model: ModelBackend) -> None:
    """Record the backend's success for /health, at most every few seconds per process.

    Every reply writing the one row of its backend made them queue on that row's lock under load. An
    error in this process clears the note, so the first success after it is written at once.
    """
    key, now = (model.name, model.model), time.monotonic()
    with _health_lock:
        if now - _last_ok.get(key, float("-inf")) < HEALTH_OK_EVERY_S:
            return
        _last_ok[key] = now
    with db.connection() as conn:
        ops_store.model_ok(conn, backend=model.name, model=model.model)


def _note_error(db: Database, model: ModelBackend, exc: ModelError) -> str:
    with _health_lock:
        _last_ok.pop((model.name, model.model), None)
    with db.connection() as conn:
        return ops_store.model_error(conn, backend=model.name, model=model.model, kind=exc.kind, error=str(exc))


def generate_ai_response(db: Database, *, conversation: dict, messages: list[dict], snapshot: Snapshot,
                         agent: dict, model: ModelBackend | None = None) -> Reply:
    """The reply to `messages` (the unanswered customer messages, oldest first)."""

    def offline() -> Reply:
        with db.connection() as conn:
            reply = offline_reply(conn, conversation=conversation, messages=messages, snapshot=snapshot, agent=agent)
        return reply.with_generation(backend="offline", references=list(reply.references))

    if model is None:
        return offline()
    try:
        reply = model_reply(db, model, conversation=conversation, messages=messages, snapshot=snapshot,
                            agent=agent, offline=offline)
    except ModelError as exc:
        # The status and error type only: the exception never carries the request or the customer's text.
        log.warning("model %s failed (%s: %s); the offline responder answers conversation %s",
                    model.name, exc.kind, exc, conversation["id"])
        outage = _note_error(db, model, exc)
        reply = offline().with_generation(fallback_from=model.name, model=model.model,
                                          model_error=f"{exc.kind}: {exc}", outage=outage)
        return replace(reply, flag=f"model_{exc.kind}")
    _note_ok(db, model)
    return reply


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--conversation", type=int, required=True, help="conversation id")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="override LLM_BACKEND for this run")
    p.add_argument("--dry-run", action="store_true", help="print the prompt and tools; call no model, write nothing")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            conversation = conversation_store.get_conversation(conn, conversation_id=args.conversation)
            if conversation is None:
                raise NotFound(f"conversation {args.conversation} does not exist")
            messages = conversation_store.unanswered_customer_messages(conn, conversation_id=args.conversation)
            agent = agent_profile(conn, agent_id=conversation["agent_id"])
        if not messages:
            raise NotFound(f"conversation {args.conversation} has no unanswered customer message")
        snapshot = load_directives()
        model = backend_from_settings(res.settings, choice=args.backend)
        if args.dry_run:
            print(json.dumps(dry_run(res.db, model, conversation=conversation, messages=messages,
                                     snapshot=snapshot, agent=agent), ensure_ascii=False, indent=2, default=str))
            return None
        return generate_ai_response(res.db, conversation=conversation, messages=messages, snapshot=snapshot,
                                    agent=agent, model=model)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
