"""COPE's kinds: ``plan`` (a planner writes a short plan, no final answer) and ``execute``
(executors write full solutions following the stage's plan; a fan-out kind)."""

from __future__ import annotations

from typing import Any

from ..ledger import CallRecord
from ..state import Plan, ProtocolState, Task
from ._step import Step, model_node
from ._tasks import response_update, sample_kwargs, tasks
from .context import NodeContext


def _prepare_plan(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    model = ctx.run.model(ctx.role)
    messages = ctx.run.prompts.messages(ctx.prompt or "planner", question=state["question"])
    return Step(model, messages, ctx.role, state.get("rounds", 0))


def _finish_plan(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                 record: CallRecord) -> dict[str, Any]:
    plan = Plan(stage=ctx.stage, model=step.model, node=ctx.name, text=text)
    return {"plans": [plan], "ledger": [record], "stage": ctx.stage}


plan, aplan = model_node(_prepare_plan, _finish_plan)


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
