"""The shared node set: one registry of node kinds that every graph variant is built from.

Nodes are module-level functions bound to their settings at build time; each model-calling
kind has a sync and an async form over the same prepare/finish steps, so graphs run under
``invoke`` and ``ainvoke`` alike. Fan-out kinds run once per participant (and sample), in
parallel, through LangGraph's ``Send``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import aggregate as _agg
from . import clients as _clients
from . import planning as _planning
from . import routing as _routing
from . import server as _server
from .context import NodeContext, RunContext

__all__ = ["KINDS", "NodeContext", "NodeKind", "RunContext"]


@dataclass(frozen=True)
class NodeKind:
    """A node kind of the registry."""

    func: Callable[..., Any]
    afunc: Callable[..., Any] | None = None
    fan_out: Callable[..., Any] | None = None
    """For fan-out kinds: ``tasks(state, ctx) -> list[Task]``."""
    role: Literal["required", "optional", "none"] = "none"
    options: frozenset[str] = frozenset()
    calls_model: bool = True
    doc: str = ""


KINDS: dict[str, NodeKind] = {
    "select": NodeKind(_routing.select, _routing.aselect, role="required",
                       options=frozenset({"top_k", "asks"}),
                       doc="choose the top-k clients of the role (CoLM)"),
    "answer": NodeKind(_clients.answer, _clients.aanswer, _clients.answer_tasks,
                       role="required", doc="each participant answers on its own"),
    "revise": NodeKind(_clients.revise, _clients.arevise, _clients.revise_tasks,
                       role="required", options=frozenset({"context", "include_self"}),
                       doc="each participant revises with guidance or the others' answers"),
    "plan": NodeKind(_planning.plan, _planning.aplan, role="required",
                     doc="a planner writes a short plan (no final answer)"),
    "execute": NodeKind(_planning.execute, _planning.aexecute, _planning.execute_tasks,
                        role="required", doc="executors solve the question following the plan"),
    "guide": NodeKind(_server.guide, _server.aguide, role="required",
                      doc="the server reads every answer and writes guidance"),
    "aggregate": NodeKind(_server.aggregate, _server.aaggregate, role="required",
                          doc="one model synthesises everyone's answers into the answer"),
    "score": NodeKind(_routing.score, _routing.ascore, role="optional",
                      doc="a router scores the query (higher: the paid tier helps more)"),
    "verify": NodeKind(_routing.verify, _routing.averify, role="optional",
                       options=frozenset({"method"}),
                       doc="confidence in the latest answer (agreement or self-check)"),
    "vote": NodeKind(_agg.vote, calls_model=False,
                     doc="majority and agreement of the latest answers"),
    "degrade": NodeKind(_agg.degrade, calls_model=False, options=frozenset({"reason"}),
                        doc="mark the run as fallen back to the local tier"),
    "finish": NodeKind(_agg.finish, calls_model=False, options=frozenset({"output"}),
                       doc="the output policy: home client or majority"),
}
