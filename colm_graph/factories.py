"""Protocol factories: keyword-only, validate their inputs first, return a compiled graph.

``create_colm_graph`` wires the shared nodes (select, draft, tally, guide, revise, finish)
into CoLM's client-server rounds::

    START -> select -> draft x k -> tally -> guide -> revise x k -> tally -> ... -> finish -> END
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph

from . import nodes
from .errors import ConfigError
from .pool import ModelPool
from .prompts import PromptSet, load_prompts
from .selection import Selector, make_selector
from .settings import MAX_ROUNDS, MAX_TOP_K, ColmSettings, OutputPolicy
from .state import ColmInput, ColmOutput, ColmState

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.store.base import BaseStore

__all__ = ["create_colm_graph"]


def _node(name: str, func: Callable[..., Any], afunc: Callable[..., Any] | None,
          settings: ColmSettings) -> RunnableLambda:
    return RunnableLambda(partial(func, settings=settings),
                          afunc=partial(afunc, settings=settings) if afunc else None, name=name)


def _check_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{field}: expected an integer from {low} to {high}, got {value!r}")
    return value


def colm_settings(
    *,
    pool: ModelPool | None = None,
    clients: Sequence[str] | None = None,
    server: str | None = None,
    top_k: int = 2,
    rounds: int = 2,
    selector: str | Selector = "lexical",
    embeddings: Embeddings | None = None,
    skip_guidance_when_agreed: bool = True,
    output: OutputPolicy = "auto",
    home: str | None = None,
    prompts: str | Path | PromptSet | None = None,
) -> ColmSettings:
    """Validate CoLM parameters against the pool; see :func:`create_colm_graph`."""
    pool = pool if pool is not None else ModelPool.default()
    if not isinstance(pool, ModelPool):
        raise ConfigError(f"pool: expected a ModelPool, got {type(pool).__name__}")
    server_name = server or pool.server
    pool.entry(server_name)
    if clients is not None:
        if isinstance(clients, str) or not clients:
            raise ConfigError(f"clients: expected a non-empty list of model names, got {clients!r}")
        for c in clients:
            pool.entry(c)
        candidates = tuple(dict.fromkeys(clients))
    else:
        candidates = tuple(pool.names("local")) or tuple(n for n in pool.names()
                                                         if n != server_name)
    if not candidates:
        raise ConfigError(f"clients: the pool has no client models besides the server"
                          f" {server_name!r}")
    if home is not None:
        pool.entry(home)
    if output not in ("auto", "home", "majority"):
        raise ConfigError(f"output: expected 'auto', 'home' or 'majority', got {output!r}")
    return ColmSettings(
        pool=pool, candidates=candidates, server=server_name,
        selector=make_selector(selector, embeddings=embeddings),
        prompts=prompts if isinstance(prompts, PromptSet) else load_prompts(prompts),
        top_k=_check_int("top_k", top_k, 1, MAX_TOP_K),
        rounds=_check_int("rounds", rounds, 0, MAX_ROUNDS),
        skip_guidance_when_agreed=bool(skip_guidance_when_agreed), output=output, home=home,
    )


def create_colm_graph(
    *,
    pool: ModelPool | None = None,
    clients: Sequence[str] | None = None,
    server: str | None = None,
    top_k: int = 2,
    rounds: int = 2,
    selector: str | Selector = "lexical",
    embeddings: Embeddings | None = None,
    skip_guidance_when_agreed: bool = True,
    output: OutputPolicy = "auto",
    home: str | None = None,
    prompts: str | Path | PromptSet | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    store: BaseStore | None = None,
    name: str | None = "colm",
) -> CompiledStateGraph:
    """Build the CoLM client-server graph.

    Args:
        pool: models the run may call (default: the built-in simulated pool).
        clients: clients the selector may choose from (default: the pool's local models).
        server: the server model (default: the pool's ``server``, else its first paid model).
        top_k: clients per question (the home client counts as one).
        rounds: guidance rounds at most; 0 runs drafts only.
        selector: ``lexical``, ``embedding`` (needs ``embeddings``), ``llm``, or a Selector.
        embeddings: any LangChain ``Embeddings``, for the embedding selector.
        skip_guidance_when_agreed: make no server call when all drafts already agree.
        output: ``auto`` (home client if named, else majority), ``home`` or ``majority``.
        home: default home client when the input names none.
        prompts: a directory of prompt files overriding the bundled ``prompts/``.
        checkpointer: passed to ``compile`` (e.g. a SQLite saver).
        store: passed to ``compile``.
        name: graph name, passed to ``compile``.

    Returns:
        A compiled LangGraph graph: input ``{"question": ..., "home"?: ..., "clients"?: [...]}``,
        output with ``answer``, ``answers``, ``responses``, ``guidance``, ``rounds``,
        ``stop_reason`` and ``ledger``.
    """
    s = colm_settings(pool=pool, clients=clients, server=server, top_k=top_k, rounds=rounds,
                      selector=selector, embeddings=embeddings,
                      skip_guidance_when_agreed=skip_guidance_when_agreed, output=output,
                      home=home, prompts=prompts)
    g = StateGraph(ColmState, input_schema=ColmInput, output_schema=ColmOutput)
    g.add_node("select", _node("select", nodes.select, nodes.aselect, s))
    g.add_node("draft", _node("draft", nodes.draft, nodes.adraft, s))
    g.add_node("tally", _node("tally", nodes.tally, None, s))
    g.add_node("guide", _node("guide", nodes.guide, nodes.aguide, s))
    g.add_node("revise", _node("revise", nodes.revise, nodes.arevise, s))
    g.add_node("finish", _node("finish", nodes.finish, None, s))
    g.add_edge(START, "select")
    g.add_conditional_edges("select", partial(nodes.send_drafts, settings=s), ["draft"])
    g.add_edge("draft", "tally")
    g.add_conditional_edges("tally", partial(nodes.after_tally, settings=s), ["guide", "finish"])
    g.add_conditional_edges("guide", partial(nodes.send_revisions, settings=s), ["revise"])
    g.add_edge("revise", "tally")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer, store=store, name=name)
