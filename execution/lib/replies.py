"""A reply as generate_ai_response hands it to answer_conversation, whichever backend wrote it."""

from __future__ import annotations

from dataclasses import dataclass

from execution.lib.criteria import Criteria


@dataclass(frozen=True)
class Reply:
    text: str
    language: str
    kind: str                          # results | closest | detail | answer | ask | no_results | unknown
                                       # | model | confirm | escalate
    references: tuple[str, ...] = ()   # listings this reply quotes (the grounding record)
    pin: dict | None = None            # a location to send after the text
    criteria: Criteria | None = None
    promise: str | None = None         # what the reply says the agent will do (recorded as their task)
    media: tuple[dict, ...] = ()       # more to send after the text (OutboundContent fields)
    escalation: dict | None = None     # the model asked for the agent: {"reason", "category"}
    generation: dict | None = None     # how it was written; stored on the message, shown to the agent
    flag: str | None = None            # the agent should look (model_unavailable)

    def with_generation(self, **values) -> "Reply":
        from dataclasses import replace

        return replace(self, generation={**(self.generation or {}), **values})


# Templates that say the agent will do something, and the task each one creates for the agent.
PROMISES = {"no_results": "find_new_options", "no_payment_plan": "confirm_payment_plan",
            "no_amenities": "confirm_amenities", "unknown": "answer_question"}
