"""Spec + pool -> compiled LangGraph graph. The Python factories use this same path.

Every node is wrapped here. Before a node runs (before a fan-out node's tasks are sent) the
run's step and paid-call limits are checked (:mod:`colm_graph.spec.limits`). A fan-out task
whose model call fails after its retries (:class:`~colm_graph.errors.ModelCallError`)
returns a ``failures`` entry instead of an answer: its participant is dropped from the rest
of the run (later fan-outs do not ask it, the server, the aggregator and the peers no longer
see its answers) and the run is degraded. The step needs ``min_participants`` answers (each
sample counts as one; a step with fewer tasks needs all of them): the task whose failure
leaves fewer raises a ``ModelCallError`` naming its model, its endpoint and the fault, so
the step fails as a whole (under a checkpointer, a resumed run asks again only the tasks
that failed); so does a later fan-out left with fewer participants than that. Non-fan-out
nodes fail the run on a model error as before.

Edges that leave a fan-out node and branch, fan out again or end the run start from a
hidden join node (``_after_<node>``) that runs once after all the node's tasks, so they see
every task's answer (and failure) and are decided once."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from colm_graph.core.prompts import PromptSet, load_prompts
from colm_graph.core.state import (
    RUN_RESET,
    Failure,
    ProtocolInput,
    ProtocolOutput,
    ProtocolState,
)
from colm_graph.errors import ConfigError, ModelCallError, RunLimitError
from colm_graph.nodes import KINDS, NodeContext, RunContext
from colm_graph.nodes.fanout import all_participants
from colm_graph.pool import ModelPool
from colm_graph.spec.fused import apply_update, gathered, merge_updates, pure, wrote
from colm_graph.spec.limits import RunLimits, check_limits, derive_limits, paid_tasks
from colm_graph.spec.predicates import evaluate
from colm_graph.spec.reply import reply_nodes
from colm_graph.spec.schema import GraphSpec, RoleBinding
from colm_graph.spec.validate import FIELDS, bind_params

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.store.base import BaseStore

    from colm_graph.routing.scorers import Scorer
    from colm_graph.routing.selectors import Selector

__all__ = ["compile_spec", "bind_roles", "reply_nodes_of", "run_limits"]

_ENDPOINTS = {"START": START, "END": END}
BEGIN = "_begin"
"""The hidden first node every compiled graph starts with (see :func:`_begin`)."""
AFTER = "_after_"
"""Prefix of the hidden join node after a fan-out node whose edge branches, fans out again
or ends the run."""


def _source(name: str) -> str:
    return BEGIN if name == "START" else name


def _begin(state: Any, config: RunnableConfig, *, params: Mapping[str, Any]) -> dict[str, Any]:
    """Clear the previous run's fields and fix this run's paid caps (see
    :func:`colm_graph.run.budget.run_caps`)."""
    from colm_graph.core.state import run_reset
    from colm_graph.run.budget import run_caps

    budget = run_caps(config.get("configurable") or {}, params)
    return {**run_reset(), "budget": budget.as_dict()}


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


_TALLIES_KEPT = 4096
"""Fan-out steps whose failures a compiled graph remembers (the oldest are forgotten)."""


@dataclass(frozen=True, eq=False)
class _Guard:
    """What is checked around the nodes of one compiled graph: the run's limits, and that
    fan-out steps keep ``min_participants`` answers (each sample counts as one; a step with
    fewer tasks needs them all)."""

    limits: RunLimits
    min_participants: int
    _failed: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def need(self, tasks: int) -> int:
        return min(self.min_participants, tasks)

    def before(self, state: Any, node: str, paid_calls: int | None = None) -> None:
        """Before ``node`` runs: the last fan-out step kept enough answers, and the run's
        limits hold."""
        self.settled(state)
        check_limits(self.limits, state, node, paid_calls)

    def settled(self, state: Any) -> None:
        """After a fan-out step where calls failed, enough of its tasks answered. (The task
        whose failure leaves too few raises already, see :meth:`failure`; this holds when
        that count was lost, as in a run resumed in another process.)"""
        path, failures = state.get("path") or [], state.get("failures") or []
        if not path or not failures:
            return
        last = path[-1]
        mine = [f for f in failures if f["node"] == last["node"] and f["step"] == last["step"]]
        if not mine:
            return
        first = mine[0]
        answered = sum(1 for r in state.get("responses") or []
                       if r["node"] == first["node"] and r["round"] == first["round"]
                       and r.get("stage", 0) == first["stage"])
        asked = answered + len(mine)
        if answered < self.need(asked):
            raise _too_few(first, f"{answered} of {asked} participants answered",
                           self.need(asked), self.min_participants)

    def fan_out(self, state: Any, target: str, ctx: NodeContext, tasks: list[Any]) -> None:
        """Before a fan-out's tasks are sent: the run's limits hold for the paid calls they
        make, and enough participants are left. Names the step in its tasks."""
        self.before(state, target, paid_tasks(ctx.run, tasks))
        everyone = all_participants(state, ctx)
        gone = {pid for pid, _ in everyone} - {t["client"] for t in tasks}
        need = self.need(len(everyone) * max(int(ctx.samples), 1))
        if gone and len(tasks) < need:
            last = [f for f in state.get("failures") or [] if f["client"] in gone][-1]
            raise _too_few({**last, "node": target},
                           f"{len(tasks)} of {len(everyone) * ctx.samples} participants left",
                           need, self.min_participants)
        step = uuid.uuid4().hex
        for task in tasks:
            task["fan_id"], task["fan_size"] = step, len(tasks)

    def failure(self, state: Any) -> tuple[int, int]:
        """For a fan-out task whose call failed: its step's tasks, and how many of them
        have failed so far (this one included)."""
        size = int(state.get("fan_size") or 1)
        step = state.get("fan_id")
        if not step:
            return size, 1
        with self._lock:
            count = self._failed.pop(step, 0) + 1
            self._failed[step] = count
            while len(self._failed) > _TALLIES_KEPT:
                self._failed.popitem(last=False)
        return size, count


def _too_few(failure: Mapping[str, Any], what: str, need: int, minimum: int
             ) -> ModelCallError:
    return ModelCallError(failure["model"], failure["endpoint"],
                          f"{failure['reason']}; node {failure['node']!r}: {what}, fewer than"
                          f" the {need} needed (min_participants {minimum})")


def _failed(name: str, state: Any, exc: ModelCallError, config: RunnableConfig,
            guard: _Guard) -> dict[str, Any]:
    """A fan-out task's update when its call failed: the participant is dropped. When the
    step's failures so far leave fewer answers than it needs, the task raises instead, so
    that the step fails (and a run under a checkpointer resumes by asking again only the
    tasks that failed)."""
    step = int((config.get("metadata") or {}).get("langgraph_step", 0))
    failure = Failure(node=name, client=state["client"],
                      model=str(getattr(exc, "model", None) or state["model"]),
                      endpoint=str(getattr(exc, "endpoint", None) or "unknown"),
                      reason=str(getattr(exc, "fault", None) or exc), round=state["round"],
                      stage=state.get("stage", 0), sample=state.get("sample", 0), step=step)
    size, failed = guard.failure(state)
    if size - failed < guard.need(size):
        raise _too_few(failure, f"{size - failed} of {size} participants left",
                       guard.need(size), guard.min_participants) from exc
    return {"failures": [failure],
            "degraded_reasons": [f"participant {state['client']} dropped at node {name!r}:"
                                 f" {exc}"]}


@contextlib.contextmanager
def _step_errors(name: str, state: Any, config: RunnableConfig, guard: _Guard,
                 fan_out: bool) -> Iterator[list[dict[str, Any]]]:
    """Around a node's step: the run's limits are checked first (once per step, not per
    fan-out task); a fan-out task's model failure becomes the update that drops its
    participant (put in the yielded list), any other failure propagates."""
    if not fan_out:
        guard.before(state, name)
    failed: list[dict[str, Any]] = []
    try:
        yield failed
    except ModelCallError as exc:
        if not fan_out:
            raise
        failed.append(_failed(name, state, exc, config, guard))


def _recorded(name: str, fn: Callable[..., Any], ctx: NodeContext, with_config: bool,
              guard: _Guard, fan_out: bool) -> Callable[..., Any]:
    def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
        with _step_errors(name, state, config, guard, fan_out) as failed:
            return _mark(fn(state, config, ctx=ctx) if with_config else fn(state, ctx=ctx),
                         name, config)
        return _mark(failed[0], name, config)
    return run


def _arecorded(name: str, fn: Callable[..., Any], ctx: NodeContext, guard: _Guard,
               fan_out: bool) -> Callable[..., Any]:
    async def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
        with _step_errors(name, state, config, guard, fan_out) as failed:
            return _mark(await fn(state, config, ctx=ctx), name, config)
        return _mark(failed[0], name, config)
    return run


def _join(state: Any, *, guard: _Guard) -> dict[str, Any]:
    """The hidden node after a fan-out node: checks the step kept enough participants."""
    guard.settled(state)
    return {}


def _mark(update: dict[str, Any], name: str, config: RunnableConfig) -> dict[str, Any]:
    step = int((config.get("metadata") or {}).get("langgraph_step", 0))
    marked = {**update, "path": [{"node": name, "step": step}]}
    reasons = [r["degraded"] for r in update.get("ledger", []) if r.get("degraded")]
    if reasons:
        marked["degraded_reasons"] = list(update.get("degraded_reasons", [])) + reasons
    return marked


def _both(func: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A quick sync step and its async form (called as it is: no worker thread)."""
    async def afunc(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)
    return func, afunc


