"""A protocol graph as a LangChain tool, for agents (``langchain.agents.create_agent``) or
anything else that calls tools.

    tool = protocol_tool("colm")                      # the built-in simulated pool
    tool.invoke({"question": "What is 17 * 23 + 48?"})  # "439"

The tool passes the config it is called with (callbacks, tags, metadata, the agent's graph
context) on to the protocol graph, so a tracer shows the protocol's nodes and model calls
under the tool call, and ``stream(..., subgraphs=True)`` on an agent shows them as events.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from colm_graph.core.messages import MAX_QUESTION_CHARS, check_question
from colm_graph.core.result import RunResult
from colm_graph.errors import ConfigError

if TYPE_CHECKING:
    from colm_graph.pool import ModelPool

__all__ = ["NO_ANSWER", "ProtocolToolInput", "protocol_tool"]

NO_ANSWER = "The protocol gave no answer."
"""What the tool returns (``return_details=False``) when no participant gave an answer."""

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ProtocolToolInput(BaseModel):
    """Arguments of a protocol tool."""

    question: str = Field(description="The question to answer, stated in full (at most"
                          f" {MAX_QUESTION_CHARS} characters).")


def _graph_of(graph_or_variant: Any, pool: ModelPool | None) -> Any:
    from colm_graph.spec import GraphSpec, load_graph

    if isinstance(graph_or_variant, str | Path | GraphSpec):
        return load_graph(graph_or_variant, pool=pool)
    if not (callable(getattr(graph_or_variant, "invoke", None))
            and callable(getattr(graph_or_variant, "ainvoke", None))):
        raise ConfigError("graph_or_variant: expected a compiled protocol graph, a variant"
                          f" name, a spec path or a GraphSpec, got"
                          f" {type(graph_or_variant).__name__}")
    if pool is not None:
        raise ConfigError("pool: only used with a variant name or spec; a compiled graph is"
                          " already bound to its pool")
    return graph_or_variant


def _default_name(graph: Any) -> str:
    raw = str(getattr(graph, "name", "") or "protocol")
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_") or "protocol"
    return f"ask_{cleaned}"[:64]


def _default_description(graph: Any) -> str:
    name = str(getattr(graph, "name", "") or "protocol")
    return (f"Answer a question with the {name!r} collaborative protocol: small local models"
            " and a large paid model work on it together. Pass the whole question; the"
            " result is the final answer.")


def protocol_tool(
    graph_or_variant: Any,
    *,
    pool: ModelPool | None = None,
    name: str | None = None,
    description: str | None = None,
    return_details: bool = False,
) -> BaseTool:
    """Wrap a protocol graph as a LangChain tool with one argument, ``question``.

    Args:
        graph_or_variant: a compiled protocol graph (``load_graph(...)``, ``create_*_graph``),
            or a shipped variant's name (``"colm"``), a spec path or a
            :class:`~colm_graph.spec.GraphSpec`, built with ``pool``.
        pool: the pool to build a variant with (default: the built-in simulated pool); not
            allowed with a compiled graph, which is already bound to one.
        name: tool name (letters, digits, ``_`` and ``-``; default ``ask_<graph name>``).
        description: what the model reads to decide when to call the tool.
        return_details: return ``{"answer", "paid_usd", "usd", "degraded"}`` instead of the
            answer text.

    Returns:
        A :class:`~langchain_core.tools.StructuredTool` with sync and async forms. Without
        ``return_details`` it returns the final answer text, or :data:`NO_ANSWER`. An empty
        question, or one over :data:`~colm_graph.core.messages.MAX_QUESTION_CHARS` characters,
        raises :class:`~colm_graph.errors.ConfigError` (``question: ...``) before any model
        is called.
    """
    graph = _graph_of(graph_or_variant, pool)
    tool_name = name if name is not None else _default_name(graph)
    if not isinstance(tool_name, str) or not _TOOL_NAME.match(tool_name):
        raise ConfigError("name: expected 1 to 64 letters, digits, '_' or '-', got"
                          f" {tool_name!r}")
    if description is not None and (not isinstance(description, str) or not description.strip()):
        raise ConfigError(f"description: expected a non-empty string, got {description!r}")

    def result(out: dict[str, Any]) -> Any:
        final = RunResult.from_state(out, graph=getattr(graph, "name", None))
        if not return_details:
            return NO_ANSWER if final.answer is None else str(final.answer)
        return {"answer": final.answer, "paid_usd": final.totals["paid_usd"],
                "usd": final.totals["usd"], "degraded": final.degraded}

    def run(question: str, config: RunnableConfig) -> Any:
        return result(graph.invoke({"question": check_question(question)}, config))

    async def arun(question: str, config: RunnableConfig) -> Any:
        return result(await graph.ainvoke({"question": check_question(question)}, config))

    return StructuredTool.from_function(
        func=run, coroutine=arun, name=tool_name,
        description=description or _default_description(graph),
        args_schema=ProtocolToolInput, infer_schema=False,
    )
