"""COPE's kinds: ``plan`` (a planner writes a short plan, no final answer) and ``execute``
(executors write full solutions following the stage's plan; a fan-out kind).

A ``plan`` node whose model already wrote a plan from the same prompt earlier in the run
(COPE's stage 3 after stage 2: the same large planner, the same question) reuses that plan
instead of paying for the same prompt twice: it appends a plan marked ``reused_from`` and
makes no call. The option ``fresh: true`` always asks for a new plan."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from colm_graph.core.ledger import CallRecord
from colm_graph.core.state import Plan, ProtocolState, Task
from colm_graph.nodes._step import Step, model_node
from colm_graph.nodes.context import NodeContext
from colm_graph.nodes.fanout import response_update, sample_kwargs, tasks

__all__ = [
    "aexecute",
    "aplan",
    "DEFAULT_PROMPT",
    "execute",
    "execute_tasks",
    "plan",
    "reusable_plan",
]

DEFAULT_PROMPT = "planner"


def _prepare_plan(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    model = ctx.run.model(ctx.role)
    messages = ctx.run.prompts.messages(ctx.prompt or DEFAULT_PROMPT, question=state["question"])
    return Step(model, messages, ctx.role, state.get("rounds", 0))


def _finish_plan(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                 record: CallRecord) -> dict[str, Any]:
    plan = Plan(stage=ctx.stage, model=step.model, node=ctx.name, text=text,
                prompt=ctx.prompt or DEFAULT_PROMPT)
    return {"plans": [plan], "ledger": [record], "stage": ctx.stage}


_plan, _aplan = model_node(_prepare_plan, _finish_plan)


def reusable_plan(state: ProtocolState, ctx: NodeContext) -> Plan | None:
    """The latest plan of this run written by this node's model from this node's prompt in
    another stage, unless the node asks for a ``fresh`` plan. A plan whose call was made by
    a local stand-in (budget spent, paid model failed) is not the model's own: not reused."""
    if ctx.option("fresh", False) or ctx.role is None:
        return None
    model, prompt = ctx.run.model(ctx.role), ctx.prompt or DEFAULT_PROMPT
    stood_in = {(r["node"], r.get("stage")) for r in state.get("ledger", [])
                if r.get("fallback_for")}
    for p in reversed(state.get("plans", [])):
        if (p["model"] == model and p.get("prompt", DEFAULT_PROMPT) == prompt
                and p["stage"] != ctx.stage and (p["node"], p["stage"]) not in stood_in):
            return p
    return None


def _reuse(ctx: NodeContext, earlier: Plan) -> dict[str, Any]:
    plan = Plan(stage=ctx.stage, model=earlier["model"], node=ctx.name, text=earlier["text"],
                prompt=earlier.get("prompt", DEFAULT_PROMPT),
                reused_from=earlier.get("reused_from", earlier["stage"]))
    return {"plans": [plan], "stage": ctx.stage}


def plan(state: ProtocolState, config: RunnableConfig, *, ctx: NodeContext) -> dict[str, Any]:
    earlier = reusable_plan(state, ctx)
    if earlier is not None:
        return _reuse(ctx, earlier)
    return _plan(state, config, ctx=ctx)


async def aplan(state: ProtocolState, config: RunnableConfig, *, ctx: NodeContext
                ) -> dict[str, Any]:
    earlier = reusable_plan(state, ctx)
    if earlier is not None:
        return _reuse(ctx, earlier)
    return await _aplan(state, config, ctx=ctx)


def execute_tasks(state: ProtocolState, ctx: NodeContext) -> list[Task]:
    plans = [p for p in state.get("plans", []) if p["stage"] == ctx.stage] or \
        state.get("plans", [])
    text = plans[-1]["text"] if plans else ""
    return tasks(state, ctx, round_=state.get("rounds", 0), context={"*": text})


def _prepare_execute(task: Task, ctx: NodeContext) -> Step:
    messages = ctx.run.prompts.messages(ctx.prompt or "executor", question=task["question"],
                                        plan=task.get("context", ""))
    return Step(task["model"], messages, ctx.role or "executor", task["round"],
                sample_kwargs(ctx, task))


def _finish_execute(task: Task, ctx: NodeContext, step: Step, text: str,
                    record: CallRecord) -> dict[str, Any]:
    return response_update(ctx, task, text, record)


execute, aexecute = model_node(_prepare_execute, _finish_execute)
