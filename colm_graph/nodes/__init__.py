"""The shared node set: one registry of node kinds that every graph variant is built from.

Nodes are module-level functions bound to their settings at build time; each model-calling
kind has a sync and an async form over the same prepare/finish steps, so graphs run under
``invoke`` and ``ainvoke`` alike. Fan-out kinds run once per participant (and sample), in
parallel, through LangGraph's ``Send``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from colm_graph.core.settings import MAX_TOP_K, OUTPUT_POLICIES, VERIFY_METHODS, Option
from colm_graph.nodes import aggregate as _agg
from colm_graph.nodes import clients as _clients
from colm_graph.nodes import planning as _planning
from colm_graph.nodes import routing as _routing
from colm_graph.nodes import server as _server
from colm_graph.nodes.context import NodeContext, RunContext

__all__ = ["KINDS", "NodeContext", "NodeKind", "Option", "RunContext"]


@dataclass(frozen=True)
class NodeKind:
    """A node kind of the registry."""

    func: Callable[..., Any]
    afunc: Callable[..., Any] | None = None
    fan_out: Callable[..., Any] | None = None
    """For fan-out kinds: ``tasks(state, ctx) -> list[Task]``."""
    role: Literal["required", "optional", "none"] = "none"
    options: Mapping[str, Option] = field(default_factory=dict, hash=False)
    """Option name -> its allowed values (``in`` and iteration give the names; a plain
    collection of names is taken as options that allow any value)."""
    calls_model: bool = True
    doc: str = ""
    prompt_values: frozenset[str] | Callable[[Mapping[str, Any]], frozenset[str]] = frozenset()
    """The values the kind fills into its prompt (a spec's ``prompt`` may use no others):
    a set, or a function of the node's options (their ``$param``s resolved)."""

    def __post_init__(self) -> None:
        opts: Mapping[str, Option] | Collection[str] = self.options
        table = dict(opts) if isinstance(opts, Mapping) else {k: Option("any") for k in opts}
        object.__setattr__(self, "options", table)

    @property
    def option_names(self) -> frozenset[str]:
        return frozenset(self.options)

    def values_for(self, options: Mapping[str, Any]) -> frozenset[str]:
        """:attr:`prompt_values` for a node with these options."""
        v = self.prompt_values
        return v if isinstance(v, frozenset) else v(options)


_UNKNOWN = Option("float", low=0, high=1,
                  doc="the score used when the reply has no readable score")

KINDS: dict[str, NodeKind] = {
    "select": NodeKind(_routing.select, _routing.aselect, role="required",
                       options={"top_k": Option("int", low=1, high=MAX_TOP_K),
                                "asks": Option("role", doc="the role that asks")},
                       doc="choose the top-k clients of the role (CoLM)",
                       prompt_values=frozenset({"question", "clients", "k"})),
    "answer": NodeKind(_clients.answer, _clients.aanswer, _clients.answer_tasks,
                       role="required", doc="each participant answers on its own",
                       prompt_values=_clients.CLIENT_VALUES),
    "revise": NodeKind(_clients.revise, _clients.arevise, _clients.revise_tasks,
                       role="required",
                       options={"context": Option("enum", ("guidance", "peers")),
                                "include_self": Option("bool")},
                       doc="each participant revises with guidance or the others' answers",
                       prompt_values=_clients.revise_values),
    "plan": NodeKind(_planning.plan, _planning.aplan, role="required",
                     options={"fresh": Option("bool", doc="false: reuse an earlier plan by"
                                              " the same model in this run")},
                     doc="a planner writes a short plan (no final answer)",
                     prompt_values=frozenset({"question"})),
    "execute": NodeKind(_planning.execute, _planning.aexecute, _planning.execute_tasks,
                        role="required", doc="executors solve the question following the plan",
                        prompt_values=frozenset({"question", "plan"})),
    "guide": NodeKind(_server.guide, _server.aguide, role="required",
                      doc="the server reads every answer and writes guidance",
                      prompt_values=frozenset({"question", "drafts", "round", "rounds",
                                               "previous_guidance", "answers_so_far"})),
    "aggregate": NodeKind(_server.aggregate, _server.aaggregate, role="required",
                          doc="one model synthesises everyone's answers into the answer",
                          prompt_values=frozenset({"question", "answers"})),
    "score": NodeKind(_routing.score, _routing.ascore, role="optional",
                      options={"unknown": _UNKNOWN},
                      doc="a router scores the query (higher: the paid tier helps more)",
                      prompt_values=frozenset({"question"})),
    "verify": NodeKind(_routing.verify, _routing.averify, role="optional",
                       options={"method": Option("enum", VERIFY_METHODS), "unknown": _UNKNOWN},
                       doc="confidence in the latest answer (agreement or self-check)",
                       prompt_values=frozenset({"question", "candidate"})),
    "vote": NodeKind(_agg.vote, calls_model=False,
                     doc="majority and agreement of the latest answers"),
    "degrade": NodeKind(_agg.degrade, calls_model=False, options={"reason": Option("str")},
                        doc="mark the run as fallen back to the local tier"),
    "finish": NodeKind(_agg.finish, calls_model=False,
                       options={"output": Option("enum", OUTPUT_POLICIES)},
                       doc="the output policy: home client or majority"),
}
