"""Kinds without model calls: ``vote`` (agreement of the latest answers), ``degrade`` (mark
the run as fallen back to the local tier) and ``finish`` (the output policy)."""

from __future__ import annotations

from typing import Any

from colm_graph.core.answers import agreement, answers_match, normalize_answer
from colm_graph.core.ledger import ledger_totals
from colm_graph.core.state import ProtocolState, Response
from colm_graph.errors import ConfigError
from colm_graph.nodes.context import NodeContext
from colm_graph.nodes.fanout import dropped, expect, last_answering_node
from colm_graph.run.budget import caps, remaining
from colm_graph.run.constraints import detects_private, may_hold_private
from colm_graph.run.links import still_down

__all__ = ["degrade", "degrade_reason", "final_responses", "finish", "vote"]


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
    kind, choices = expect(state, ctx)
    agree = agreement((r["answer"] for r in finals), kind=kind, choices=choices)
    rounds = max([state.get("rounds", 0)] + [r["round"] for r in finals])
    return {"agreement": agree.share, "majority": agree.majority,
            "unanimous": agree.unanimous, "rounds": rounds}


def _constraint_reason(state: ProtocolState, ctx: NodeContext) -> str | None:
    """Why the run's privacy or deadline rules the paid tier out (``None``: they do not)."""
    limits = remaining(state, ctx.run.params)
    paid = sorted({m for models in ctx.run.roles.values() for m in models
                   if ctx.run.pool.entry(m).tier == "paid"})
    if limits.private:
        barred = [m for m in paid if not may_hold_private(ctx.run.pool.entry(m))]
        if barred:
            return f"private run: {', '.join(barred)} may not receive its data"
    left = limits.time_left()
    if left is not None:
        slowest = max([ctx.run.pool.latency.expected(m) or 0.0 for m in paid] or [0.0])
        if left <= 0:
            return "deadline: no time left"
        if slowest >= left:
            return f"deadline: {left:.3f} s left, the paid step is expected to take" \
                   f" {slowest:.3f} s"
        return "deadline: the next step is not expected to finish in time"
    return None


def degrade_reason(state: ProtocolState, ctx: NodeContext) -> str:
    """Why the paid tier is not used: privacy, the deadline, budget spent, or an
    unreachable paid model."""
    constraint = _constraint_reason(state, ctx)
    if constraint is not None:
        return constraint
    cap = caps(state, ctx.run.params)
    t = ledger_totals(state.get("ledger", []))
    if cap.usd is not None and t["paid_usd"] >= float(cap.usd):
        return f"paid budget spent: ${t['paid_usd']:.6f} of max_paid_usd ${float(cap.usd):.6f}"
    used = t["paid_input_tokens"] + t["paid_output_tokens"]
    if cap.tokens is not None and used >= cap.tokens:
        return f"paid token budget spent: {used} of max_paid_tokens {cap.tokens}"
    failed = still_down(state.get("ledger", []))
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


def _server_answer(state: ProtocolState) -> str | None:
    return next((g["answer"] for g in reversed(state.get("guidance", []))
                 if g.get("answer") is not None), None)


def _break_tie(state: ProtocolState, tied: tuple[str, ...], kind: str,
               choices: list[str] | None) -> tuple[str, str]:
    """Pick one of the ``tied`` answers by the documented rule, never by participant order:
    1. the server's latest stated answer, when it is one of them;
    2. the answer with the most support over every response of the run (all rounds);
    3. the answer first stated in the earliest round;
    4. still tied: the lowest canonical form (recorded as unresolved)."""
    def same(a: str | None, b: str | None) -> bool:
        return answers_match(a, b, kind=kind, choices=choices)

    server = _server_answer(state)
    if server is not None:
        hit = next((t for t in tied if same(t, server)), None)
        if hit is not None:
            return hit, "server's latest answer"
    responses = state.get("responses", [])
    support = {t: sum(same(r["answer"], t) for r in responses) for t in tied}
    best = max(support.values())
    left = [t for t in tied if support[t] == best]
    if len(left) == 1:
        return left[0], "most support over all rounds"
    first = {t: min((r["round"] for r in responses if same(r["answer"], t)), default=0)
             for t in left}
    earliest = min(first.values())
    left = [t for t in left if first[t] == earliest]
    if len(left) == 1:
        return left[0], "stated in the earliest round"
    pick = min(left, key=lambda t: normalize_answer(t, kind, choices) or t)
    return pick, "unresolved: lowest canonical form"


def finish(state: ProtocolState, *, ctx: NodeContext) -> dict[str, Any]:
    """The output: the home client's answer, or the majority of the final answers.

    A tie between final answers is broken by :func:`_break_tie` and recorded in ``tie``;
    when no participant answered but the server stated an answer, that answer is the
    output (``answer_source: server``). A home client dropped from the run (its model
    failed, ``failures``) has no final answer: the majority is the output then."""
    finals = final_responses(state)
    kind, choices = expect(state, ctx)
    samples = len({r["sample"] for r in finals}) > 1
    answers = {f"{r['client']}[{r['sample']}]" if samples else r["client"]: r["answer"]
               for r in finals}
    home = state.get("home")
    policy = ctx.option("output", ctx.run.params.get("output", "auto"))
    if policy == "home" and not home:
        raise ConfigError("output policy 'home' needs a home client (input 'home' or --home)")
    if home and home in dropped(state):
        home = None
    tie: dict[str, Any] = {}
    if home and policy in ("home", "auto"):
        answer, source = answers.get(home), "home"
    else:
        agree = agreement((r["answer"] for r in finals), kind=kind, choices=choices)
        pick: str | None = agree.majority
        source = "majority"
        if agree.tied:
            pick, rule = _break_tie(state, agree.tied, kind, choices)
            tie = {"answers": list(agree.tied), "rule": rule, "chosen": pick}
            source = "tie_break"
        answer = next((r["answer"] for r in finals
                       if answers_match(r["answer"], pick, kind=kind, choices=choices)), None)
    if answer is None and all(r["answer"] is None for r in finals):
        server = _server_answer(state)
        if server is not None:
            answer, source = server, "server"
    if answer is None:
        source = "none"
    out = {"answer": answer, "answer_normalized": normalize_answer(answer, kind, choices),
           "answers": answers, "stop_reason": _stop_reason(state, ctx),
           "degraded": bool(state.get("degraded_reasons")), "answer_source": source,
           "tie": tie}
    limits = remaining(state, ctx.run.params)
    if limits.constrained or detects_private(ctx.run.params):  # said even when not private
        out["constraints"] = constraints_summary(state, limits)
    return out


def constraints_summary(state: ProtocolState, limits: Any) -> dict[str, Any]:
    """A constrained run's ``constraints`` output: whether it was private, the time it had
    left at the end and whether the deadline changed its path, the upload it had left."""
    records = state.get("ledger", [])
    reasons = list(state.get("degraded_reasons") or [])
    summary: dict[str, Any] = {"private": limits.private}
    left = limits.time_left()
    if left is not None:
        summary["time_left_s"] = round(left, 4)
        summary["deadline_hit"] = any(r.get("fallback") == "deadline" for r in records) or \
            any(str(x).startswith("deadline") for x in reasons)
    if limits.upload is not None:
        summary["upload_left_bytes"] = limits.upload
    return summary
