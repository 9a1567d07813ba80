"""Fewer LangGraph super-steps for the same spec: bookkeeping nodes run inside their
neighbour's step, and a fan-out may gather its calls inside one node.

A LangGraph super-step costs about a millisecond of CPU (its tasks, writes, checkpoint and
stream bookkeeping) whether its node calls a model or only tallies votes. So:

* **Inline bookkeeping.** A node that calls no model (``vote``, ``degrade``, ``finish``; a
  ``select`` whose selector is pure Python, a ``score`` whose scorer is, a ``verify`` by
  agreement) runs in the step of the node before it, when that node's step is one task:
  after the node's own update, the edge out of it is decided on the state as it will be,
  and a bookkeeping target runs at once, and so on. The step's update holds every such
  node's update, and ``path`` names each node (the trace, the ledger and ``draw`` are as
  before); a stream's ``updates`` chunk for the step is keyed by the step's first node.
  The edge out of the step then goes on from the last node that ran.
* **Gathered fan-out** (``fan_out: gather``, a parameter every graph has; ``send`` by
  default). A fan-out node normally runs one LangGraph task per participant (``Send``), so
  that under a checkpointer a failed step resumes by asking again only its failed tasks.
  Gathered, the node is one task that makes its participants' calls concurrently
  (``asyncio.gather``, or threads under ``invoke``): no per-task durability, one task
  instead of k, and bookkeeping after it inlines too. A failed call drops its participant
  exactly as before (``min_participants``).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, get_type_hints

from langgraph.types import Overwrite

from colm_graph.core.state import ProtocolState
from colm_graph.nodes import NodeContext

__all__ = ["FAN_OUT_MODES", "apply_update", "gathered", "merge_updates", "node_updates", "pure",
           "wrote"]

FAN_OUT_MODES = ("send", "gather")
"""Values of the ``fan_out`` parameter."""


def _reducers() -> dict[str, Callable[[Any, Any], Any]]:
    hints = get_type_hints(ProtocolState, include_extras=True)
    return {k: h.__metadata__[0] for k, h in hints.items()
            if getattr(h, "__metadata__", None) and callable(h.__metadata__[0])}


REDUCERS = _reducers()
"""The state's reducer functions by field (the list fields that steps append to)."""


def pure(ctx: NodeContext) -> bool:
    """Whether node ``ctx`` only computes from the state (no model, no embeddings, no
    blocking work), so it may run inside its neighbour's step."""
    if ctx.kind in ("vote", "degrade", "finish"):
        return True
    if ctx.kind == "select":
        return bool(getattr(ctx.run.selector, "pure", False))
    if ctx.kind == "score":
        return bool(getattr(ctx.run.scorer, "pure", False))
    if ctx.kind == "verify":
        return ctx.option("method", "agreement") == "agreement"
    return False


def apply_update(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The state after ``update``, as LangGraph's channels would make it (reducers for
    the list fields, ``Overwrite`` replacing, the rest last value)."""
    out = dict(state)
    for key, value in update.items():
        if isinstance(value, Overwrite):
            out[key] = value.value
        elif key in REDUCERS:
            out[key] = REDUCERS[key](out.get(key), value)
        else:
            out[key] = value
    return out


def merge_updates(first: Mapping[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """One update doing ``first`` and then ``then`` (list fields concatenated through
    their reducers; an ``Overwrite`` in ``first`` stays one, holding both)."""
    out = dict(first)
    for key, value in then.items():
        if key not in out or key not in REDUCERS or isinstance(value, Overwrite):
            out[key] = value
            continue
        before = out[key]
        if isinstance(before, Overwrite):
            out[key] = Overwrite(REDUCERS[key](before.value, value))
        else:
            out[key] = REDUCERS[key](before, value)
    return out


def wrote(update: Mapping[str, Any]) -> dict[str, int]:
    """What an inlined node's update wrote, for its ``path`` entry: each field, with the
    number of items it appended to a list field (0 for the rest); empty lists left out."""
    out: dict[str, int] = {}
    for key, value in update.items():
        if key == "path":
            continue
        if key in REDUCERS and isinstance(value, list):
            if value:
                out[key] = len(value)
        else:
            out[key] = 0
    return out


def node_updates(node: str, update: Any) -> list[tuple[str, Any]]:
    """A step's update split into its nodes' own updates, in the order they ran: the
    step's first node ``node``, then each bookkeeping node it ran inline (their ``path``
    entries say what they wrote, see :func:`wrote`). A step of one node is itself."""
    path = update.get("path") if isinstance(update, Mapping) else None
    inlined = [p for p in path or () if isinstance(p, Mapping) and "wrote" in p]
    if not inlined:
        return [(node, update)]
    rest = dict(update)
    parts: list[tuple[str, Any]] = []
    for entry in reversed(inlined):  # the last ran last: its items end the lists
        part: dict[str, Any] = {}
        for key, count in entry["wrote"].items():
            if key not in rest:
                continue
            if count and isinstance(rest[key], list):
                part[key], rest[key] = rest[key][-count:], rest[key][:-count]
            else:
                part[key] = rest.pop(key)
        part["path"] = [entry]
        parts.append((str(entry["node"]), part))
    rest["path"] = [p for p in path or () if not (isinstance(p, Mapping) and "wrote" in p)]
    return [(node, rest), *reversed(parts)]


def _merged(updates: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for update in updates:
        out = merge_updates(out, update)
    return out


def gathered(tasks_of: Callable[[Any], list[dict[str, Any]]],
             run_task: Callable[[Any, Any], dict[str, Any]],
             arun_task: Callable[[Any, Any], Any] | None
             ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A fan-out as one node: ``tasks_of(state)`` gives the tasks (what ``Send`` would
    carry), each run by ``run_task(task, config)`` (``arun_task`` under ``ainvoke``)
    concurrently; the update is theirs merged. When a task raises (too few participants
    left), the others are still waited for, then the first error propagates."""

    def func(state: Any, config: Any) -> dict[str, Any]:
        tasks = tasks_of(state)
        if len(tasks) == 1:
            return run_task(tasks[0], config)
        with ThreadPoolExecutor(max_workers=len(tasks),
                                thread_name_prefix="colm-fan-out") as pool:
            futures = [pool.submit(contextvars.copy_context().run, run_task, t, config)
                       for t in tasks]
            results = [f.exception() or f.result() for f in futures]
        return _first_error_or_merged(results)

    async def afunc(state: Any, config: Any) -> dict[str, Any]:
        tasks = tasks_of(state)
        if arun_task is None:
            return await asyncio.to_thread(func, state, config)
        results = await asyncio.gather(*(arun_task(t, config) for t in tasks),
                                       return_exceptions=True)
        return _first_error_or_merged(list(results))

    return func, afunc


def _first_error_or_merged(results: list[Any]) -> dict[str, Any]:
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return _merged(results)
