"""Kinds that decide where a query goes: ``select`` (CoLM's top-k clients), ``score`` (a
router's predicted benefit of the paid tier) and ``verify`` (confidence in a local answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig

from colm_graph.core.answers import agreement, answers_match, parse_score
from colm_graph.core.ledger import CallRecord
from colm_graph.core.state import ProtocolState
from colm_graph.errors import ConfigError
from colm_graph.nodes._step import Step, model_node
from colm_graph.nodes.aggregate import final_responses
from colm_graph.nodes.context import NodeContext
from colm_graph.nodes.fanout import expect
from colm_graph.routing.selectors import Selection
from colm_graph.run.budget import remaining, spent
from colm_graph.run.calls import call_model, message_text

__all__ = ["ascore", "aselect", "averify", "parse_confidence", "score", "select", "verify"]


# -- select -----------------------------------------------------------------------------------
def _ask(ctx: NodeContext, config: RunnableConfig | None, records: list[CallRecord],
         role: str, acting_as: str, state: ProtocolState
         ) -> Callable[[str, dict[str, object]], str]:
    """One model call on a selector's or scorer's behalf, recorded in ``records``."""

    def ask(prompt: str, values: dict[str, object]) -> str:
        messages = ctx.run.prompts.messages(prompt, **values)
        usd, tokens = spent(records)
        left = remaining(state, ctx.run.params).minus(usd, tokens)
        reply, record = call_model(ctx.run.pool, ctx.run.model(role), messages, node=ctx.name,
                                   role=acting_as, round_=0, config=config, allowance=left,
                                   schema="difficulty" if prompt == "difficulty" else None)
        records.append(record)
        return message_text(reply)

    return ask


def _select(state: ProtocolState, config: RunnableConfig | None,
            ctx: NodeContext) -> dict[str, Any]:
    pool, run = ctx.run.pool, ctx.run
    records: list[CallRecord] = []
    home = state.get("home") or run.params.get("home")
    top_k = int(ctx.option("top_k", run.params.get("top_k", 2)))
    fixed = state.get("clients")
    if home is not None and home not in pool:
        raise ConfigError(f"home: unknown model {home!r}")
    if fixed:
        for name in fixed:
            pool.entry(name)
        names = list(dict.fromkeys(fixed))
        if home and home not in names:
            names.insert(0, home)
        return _selected(names, Selection(names, note="clients fixed by the caller"), "fixed",
                         records, home)
    assert ctx.role is not None and run.selector is not None
    candidates = [pool.entry(n) for n in run.roles[ctx.role]]
    others = [c for c in candidates if c.name != home]
    k = min(top_k - (1 if home else 0), len(others))
    server = ctx.option("asks", "server")
    ask = _ask(ctx, config, records, server, "selector", state) if server in run.roles \
        else None
    selection = run.selector.select(state["question"], others, k, ask) if k > 0 \
        else Selection([])
    names = ([home] if home else []) + selection.names
    if len(names) < top_k:
        extra = f"top_k={top_k} but only {len(names)} client(s) available"
        selection.note = "; ".join(filter(None, [selection.note, extra]))
    return _selected(names, selection, run.selector.name, records, home)


def _selected(names: list[str], selection: Selection, selector: str,
              records: list[CallRecord], home: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"selector": selector, "scores": selection.scores}
    if selection.note:
        info["note"] = selection.note
    return {"selected": names, "selection": info, "ledger": records, "home": home,
            "rounds": 0}


def select(state: ProtocolState, config: RunnableConfig, *, ctx: NodeContext) -> dict[str, Any]:
    """Pick the top-k clients (the home client first, when named)."""
    return _select(state, config, ctx)


async def aselect(state: ProtocolState, config: RunnableConfig, *,
                  ctx: NodeContext) -> dict[str, Any]:
    """Async :func:`select` (a selector that asks a model runs in a worker thread; a pure
    one, such as ``lexical``, runs here)."""
    if getattr(ctx.run.selector, "pure", False):
        return _select(state, config, ctx)
    return await asyncio.to_thread(_select, state, config, ctx)


# -- score (router) ---------------------------------------------------------------------------
def _score(state: ProtocolState, config: RunnableConfig | None,
           ctx: NodeContext) -> dict[str, Any]:
    scorer = ctx.run.scorer
    if scorer is None:
        raise ConfigError(f"node {ctx.name!r}: no router scorer configured")
    records: list[CallRecord] = []
    ask = _ask(ctx, config, records, ctx.role, "router", state) if ctx.role else None
    raw = scorer.score(state["question"], ask)
    return _scored(state, ctx, None if raw is None else float(raw), records, default=1.0)


def _scored(state: ProtocolState, ctx: NodeContext, value: float | None,
            records: list[CallRecord], *, default: float) -> dict[str, Any]:
    """A score update; an unreadable score (``None``) takes the node's ``unknown`` option
    (routers: 1.0, the paid tier; verifiers: 0.0, low confidence) and is flagged in the
    state and in the call's ledger record."""
    unknown = value is None
    if value is None:
        value = float(ctx.option("unknown", default))
        for r in records[-1:]:
            r["score_unknown"] = True
    return {"score": value, "scores": {**state.get("scores", {}), ctx.name: value},
            "score_unknown": unknown, "ledger": records}


