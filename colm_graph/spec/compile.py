"""Spec + pool -> compiled LangGraph graph. The Python factories use this same path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from ..errors import ConfigError
from ..nodes import KINDS, NodeContext, RunContext
from ..pool import ModelPool
from ..prompts import PromptSet, load_prompts
from ..state import ProtocolInput, ProtocolOutput, ProtocolState
from .predicates import evaluate
from .schema import GraphSpec, RoleBinding
from .validate import FIELDS, bind_params

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.store.base import BaseStore

    from ..routing_scorers import Scorer
    from ..selection import Selector

__all__ = ["compile_spec", "bind_roles"]

_ENDPOINTS = {"START": START, "END": END}
BEGIN = "_begin"
"""The hidden first node every compiled graph starts with (see :func:`_begin`)."""


def _source(name: str) -> str:
    return BEGIN if name == "START" else name


def _begin(state: Any, config: RunnableConfig, *, params: Mapping[str, Any]) -> dict[str, Any]:
    """Clear the previous run's fields and fix this run's paid caps: a per-invocation
    ``configurable`` ``max_paid_usd`` / ``max_paid_tokens`` (the eval runner shares an eval's
    budget this way), else the graph's parameters."""
    from ..state import run_reset

    conf = config.get("configurable") or {}
    budget = {"usd": conf.get("max_paid_usd", params.get("max_paid_usd")),
              "tokens": conf.get("max_paid_tokens", params.get("max_paid_tokens"))}
    return {**run_reset(), "budget": budget}


