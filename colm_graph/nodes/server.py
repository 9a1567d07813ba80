"""Kinds played by one (usually paid) model over everyone's answers: ``guide`` (CoLM's
server writes guidance for the next round) and ``aggregate`` (Mixture-of-Agents' aggregator
writes the final answer)."""

from __future__ import annotations

from typing import Any

from ..answers import extract_answer
from ..ledger import CallRecord
from ..prompts import data_block
from ..state import Guidance, ProtocolState, Response
from ._step import Step, model_node
from ._tasks import answers_block, latest_responses
from .context import NodeContext


def _prepare_guide(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    r = state.get("rounds", 0) + 1
    latest = latest_responses(state)
    order = state.get("selected") or list(latest)
    drafts = "\n".join(data_block("draft", latest[n]["text"], client=n)
                       for n in order if n in latest)
    messages = ctx.run.prompts.messages(ctx.prompt or "server_guide",
                                        question=state["question"], drafts=drafts, round=r,
                                        rounds=ctx.run.params.get("rounds", r))
    return Step(ctx.run.model(ctx.role), messages, ctx.role, r)


def _finish_guide(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                  record: CallRecord) -> dict[str, Any]:
    guidance = Guidance(round=step.round, model=step.model, text=text,
                        answer=extract_answer(text), node=ctx.name)
    return {"guidance": [guidance], "ledger": [record], "rounds": step.round}


guide, aguide = model_node(_prepare_guide, _finish_guide)


def _prepare_aggregate(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    latest = list(latest_responses(state).values())
    messages = ctx.run.prompts.messages(ctx.prompt or "aggregator",
                                        question=state["question"],
                                        answers=answers_block(latest))
    return Step(ctx.run.model(ctx.role), messages, ctx.role, state.get("rounds", 0))


def _finish_aggregate(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                      record: CallRecord) -> dict[str, Any]:
    response = Response(client=step.model, model=step.model, role=step.role, node=ctx.name,
                        round=step.round, stage=ctx.stage, sample=0, text=text,
                        answer=extract_answer(text))
    return {"responses": [response], "ledger": [record]}


aggregate, aaggregate = model_node(_prepare_aggregate, _finish_aggregate)
