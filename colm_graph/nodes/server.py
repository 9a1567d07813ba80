"""Kinds played by one (usually paid) model over everyone's answers: ``guide`` (CoLM's
server writes guidance for the next round) and ``aggregate`` (Mixture-of-Agents' aggregator
writes the final answer).

Every draft or answer entering these prompts is cut to the graph parameter
``max_draft_chars`` (default 6000 characters; ``None``: no cap), keeping its head and its
tail, where the final answer sits (:func:`colm_graph.core.prompts.clip_middle`). From round 2 on
the server also sees its guidance of the earlier rounds and each client's extracted answer
round by round."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from colm_graph.core.ledger import CallRecord
from colm_graph.core.prompts import DEFAULTS, clip_middle, data_block
from colm_graph.core.state import Guidance, ProtocolState, Response
from colm_graph.nodes._step import Step, model_node
from colm_graph.nodes.context import NodeContext
from colm_graph.nodes.fanout import answers_block, latest_responses, read_reply

__all__ = [
    "aaggregate",
    "aggregate",
    "aguide",
    "answers_so_far",
    "clipped",
    "DEFAULT_MAX_DRAFT_CHARS",
    "FIRST_ROUND",
    "guide",
    "MAX_ANSWER_CHARS",
    "max_draft_chars",
    "previous_guidance",
]

DEFAULT_MAX_DRAFT_CHARS = 6000
"""Default of the graph parameter ``max_draft_chars``."""
FIRST_ROUND = DEFAULTS["answers_so_far"]
"""What ``{answers_so_far}`` holds in round 1."""
MAX_ANSWER_CHARS = 200
"""An extracted answer longer than this is clipped in ``{answers_so_far}``."""


def max_draft_chars(ctx: NodeContext) -> int | None:
    """The cap on a draft's length in a paid prompt (graph parameter ``max_draft_chars``)."""
    value = ctx.run.params.get("max_draft_chars", DEFAULT_MAX_DRAFT_CHARS)
    return None if value is None else int(value)


def clipped(responses: Sequence[Response], limit: int | None) -> list[Response]:
    """The responses with each text cut to ``limit`` characters (head and tail kept)."""
    return [r if limit is None or len(r["text"]) <= limit
            else cast(Response, {**r, "text": clip_middle(r["text"], limit)})
            for r in responses]


def previous_guidance(state: ProtocolState, round_: int, limit: int | None) -> str:
    """The guidance of the rounds before ``round_``, each in a ``<previous_guidance
    round="r">`` element ("" in round 1)."""
    earlier = [g for g in state.get("guidance", []) if g["round"] < round_]
    if not earlier:
        return ""
    blocks = "\n".join(data_block("previous_guidance", clip_middle(g["text"], limit),
                                  round=str(g["round"]))
                       for g in sorted(earlier, key=lambda g: g["round"]))
    return f"\n{blocks}\n"


def answers_so_far(state: ProtocolState, order: Sequence[str], round_: int) -> str:
    """One line per client, its extracted answer in each round so far:
    ``client: 439 → 441`` ("(none: first round)" in round 1)."""
    if round_ <= 1:
        return FIRST_ROUND
    by_client: dict[str, dict[int, str | None]] = {}
    for r in state.get("responses", []):
        if r["round"] < round_:
            by_client.setdefault(r["client"], {})[r["round"]] = r["answer"]
    lines = []
    for client in [c for c in order if c in by_client] + \
            [c for c in by_client if c not in order]:
        rounds = by_client[client]
        shown = [clip_middle(a, MAX_ANSWER_CHARS) if a is not None else "no answer"
                 for _, a in sorted(rounds.items())]
        lines.append(f"{client}: {' → '.join(shown)}")
    return "\n".join(lines) or FIRST_ROUND


def _prepare_guide(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    r = state.get("rounds", 0) + 1
    limit = max_draft_chars(ctx)
    latest = latest_responses(state)
    order = state.get("selected") or list(latest)
    drafts = "\n".join(data_block("draft", clip_middle(latest[n]["text"], limit), client=n)
                       for n in order if n in latest)
    messages = ctx.run.prompts.messages(ctx.prompt or "server_guide",
                                        question=state["question"], drafts=drafts, round=r,
                                        rounds=ctx.run.params.get("rounds", r),
                                        previous_guidance=previous_guidance(state, r, limit),
                                        answers_so_far=answers_so_far(state, order, r))
    return Step(ctx.run.model(ctx.role), messages, ctx.role, r)


def _finish_guide(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                  record: CallRecord) -> dict[str, Any]:
    guidance = Guidance(round=step.round, model=step.model, text=text,
                        answer=read_reply(text, state, ctx, record), node=ctx.name)
    return {"guidance": [guidance], "ledger": [record], "rounds": step.round}


guide, aguide = model_node(_prepare_guide, _finish_guide)


def _prepare_aggregate(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    latest = clipped(list(latest_responses(state).values()), max_draft_chars(ctx))
    messages = ctx.run.prompts.messages(ctx.prompt or "aggregator",
                                        question=state["question"],
                                        answers=answers_block(latest))
    return Step(ctx.run.model(ctx.role), messages, ctx.role, state.get("rounds", 0))


def _finish_aggregate(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                      record: CallRecord) -> dict[str, Any]:
    response = Response(client=step.model, model=step.model, role=step.role, node=ctx.name,
                        round=step.round, stage=ctx.stage, sample=0, text=text,
                        answer=read_reply(text, state, ctx, record))
    return {"responses": [response], "ledger": [record]}


aggregate, aaggregate = model_node(_prepare_aggregate, _finish_aggregate)