def _runnable(name: str, func: Callable[..., Any], afunc: Callable[..., Any] | None) -> Any:
    """A node with sync and async forms. LangGraph's own node wrapper (what ``add_node`` uses
    for plain functions: no extra traced run per node) when this LangGraph has it."""
    try:
        from langgraph._internal._runnable import RunnableCallable
    except ImportError:  # a LangGraph without it: the public equivalent
        return RunnableLambda(func, afunc=afunc, name=name)
    return RunnableCallable(func, afunc, name=name, trace=False)


class _Flow:
    """Where the run goes after each step: the spec's edges decided on the state, a
    fan-out target dispatched as ``Send`` tasks (or by name when it gathers), and the
    bookkeeping nodes that run inside a step (:mod:`colm_graph.spec.fused`)."""

    def __init__(self, spec: GraphSpec, ctxs: Mapping[str, NodeContext], run: RunContext,
                 guard: _Guard, sends: Mapping[str, bool], inline: Mapping[str, bool]
                 ) -> None:
        self.spec, self.ctxs, self.run, self.guard = spec, ctxs, run, guard
        self.sends, self.inline = sends, inline
        self.edges = {e.source: e for e in spec.edges}
        self.steps: dict[str, Callable[..., Any]] = {}
        """The sync step of every inlinable node (set by :func:`compile_spec`)."""

    def decide(self, source: str, state: Any) -> str:
        """The spec node (or ``"END"``) the edge out of ``source`` goes to."""
        edge = self.edges[source]
        for branch in edge.branches or []:
            if evaluate(branch.when, state, self.run):
                return branch.to
        target = edge.to if edge.to is not None else edge.default
        assert target is not None
        return target

    def dispatch(self, target: str, state: Any) -> Any:
        """What a LangGraph edge returns for ``target``: END, ``Send`` tasks, or the node."""
        if target == "END":
            return END
        if self.sends[target]:
            return [Send(target, t) for t in self.tasks(target, state)]
        return target

    def tasks(self, target: str, state: Any) -> list[Any]:
        """A fan-out's tasks, checked against the run's limits (and named by step)."""
        ctx = self.ctxs[target]
        fan_out = KINDS[ctx.kind].fan_out
        assert fan_out is not None
        tasks = fan_out(state, ctx)
        if not tasks:
            _empty_fan_out(target)
        self.guard.fan_out(state, target, ctx, tasks)
        return tasks

    def closure(self, source: str) -> list[str]:
        """The nodes that may run inline after ``source`` (in the step it starts)."""
        seen: list[str] = []
        todo = [source]
        while todo:
            for target in self.edges[todo.pop()].targets():
                if target != "END" and self.inline[target] and target not in seen:
                    seen.append(target)
                    todo.append(target)
        return seen

    def targets(self, sources: list[str]) -> list[str]:
        """LangGraph targets of the edges out of ``sources``."""
        return sorted({_ENDPOINTS.get(t, t) for s in sources for t in self.edges[s].targets()})

    def follow(self, name: str, state: Any, update: dict[str, Any], config: RunnableConfig
               ) -> dict[str, Any]:
        """``update`` of node ``name``, then of each bookkeeping node its edges lead to."""
        view, current = apply_update(state, update), name
        for _ in range(len(self.spec.nodes)):  # bookkeeping loops end with the next step
            target = self.decide(current, view)
            if target == "END" or not self.inline[target]:
                break
            try:
                more = self.steps[target](view, config)
            except RunLimitError:  # it stops the run in a step of its own: keep this one
                break
            more["path"] = [{**p, "wrote": wrote(more)} for p in more.get("path") or []]
            update, view = merge_updates(update, more), apply_update(view, more)
            current = target
        return update

    def chained(self, name: str, func: Callable[..., Any], afunc: Callable[..., Any] | None
                ) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """Node ``name``'s step with the bookkeeping after it."""
        def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
            return self.follow(name, state, func(state, config), config)

        async def arun(state: Any, config: RunnableConfig) -> dict[str, Any]:
            update = await afunc(state, config) if afunc is not None else func(state, config)
            return self.follow(name, state, update, config)
        return run, arun

    def route_after(self, name: str) -> tuple[Callable[..., Any], list[str]]:
        """The edge out of the step node ``name`` starts: on from the last node it ran."""
        chain = [name, *self.closure(name)]
        members = frozenset(chain)

        def route(state: Any) -> Any:
            path = state.get("path") or []
            last = path[-1]["node"] if path and path[-1]["node"] in members else name
            return self.dispatch(self.decide(last, state), state)
        return route, self.targets(chain)


