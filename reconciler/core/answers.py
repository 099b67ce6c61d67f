"""Pure: a person's answer (`orch answer`, `orch top`) to the prompt an agent waits on now."""

from __future__ import annotations

from reconciler.api.actions import SendKeys
from reconciler.api.intents import AnswerOutcome
from reconciler.api.status import AgentState
from reconciler.core.agent_plan import PlanBuilder
from reconciler.core.health import type_text


def plan_answer(b: PlanBuilder) -> bool:
    """Type the pending answer into an AwaitingHuman agent; True when it is typed this pass.

    The agent stays AwaitingHuman until its screen moves on, as with any answer; only then it is
    Running again (the contract's AwaitingHuman -> Running edge).
    """
    answer = b.ctx.intent.answer
    if answer is None or b.record.state is not AgentState.AWAITING_HUMAN or b.acted:
        return False
    if answer.keys:
        b.actions.append(SendKeys(b.record.name, literal=answer.text, keys=answer.keys))
        shown = " ".join(answer.keys)
    elif answer.enter:
        type_text(b, answer.text)
        shown = repr(answer.text)
    else:
        b.actions.append(SendKeys(b.record.name, literal=answer.text))
        shown = repr(answer.text)
    prompt = b.record.handled_prompt
    b.event("AnsweredByHuman", f"{answer.by} answered {shown} to: {prompt}")
    b.answer = AnswerOutcome(answer.id, True, f"answered {shown}")
    return True
