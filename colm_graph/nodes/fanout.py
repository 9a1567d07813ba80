"""Helpers shared by the node kinds: fan-out tasks, latest answers, message building."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from colm_graph.core.answers import extract_answer
from colm_graph.core.ledger import CallRecord
from colm_graph.core.prompts import data_block
from colm_graph.core.state import ProtocolState, Response, Task
from colm_graph.nodes.context import NodeContext
from colm_graph.run.budget import Allowance, remaining

__all__ = ["all_participants", "answers_block", "dropped", "expect", "last_answering_node",
           "latest_responses", "participants", "read_reply", "response_update", "sample_kwargs",
           "tasks", "with_images"]


def dropped(state: Any) -> set[str]:
    """Participants dropped from this run: a call of theirs in a fan-out step failed after
    its retries (``failures``). Later fan-outs do not ask them, and what they wrote
    earlier is not shown to the server, the aggregator or their peers."""
    return {f["client"] for f in state.get("failures") or []}


def latest_responses(state: ProtocolState, nodes: Iterable[str] | None = None
                     ) -> dict[str, Response]:
    """Each participant's most recent response (optionally only from ``nodes``); dropped
    participants (:func:`dropped`) have none."""
    allowed = set(nodes) if nodes is not None else None
    gone = dropped(state)
    latest: dict[str, Response] = {}
    for r in state.get("responses", []):
        if allowed is not None and r["node"] not in allowed:
            continue
        if r["client"] in gone:
            continue
        if r["client"] not in latest or r["round"] >= latest[r["client"]]["round"]:
            latest[r["client"]] = r
    return latest


def last_answering_node(state: ProtocolState) -> str | None:
    """The most recent node on the path that wrote responses."""
    written = {r["node"] for r in state.get("responses", [])}
    return next((p["node"] for p in reversed(state.get("path", [])) if p["node"] in written),
                None)


def expect(state: Any, ctx: NodeContext) -> tuple[str, list[str] | None]:
    """The run's expected answer type and multiple-choice options: the input's
    ``answer_type`` / ``choices`` (a fan-out task carries them), else the graph's
    ``answer_type`` parameter, else ``auto``."""
    kind = state.get("answer_type") or ctx.run.params.get("answer_type") or "auto"
    return str(kind), state.get("choices") or None


def read_reply(text: str, state: Any, ctx: NodeContext, record: CallRecord) -> str | None:
    """The answer of a model's reply, read by the run's answer type; a reply the ledger marks
    as cut off at its token limit counts only explicit statements."""
    kind, choices = expect(state, ctx)
    return extract_answer(text, kind=kind, choices=choices,
                          truncated=bool(record.get("truncated")))


def all_participants(state: ProtocolState, ctx: NodeContext) -> list[tuple[str, str]]:
    """``(participant id, model)`` of a fan-out node: the selected clients or the role's
    participants, dropped ones included."""
    if ctx.over == "selected":
        return [(n, n) for n in state.get("selected", [])]
    assert ctx.role is not None
    return ctx.run.participants(ctx.role)


def participants(state: ProtocolState, ctx: NodeContext) -> list[tuple[str, str]]:
    """The participants a fan-out node asks: :func:`all_participants` but the dropped."""
    gone = dropped(state)
    return [(pid, m) for pid, m in all_participants(state, ctx) if pid not in gone]


def tasks(state: ProtocolState, ctx: NodeContext, *, round_: int,
          context: dict[str, str] | None = None, previous: dict[str, str] | None = None
          ) -> list[Task]:
    """One task per participant and sample; paid tasks share what the budget has left."""
    out = []
    kind, choices = expect(state, ctx)
    for pid, model in participants(state, ctx):
        for sample in range(ctx.samples):
            task = Task(fan_out=ctx.name, question=state["question"], client=pid, model=model,
                        round=round_, stage=ctx.stage, sample=sample,
                        images=state.get("images"), answer_type=kind, choices=choices)
            if context is not None:
                task["context"] = context.get(pid, context.get("*", ""))
            if previous is not None:
                task["previous"] = previous.get(pid, "")
            out.append(task)
    paid = [t for t in out if ctx.run.pool.entry(t["model"]).tier == "paid"]
    left = remaining(state, ctx.run.params)
    share = left.share(len(paid))
    if not share.unlimited or share.down or share.constrained:
        for t in paid:
            t["allowance"] = share.as_dict()
    if left.constrained:  # local tasks keep the run's deadline and privacy
        local = Allowance(deadline=left.deadline, private=left.private).as_dict()
        for t in out:
            t.setdefault("allowance", local)
    return out


def answers_block(responses: Sequence[Response], exclude: str | None = None) -> str:
    """Other participants' answers as fenced ``<answer>`` elements."""
    return "\n".join(data_block("answer", r["text"], participant=r["client"])
                     for r in responses if r["client"] != exclude)


def with_images(messages: list[BaseMessage], images: Sequence[Any] | None) -> list[BaseMessage]:
    """Attach images to the last human message as LangChain image content blocks."""
    if not images:
        return messages
    last = messages[-1]
    blocks: list[Any] = [{"type": "text", "text": last.text}]
    for img in images:
        if isinstance(img, dict):
            blocks.append(img)
        else:
            blocks.append({"type": "image_url", "image_url": {"url": str(img)}})
    return [*messages[:-1], HumanMessage(content=blocks)]


def response_update(ctx: NodeContext, task: Task, text: str, record: CallRecord
                    ) -> dict[str, Any]:
    response = Response(client=task["client"], model=task["model"], role=ctx.role or ctx.kind,
                        node=ctx.name, round=task["round"], stage=task["stage"],
                        sample=task["sample"], text=text,
                        answer=read_reply(text, task, ctx, record))
    if record.get("truncated"):
        response["truncated"] = True
    return {"responses": [response], "ledger": [record]}


def sample_kwargs(ctx: NodeContext, task: Task) -> dict[str, Any]:
    """A per-sample seed, for providers that take one, when a node draws several samples."""
    if ctx.samples <= 1:
        return {}
    provider = ctx.run.pool.entry(task["model"]).provider
    return {"seed": task["sample"]} if provider in ("sim", "openai") else {}
