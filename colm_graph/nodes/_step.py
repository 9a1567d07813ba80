"""Sync and async node functions from one description of a model call.

A model-calling node kind supplies ``prepare(state, ctx) -> Step`` (which model, which
messages) and ``finish(state, ctx, step, text, record) -> update``; :func:`model_node` turns
the pair into the ``(func, afunc)`` LangGraph runs under ``invoke`` and ``ainvoke``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from colm_graph.core.agent import AgentTurn, agent_turn
from colm_graph.core.ledger import CallRecord
from colm_graph.core.state import is_task
from colm_graph.nodes.context import NodeContext
from colm_graph.run.budget import Allowance, remaining
from colm_graph.run.calls import acall_model, call_model, message_text

__all__ = ["allowance", "Finish", "model_node", "Prepare", "SCHEMA_OF_KIND", "Step"]


@dataclass
class Step:
    model: str
    messages: list[BaseMessage]
    role: str
    round: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    """Whatever ``finish`` needs from ``prepare``."""


Prepare = Callable[[Any, NodeContext], Step]
Finish = Callable[[Any, NodeContext, Step, str, CallRecord], dict[str, Any]]


def allowance(state: Any, ctx: NodeContext) -> Allowance:
    """The paid budget this call may use: a fan-out task carries its share, any other node
    may use what the run has left."""
    if is_task(state):
        return Allowance.of(state.get("allowance"))
    return remaining(state, ctx.run.params)


def _keep_reasoning(update: dict[str, Any], reply: Any) -> dict[str, Any]:
    """Reasoning a provider returned apart from the content (``reasoning_content``) goes
    with the node's responses, for the trace; it is never read for the answer."""
    reasoning = (getattr(reply, "additional_kwargs", None) or {}).get("reasoning_content")
    if isinstance(reasoning, str) and reasoning and update.get("responses"):
        update["responses"] = [{**r, "reasoning": reasoning} for r in update["responses"]]
    return update


SCHEMA_OF_KIND = {"answer": "answer", "revise": "answer", "execute": "answer",
                  "aggregate": "answer", "verify": "confidence"}
"""The structured reply (``colm_graph.run.calls.SCHEMAS``) each kind asks of JSON-format models."""


def _reprompt(prepare: Prepare, state: Any, ctx: NodeContext
              ) -> Callable[[str], list[BaseMessage]] | None:
    """A fan-out task's messages as another model would get them (its own domains in the
    prompt): what a local stand-in for a failed or unaffordable paid call is sent."""
    if not (isinstance(state, dict) and "model" in state and "client" in state):
        return None
    return lambda name: prepare({**state, "model": name}, ctx).messages


def _turn(step: Step, state: Any, ctx: NodeContext, prepare: Prepare,
          config: RunnableConfig | None) -> tuple[Step, AgentTurn | None, dict[str, Any]]:
    """The call of an ``answer`` node in an agent turn (:mod:`colm_graph.core.agent`): the
    turn's conversation with its tools, no JSON answer schema, and the same conversation for
    a stand-in; else the node's own prompt. Also the call's keyword arguments."""
    turn = agent_turn(config) if ctx.kind == "answer" else None
    if turn is None:
        return step, None, {"schema": SCHEMA_OF_KIND.get(ctx.kind),
                            "reprompt": _reprompt(prepare, state, ctx)}
    step = replace(step, messages=list(turn.messages),
                   kwargs={**step.kwargs, **turn.call_kwargs()})
    return step, turn, {"schema": None, "reprompt": lambda name: list(turn.messages)}


def _read_turn(update: dict[str, Any], turn: AgentTurn | None, reply: Any,
               record: CallRecord) -> dict[str, Any]:
    """An agent turn's responses carry what the reply does: its tool calls, its canonical
    answer, or why it does not do what was asked (then no answer), and the model that
    wrote it (a stand-in's, when a paid call fell back)."""
    if turn is None or not update.get("responses"):
        return update
    reading = turn.read(reply)
    out = []
    for r in update["responses"]:
        r = {**r, "answer": reading.answer, "answered_by": record["model"]}
        if reading.content is not None:
            r["text"] = reading.content
        if reading.tool_calls:
            r["tool_calls"] = reading.tool_calls
        if reading.invalid:
            r["invalid"] = reading.invalid
        out.append(r)
    return {**update, "responses": out}


def model_node(prepare: Prepare, finish: Finish) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def func(state: Any, config: RunnableConfig, *, ctx: NodeContext) -> dict[str, Any]:
        step, turn, how = _turn(prepare(state, ctx), state, ctx, prepare, config)
        reply, record = call_model(ctx.run.pool, step.model, step.messages, node=ctx.name,
                                   allowance=allowance(state, ctx),
                                   role=step.role, round_=step.round, stage=ctx.stage,
                                   config=config, **how, **step.kwargs)
        update = finish(state, ctx, step, message_text(reply), record)
        return _read_turn(_keep_reasoning(update, reply), turn, reply, record)

    async def afunc(state: Any, config: RunnableConfig, *, ctx: NodeContext) -> dict[str, Any]:
        step, turn, how = _turn(prepare(state, ctx), state, ctx, prepare, config)
        reply, record = await acall_model(ctx.run.pool, step.model, step.messages,
                                          allowance=allowance(state, ctx), node=ctx.name,
                                          role=step.role, round_=step.round,
                                          stage=ctx.stage, config=config, **how,
                                          **step.kwargs)
        update = finish(state, ctx, step, message_text(reply), record)
        return _read_turn(_keep_reasoning(update, reply), turn, reply, record)

    return func, afunc