def score(state: ProtocolState, config: RunnableConfig, *, ctx: NodeContext) -> dict[str, Any]:
    """The router's score for the query (higher: the paid tier helps more)."""
    return _score(state, config, ctx)


async def ascore(state: ProtocolState, config: RunnableConfig, *,
                 ctx: NodeContext) -> dict[str, Any]:
    if getattr(ctx.run.scorer, "pure", False):
        return _score(state, config, ctx)
    return await asyncio.to_thread(_score, state, config, ctx)


# -- verify ------------------------------------------------------------------------------------
def parse_confidence(text: str) -> float | None:
    """The verifier's confidence in [0, 1] (``Confidence: 90%``, ``**0.9**``, ``high``...),
    ``None`` when the reply states none (see :func:`colm_graph.core.answers.parse_score`)."""
    return parse_score(text, field="confidence")


def _candidate(state: ProtocolState, ctx: NodeContext) -> str:
    """The answer the run would output: a final response agreeing with their majority."""
    finals = final_responses(state)
    kind, choices = expect(state, ctx)
    majority = agreement((r["answer"] for r in finals), kind=kind, choices=choices).majority
    pick = next((r for r in finals
                 if answers_match(r["answer"], majority, kind=kind, choices=choices)),
                finals[-1] if finals else None)
    return pick["text"] if pick else ""


def _prepare_verify(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    messages = ctx.run.prompts.messages(ctx.prompt or "verifier", question=state["question"],
                                        candidate=_candidate(state, ctx))
    return Step(ctx.run.model(ctx.role), messages, ctx.role, state.get("rounds", 0))


def _finish_verify(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                   record: CallRecord) -> dict[str, Any]:
    return _scored(state, ctx, parse_confidence(text), [record], default=0.0)


_self_check, _aself_check = model_node(_prepare_verify, _finish_verify)


def _agreement_score(state: ProtocolState, ctx: NodeContext) -> dict[str, Any]:
    value = float(state.get("agreement", 0.0))
    return {"score": value, "scores": {**state.get("scores", {}), ctx.name: value},
            "score_unknown": False}


def verify(state: ProtocolState, config: RunnableConfig, *, ctx: NodeContext) -> dict[str, Any]:
    """Confidence in the latest answer: agreement of its samples, or the verifier's
    self-check (``options.method``)."""
    if ctx.option("method", "agreement") == "self_check":
        return _self_check(state, config, ctx=ctx)
    return _agreement_score(state, ctx)


async def averify(state: ProtocolState, config: RunnableConfig, *,
                  ctx: NodeContext) -> dict[str, Any]:
    if ctx.option("method", "agreement") == "self_check":
        return await _aself_check(state, config, ctx=ctx)
    return _agreement_score(state, ctx)
