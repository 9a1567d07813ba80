"""Fan-out kinds where participants answer: ``answer`` (on their own), ``revise`` (with the
server's guidance, or with the other participants' answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from colm_graph.core.ledger import CallRecord
from colm_graph.core.state import ProtocolState, Task
from colm_graph.nodes._step import Step, model_node
from colm_graph.nodes.context import NodeContext
from colm_graph.nodes.fanout import (
    answers_block,
    latest_responses,
    participants,
    response_update,
    sample_kwargs,
    tasks,
    with_images,
)

__all__ = [
    "aanswer",
    "answer",
    "answer_tasks",
    "arevise",
    "CLIENT_VALUES",
    "revise",
    "revise_tasks",
    "revise_values",
]


CLIENT_VALUES = frozenset({"client_name", "client_domains", "question"})
"""What an ``answer`` node fills into its prompt (a ``revise`` node adds more)."""


def revise_values(options: Mapping[str, Any]) -> frozenset[str]:
    """What a ``revise`` node fills into its prompt, by its ``context`` option."""
    context = options.get("context", "guidance")
    return CLIENT_VALUES | {"previous", "guidance" if context == "guidance" else "answers"}


def _who(ctx: NodeContext, task: Task) -> dict[str, str]:
    entry = ctx.run.pool.entry(task["model"])
    return {"client_name": task["client"],
            "client_domains": ", ".join(entry.domains) or "general questions",
            "question": task["question"]}


# -- answer ---------------------------------------------------------------------------------
def answer_tasks(state: ProtocolState, ctx: NodeContext) -> list[Task]:
    return tasks(state, ctx, round_=state.get("rounds", 0))


def _prepare_answer(task: Task, ctx: NodeContext) -> Step:
    messages = ctx.run.prompts.messages(ctx.prompt or "client_draft", **_who(ctx, task))
    return Step(task["model"], with_images(messages, task.get("images")), ctx.role or "client",
                task["round"], sample_kwargs(ctx, task))


def _finish(task: Task, ctx: NodeContext, step: Step, text: str,
            record: CallRecord) -> dict[str, Any]:
    return response_update(ctx, task, text, record)


answer, aanswer = model_node(_prepare_answer, _finish)


# -- revise -----------------------------------------------------------------------------------
def revise_tasks(state: ProtocolState, ctx: NodeContext) -> list[Task]:
    """Guidance mode: this round's guidance for every participant, each with its previous
    answer. Peers mode: every participant sees the others' latest answers (a new round)."""
    latest = latest_responses(state)
    previous = {pid: r["text"] for pid, r in latest.items()}
    if ctx.option("context", "guidance") == "guidance":
        guidance = state.get("guidance", [])
        text = guidance[-1]["text"] if guidance else ""
        return tasks(state, ctx, round_=state.get("rounds", 0), context={"*": text},
                     previous=previous)
    peers = list(latest.values())
    include_self = bool(ctx.option("include_self", False))
    context = {pid: answers_block(peers, exclude=None if include_self else pid)
               for pid, _ in participants(state, ctx)}
    return tasks(state, ctx, round_=state.get("rounds", 0) + 1, context=context,
                 previous=previous)


def _prepare_revise(task: Task, ctx: NodeContext) -> Step:
    if ctx.option("context", "guidance") == "guidance":
        name, extra = ctx.prompt or "client_revise", {"guidance": task.get("context", "")}
    else:
        name, extra = ctx.prompt or "peer_revise", {"answers": task.get("context", "")}
    messages = ctx.run.prompts.messages(name, previous=task.get("previous", ""),
                                        **extra, **_who(ctx, task))
    return Step(task["model"], with_images(messages, task.get("images")), ctx.role or "client",
                task["round"], sample_kwargs(ctx, task))


revise, arevise = model_node(_prepare_revise, _finish)