def _one_task(ctx: NodeContext) -> bool:
    """A fan-out node that always sends exactly one task (one participant, one sample)."""
    return (ctx.over == "role" and ctx.role is not None
            and ctx.run.counts.get(ctx.role, len(ctx.run.roles.get(ctx.role, ()))) == 1
            and int(ctx.samples) <= 1)


def _fresh(state: Mapping[str, Any]) -> bool:
    """No field of an earlier run is in ``state`` (a new thread, or no checkpointer)."""
    return "budget" not in state and all(
        state.get(key) in (None, value) for key, value in RUN_RESET.items())


def _start(flow: _Flow) -> tuple[Callable[..., Any], list[str]]:
    """The edge from START: to the hidden :data:`BEGIN` step when the state holds an
    earlier run's fields (a thread reused under a checkpointer), else straight where the
    spec's START edge goes: a fresh run has nothing to clear, and its paid caps are read
    from its config where they are needed (:func:`colm_graph.run.budget.caps`), so it
    saves a super-step."""
    def route(state: Any) -> Any:
        return flow.dispatch(flow.decide("START", state), state) if _fresh(state) else BEGIN
    return route, [BEGIN, *flow.targets(["START"])]


def _empty_fan_out(target: str) -> Any:
    raise ConfigError(f"node {target!r}: no participants to fan out to")


