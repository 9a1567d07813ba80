"""Kinds without model calls: ``vote`` (agreement of the latest answers), ``degrade`` (mark
the run as fallen back to the local tier) and ``finish`` (the output policy)."""

from __future__ import annotations

from typing import Any

from ..answers import agreement, answers_match
from ..budget import caps, failed_models
from ..errors import ConfigError
from ..ledger import ledger_totals
from ..state import ProtocolState, Response
from ._tasks import last_answering_node
from .context import NodeContext


def final_responses(state: ProtocolState) -> list[Response]:
    """The responses of the most recent answering node, in its latest round."""
    node = last_answering_node(state)
    mine = [r for r in state.get("responses", []) if r["node"] == node]
    if not mine:
        return []
    last = max(r["round"] for r in mine)
    return [r for r in mine if r["round"] == last]


def vote(state: ProtocolState, *, ctx: NodeContext) -> dict[str, Any]:
    """Majority and agreement share of the latest answers."""
    finals = final_responses(state)
    agree = agreement(r["answer"] for r in finals)
    rounds = max([state.get("rounds", 0)] + [r["round"] for r in finals])
    return {"agreement": agree.share, "majority": agree.majority,
            "unanimous": agree.unanimous, "rounds": rounds}


def degrade_reason(state: ProtocolState, ctx: NodeContext) -> str:
    """Why the paid tier is not used: budget spent, or an unreachable paid model."""
    cap = caps(state, ctx.run.params)
    t = ledger_totals(state.get("ledger", []))
    if cap.usd is not None and t["paid_usd"] >= float(cap.usd):
        return f"paid budget spent: ${t['paid_usd']:.6f} of max_paid_usd ${float(cap.usd):.6f}"
    used = t["paid_input_tokens"] + t["paid_output_tokens"]
    if cap.tokens is not None and used >= cap.tokens:
        return f"paid token budget spent: {used} of max_paid_tokens {cap.tokens}"
    failed = failed_models(state.get("ledger", []))
    if failed:
        return f"paid model failed earlier in this run: {', '.join(failed)}"
    down = sorted({m for models in ctx.run.roles.values() for m in models
                   if ctx.run.pool.entry(m).tier == "paid" and not ctx.run.reachable(m)})
    if down:
        return f"paid model unreachable: {', '.join(down)}"
    return str(ctx.option("reason", "paid tier unavailable"))


def degrade(state: ProtocolState, *, ctx: NodeContext) -> dict[str, Any]:
    """Record that the run continues on the local tier only."""
    return {"degraded_reasons": [degrade_reason(state, ctx)]}


def _stop_reason(state: ProtocolState, ctx: NodeContext) -> str:
    params = ctx.run.params
    if state.get("degraded_reasons"):
        return "degraded"
    r = state.get("rounds", 0)
    if "rounds" in params:
        limit = int(params["rounds"])
        if state.get("unanimous") and r == 0 and limit > 0 and not state.get("guidance"):
            return "agreed_before_guidance" if "skip_guidance_when_agreed" in params \
                else "consensus"
        if state.get("unanimous") and 0 < r:
            return "consensus"
        if limit == 0:
            return "no_rounds"
        if r >= limit:
            return "max_rounds"
    threshold = params.get("threshold")
    if threshold is not None and state.get("stage") is not None:
        if len(final_responses(state)) <= 1:
            return f"stage {state['stage']} (single answer)"
        if float(state.get("agreement", 0.0)) >= float(threshold):
            return f"stage {state['stage']} agreed"
        return f"stage {state['stage']} (last)"
    return "completed"


def finish(state: ProtocolState, *, ctx: NodeContext) -> dict[str, Any]:
    """The output: the home client's answer, or the majority of the final answers."""
    finals = final_responses(state)
    samples = len({r["sample"] for r in finals}) > 1
    answers = {f"{r['client']}[{r['sample']}]" if samples else r["client"]: r["answer"]
               for r in finals}
    home = state.get("home")
    policy = ctx.option("output", ctx.run.params.get("output", "auto"))
    if policy == "home" and not home:
        raise ConfigError("output policy 'home' needs a home client (input 'home' or --home)")
    if home and policy in ("home", "auto"):
        answer = answers.get(home)
    else:
        majority = agreement(r["answer"] for r in finals).majority
        answer = next((r["answer"] for r in finals if answers_match(r["answer"], majority)),
                      None)
    return {"answer": answer, "answers": answers, "stop_reason": _stop_reason(state, ctx),
            "degraded": bool(state.get("degraded_reasons"))}
