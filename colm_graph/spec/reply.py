"""Which nodes write the run's reply: the nodes whose one model call, when they run, is the
reply a chat client gets, so that its tokens can be streamed as they arrive.

A node is a *reply node* when it writes responses (``answer``, ``revise``, ``execute``,
``aggregate``), makes exactly one model call per pass (one participant, one sample), is on
no loop, and every node it can lead to makes no model call (``vote``, ``degrade``,
``finish``). The output policy then reads only that response (the latest answering node's
latest responses are the final ones), so its text is the reply, unless it states no answer
and the run falls back to another one. ``single``'s answer and fallback, ``route``'s strong
and weak answers, ``cascade``'s escalation, COPE's third stage and MoA's aggregator are
reply nodes; a CoLM revision (k clients) or a self-consistency vote (n samples) is not.

A variant can *call tools* (and give structured output) when its reply is one model's
``AIMessage``: every node that writes responses is an ``answer`` node that sends the
conversation itself, and it has a reply node (so one call, not a vote over samples, can be
the reply). ``single``, ``route`` and ``cascade`` can (a cascade's local samples are
checked and voted on, and one of them is the reply when it is accepted); CoLM, COPE, MoA,
debate and self-consistency cannot: their reply is written from other models' drafts (a
revision, a plan's execution, a synthesis) or is a vote over samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from colm_graph.nodes import KINDS
from colm_graph.spec.schema import GraphSpec
from colm_graph.spec.validate import loops

__all__ = ["TOOL_KINDS", "TOOL_VARIANTS", "WRITES_REPLY", "reply_nodes", "tools_refused",
           "tools_refusal"]

WRITES_REPLY = frozenset({"answer", "revise", "execute", "aggregate"})
"""The node kinds that write responses (the candidates for the reply)."""


def _calls_per_pass(ctx: Any, fan_out: bool) -> int:
    if not fan_out:
        return 1
    if ctx.over == "selected":
        return 2  # the select step picks how many: never known to be one
    return int(ctx.samples) * len(ctx.run.participants(ctx.role))


def _downstream(spec: GraphSpec, name: str) -> set[str]:
    after: dict[str, set[str]] = {}
    for edge in spec.edges:
        after.setdefault(edge.source, set()).update(t for t in edge.targets() if t)
    seen: set[str] = set()
    todo = list(after.get(name, ()))
    while todo:
        n = todo.pop()
        if n in seen or n not in spec.nodes:
            continue
        seen.add(n)
        todo.extend(after.get(n, ()))
    return seen


def reply_nodes(spec: GraphSpec, ctxs: Mapping[str, Any], fan_out: Mapping[str, bool]
                ) -> frozenset[str]:
    """The reply nodes of ``spec`` built with the node contexts ``ctxs`` (parameters and
    roles bound; ``fan_out``: node -> whether its kind fans out)."""
    looping: set[str] = set().union(*loops(spec))
    found = set()
    for name, node in spec.nodes.items():
        if node.kind not in WRITES_REPLY or name in looping:
            continue
        if _calls_per_pass(ctxs[name], fan_out[name]) != 1:
            continue
        if any(KINDS[spec.nodes[n].kind].calls_model for n in _downstream(spec, name)):
            continue
        found.add(name)
    return frozenset(found)


TOOL_KINDS = frozenset({"answer", "score", "verify", "vote", "degrade", "finish"})
"""The node kinds of a variant that can call tools (see the module doc)."""
TOOL_VARIANTS = ("single", "route", "cascade")
"""The shipped variants that can call tools."""


def tools_refusal(spec: GraphSpec, replies: frozenset[str]) -> str | None:
    """Why variant ``spec`` (with reply nodes ``replies``) cannot call tools, or ``None``."""
    others = sorted({n.kind for n in spec.nodes.values() if n.kind not in TOOL_KINDS})
    if others:
        return (f"its reply is written from other models' work ({', '.join(others)}"
                f" {'node' if len(others) == 1 else 'nodes'})")
    if not replies:
        return "its reply is a vote over several samples, not one model call"
    return None


def tools_refused(variant: str, reason: str, what: str = "bind_tools") -> str:
    """The one-line refusal of tools for ``variant``."""
    return (f"{what}: variant {variant!r} cannot call tools: {reason}; tools work with"
            f" variants whose reply is one model call ({', '.join(TOOL_VARIANTS)}, or a"
            f" spec of that shape); to use {variant!r} inside an agent, give the agent"
            f" protocol_tool({variant!r}) as a tool")