def run_limits(spec: GraphSpec, *, pool: ModelPool | None = None,
               params: Mapping[str, Any] | None = None,
               roles: Mapping[str, RoleBinding | str | list[str]] | None = None) -> RunLimits:
    """The step and paid-call limits a run of ``spec`` built with these arguments has
    (see :mod:`colm_graph.spec.limits`)."""
    ctxs, fans = _contexts(spec, pool, params, roles)
    return derive_limits(spec, ctxs, fans)


def reply_nodes_of(spec: GraphSpec, *, pool: ModelPool | None = None,
                   params: Mapping[str, Any] | None = None,
                   roles: Mapping[str, RoleBinding | str | list[str]] | None = None
                   ) -> frozenset[str]:
    """The nodes of ``spec`` built with these arguments whose one model call is the run's
    reply (see :mod:`colm_graph.spec.reply`)."""
    ctxs, fans = _contexts(spec, pool, params, roles)
    return reply_nodes(spec, ctxs, fans)


def _contexts(spec: GraphSpec, pool: ModelPool | None, params: Mapping[str, Any] | None,
              roles: Mapping[str, RoleBinding | str | list[str]] | None
              ) -> tuple[dict[str, NodeContext], dict[str, bool]]:
    pool = pool if pool is not None else ModelPool.default()
    values = bind_params(spec, params)
    role_models, counts = bind_roles(spec, pool, roles, values)
    run = RunContext(pool=pool, roles=role_models, counts=counts, params=values,
                     prompts=load_prompts(None), spec_name=spec.name)
    ctxs = {n: _node_ctx(n, spec, run) for n in spec.nodes}
    return ctxs, {n: KINDS[c.kind].fan_out is not None for n, c in ctxs.items()}


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
    from colm_graph.routing.scorers import make_scorer
    from colm_graph.routing.selectors import make_selector

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
    fans = {n: KINDS[ctx.kind].fan_out is not None for n, ctx in ctxs.items()}
    guard = _Guard(derive_limits(spec, ctxs, fans), int(values.get("min_participants", 1)))
    gather = values.get("fan_out", "send") == "gather"
    # a fan-out of one task gathers whatever the setting: its durability is the same
    sends = {n: fans[n] and not gather and not _one_task(ctx) for n, ctx in ctxs.items()}
    flow = _Flow(spec, ctxs, run, guard, sends,
                 {n: pure(ctx) and not fans[n] for n, ctx in ctxs.items()})
    graph = StateGraph(ProtocolState, input_schema=ProtocolInput, output_schema=ProtocolOutput)
    for n, ctx in ctxs.items():
        kind = KINDS[ctx.kind]
        func = _recorded(n, kind.func, ctx, kind.calls_model, guard, fans[n])
        afunc = _arecorded(n, kind.afunc, ctx, guard, fans[n]) if kind.afunc else None
        if flow.inline[n]:
            flow.steps[n] = func
        if fans[n] and not sends[n]:  # one task making every participant's call
            func, afunc = gathered(partial(flow.tasks, n), func, afunc)
        if not sends[n]:
            func, afunc = flow.chained(n, func, afunc)
        graph.add_node(n, _runnable(n, func, afunc))
    # A first step that clears the previous run's fields, so that a thread reused under a
    # checkpointer (LangGraph Server, Studio, SQLite) starts each new run afresh.
    graph.add_node(BEGIN, _runnable(BEGIN, *_both(partial(_begin, params=values))))
    graph.add_conditional_edges(START, *_start(flow))
    first = next(e for e in spec.edges if e.source == "START")
    if first.to is not None and first.to != "END" and not sends[first.to]:
        graph.add_edge(BEGIN, first.to)
    else:
        graph.add_conditional_edges(
            BEGIN, lambda state: flow.dispatch(flow.decide("START", state), state),
            flow.targets(["START"]))
    for edge in spec.edges:
        source = edge.source
        if source == "START":
            continue
        if sends[source]:
            if edge.to is not None and not (edge.to in sends and sends[edge.to]) \
                    and edge.to != "END":
                graph.add_edge(source, edge.to)  # once, after all the fan-out's tasks
                continue
            # decided once, after all the fan-out's tasks (a branch of the fan-out node
            # itself would run once per task, on that task's update only)
            join = AFTER + source
            graph.add_node(join, _runnable(join, *_both(partial(_join, guard=guard))))
            graph.add_edge(source, join)
            graph.add_conditional_edges(
                join, partial(lambda src, state: flow.dispatch(flow.decide(src, state), state),
                              source), flow.targets([source]))
            continue
        if edge.to is not None and not flow.closure(source) \
                and (edge.to == "END" or not sends[edge.to]):
            graph.add_edge(source, _ENDPOINTS.get(edge.to, edge.to))
        else:
            graph.add_conditional_edges(source, *flow.route_after(source))
    return graph.compile(checkpointer=checkpointer, store=store, name=name or spec.name)