def bind_roles(spec: GraphSpec, pool: ModelPool,
               overrides: Mapping[str, RoleBinding | str | list[str]] | None,
               params: Mapping[str, Any]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Resolve every role to pool model names; a role bound to no model is an error."""
    bindings = dict(spec.roles)
    for role, value in (overrides or {}).items():
        if role not in bindings:
            raise ConfigError(f"roles: unknown role {role!r} (graph {spec.name!r} has:"
                              f" {', '.join(bindings) or 'none'})")
        if isinstance(value, RoleBinding):
            bindings[role] = value
        elif isinstance(value, str) and value:
            bindings[role] = RoleBinding(model=value, count=bindings[role].count)
        elif isinstance(value, list | tuple) and value and all(
                isinstance(v, str) and v for v in value):
            bindings[role] = RoleBinding(models=list(value), count=bindings[role].count)
        else:
            raise ConfigError(f"roles.{role}: expected a model name, a non-empty list of model"
                              f" names or a RoleBinding, got {value!r}")
    roles: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for role, b in bindings.items():
        if b.model is not None:
            names = [b.model]
        elif b.models is not None:
            names = list(dict.fromkeys(b.models))
        elif b.tier == "paid" and role in ("server", "aggregator") and pool.names("paid"):
            names = [pool.server] if pool.entry(pool.server).tier == "paid" else \
                pool.names("paid")
        else:
            names = pool.names(None if b.tier == "any" else b.tier)
        for n in names:
            if n not in pool:
                raise ConfigError(f"roles.{role}: unknown model {n!r} (pool has:"
                                  f" {', '.join(pool.names())})")
        if not names:
            raise ConfigError(f"roles.{role}: bound to no model (tier {b.tier!r}: the pool"
                              f" {pool.source!r} has no {b.tier} model)")
        roles[role] = names
        count = b.count if b.count is not None else len(names)
        if isinstance(count, str):
            count = params[count[1:]]
        err = FIELDS["count"].check(count)  # a RoleBinding given here, or many models
        if err:
            raise ConfigError(f"roles.{role}.count: {err}")
        counts[role] = count
    return roles, counts


def _node_ctx(name: str, spec: GraphSpec, run: RunContext) -> NodeContext:
    node = spec.nodes[name]
    resolved = {k: run.resolve(v) for k, v in node.options.items()}
    stage, samples = run.resolve(node.stage), run.resolve(node.samples)  # checked values
    return NodeContext(name=name, kind=node.kind, run=run, role=node.role, stage=stage,
                       samples=samples, over=node.over or "role", prompt=node.prompt,
                       options=resolved)


def _recorded(name: str, fn: Callable[..., Any], ctx: NodeContext, with_config: bool
              ) -> Callable[..., Any]:
    def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
        update = fn(state, config, ctx=ctx) if with_config else fn(state, ctx=ctx)
        return _mark(update, name, config)
    return run


def _arecorded(name: str, fn: Callable[..., Any], ctx: NodeContext) -> Callable[..., Any]:
    async def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
        return _mark(await fn(state, config, ctx=ctx), name, config)
    return run


def _mark(update: dict[str, Any], name: str, config: RunnableConfig) -> dict[str, Any]:
    step = int((config.get("metadata") or {}).get("langgraph_step", 0))
    marked = {**update, "path": [{"node": name, "step": step}]}
    reasons = [r["degraded"] for r in update.get("ledger", []) if r.get("degraded")]
    if reasons:
        marked["degraded_reasons"] = list(update.get("degraded_reasons", [])) + reasons
    return marked


def _runnable(name: str, func: Callable[..., Any], afunc: Callable[..., Any] | None) -> Any:
    """A node with sync and async forms. LangGraph's own node wrapper (what ``add_node`` uses
    for plain functions: no extra traced run per node) when this LangGraph has it."""
    try:
        from langgraph._internal._runnable import RunnableCallable
    except ImportError:  # a LangGraph without it: the public equivalent
        return RunnableLambda(func, afunc=afunc, name=name)
    return RunnableCallable(func, afunc, name=name, trace=False)


def _router(spec: GraphSpec, source: str, ctxs: Mapping[str, NodeContext],
            run: RunContext) -> tuple[Callable[..., Any], list[str]]:
    edge = next(e for e in spec.edges if e.source == source)
    branches = [(b.when, b.to) for b in edge.branches or []]
    default = edge.to if edge.to is not None else edge.default
    assert default is not None

    def route(state: Any) -> Any:
        target = default
        for cond, to in branches:
            if evaluate(cond, state, run):
                target = to
                break
        if target == "END":
            return END
        kind = KINDS[spec.nodes[target].kind]
        if kind.fan_out is not None:
            return [Send(target, t) for t in kind.fan_out(state, ctxs[target])] or \
                _empty_fan_out(target)
        return target

    targets = sorted({_ENDPOINTS.get(t, t) for t in edge.targets()})
    return route, targets


def _empty_fan_out(target: str) -> Any:
    raise ConfigError(f"node {target!r}: no participants to fan out to")


def compile_spec(
    spec: GraphSpec,
    *,
    pool: ModelPool | None = None,
    params: Mapping[str, Any] | None = None,
    roles: Mapping[str, RoleBinding | str | list[str]] | None = None,
    prompts: str | PromptSet | None = None,
    selector: Selector | str | None = None,
    embeddings: Any = None,
    scorer: Scorer | str | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    store: BaseStore | None = None,
    name: str | None = None,
) -> CompiledStateGraph:
    """Build a validated spec into a compiled graph bound to ``pool``."""
    from ..routing_scorers import make_scorer
    from ..selection import make_selector

    pool = pool if pool is not None else ModelPool.default()
    if not isinstance(pool, ModelPool):
        raise ConfigError(f"pool: expected a ModelPool, got {type(pool).__name__}")
    values = bind_params(spec, params)
    role_models, counts = bind_roles(spec, pool, roles, values)
    kinds = {n.kind for n in spec.nodes.values()}
    run = RunContext(
        pool=pool, roles=role_models, counts=counts, params=values,
        prompts=prompts if isinstance(prompts, PromptSet) else load_prompts(prompts),
        spec_name=spec.name,
        selector=make_selector(selector or values.get("selector", "lexical"),
                               embeddings=embeddings) if "select" in kinds else None,
        scorer=make_scorer(scorer or values.get("scorer", "heuristic"),
                           embeddings=embeddings) if "score" in kinds else None,
    )
    ctxs = {n: _node_ctx(n, spec, run) for n in spec.nodes}
    graph = StateGraph(ProtocolState, input_schema=ProtocolInput, output_schema=ProtocolOutput)
    for n, ctx in ctxs.items():
        kind = KINDS[ctx.kind]
        func = _recorded(n, kind.func, ctx, kind.calls_model)
        afunc = _arecorded(n, kind.afunc, ctx) if kind.afunc else None
        graph.add_node(n, _runnable(n, func, afunc))
    # A first step that clears the previous run's fields, so that a thread reused under a
    # checkpointer (LangGraph Server, Studio, SQLite) starts each new run afresh.
    graph.add_node(BEGIN, _runnable(BEGIN, partial(_begin, params=values), None))
    graph.add_edge(START, BEGIN)
    for edge in spec.edges:
        fan_target = edge.to is not None and edge.to in spec.nodes and \
            KINDS[spec.nodes[edge.to].kind].fan_out is not None
        if edge.to is not None and not fan_target:
            graph.add_edge(_source(edge.source), _ENDPOINTS.get(edge.to, edge.to))
        else:
            route, targets = _router(spec, edge.source, ctxs, run)
            graph.add_conditional_edges(_source(edge.source), route, targets)
    return graph.compile(checkpointer=checkpointer, store=store, name=name or spec.name)


