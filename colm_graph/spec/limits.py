"""Run limits: every compiled graph has a STEP limit and a PAID-CALL limit, derived from its
spec, its bound parameters and its pool when it is built, and checked before each node runs.

* ``R``, the rounds bound: the largest argument of the spec's ``rounds_at_least`` /
  ``rounds_left`` predicates with the run's parameters (at most ``MAX_ROUNDS``); a spec
  with loops but no such predicate (only a spec built in Python skips the loader's check,
  :func:`colm_graph.spec.validate.unbounded_loop`) gets ``MAX_ROUNDS``.
* Passes of a node: 1 for a node on no loop (a run is one walk through the graph: a node on
  no loop is visited at most once); ``R + 2`` for a node on a loop (a loop that advances
  ``rounds`` passes each of its nodes at most ``R + 1`` times; one more is the margin).
* Step limit: the sum of the passes of every node (steps are the entries of ``path``; a
  fan-out step counts once).
* Paid calls of one pass: a fan-out node: its samples times its participants on paid models
  (``over: selected``: times the pool's paid models, any of which the caller may choose);
  a ``guide``, ``aggregate``, ``plan``, ``verify`` or ``score`` node whose role's model is
  paid, and a ``select`` node whose asking role's model is paid: 1; other kinds: 0.
  Paid-call limit: the sum over nodes of passes times paid calls of one pass. Calls the
  local tier makes in a paid model's place (budget spent, paid model failed) are not paid
  calls.

Before a node runs (before a fan-out node's tasks are sent) the run is stopped with
:class:`~colm_graph.errors.RunLimitError` when ``path`` already holds the step limit, or when
the paid calls in the ledger plus those the node may make would pass the paid-call limit.
The message names the limit, the graph and what was spent so far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from colm_graph.core.ledger import ledger_totals
from colm_graph.core.settings import MAX_ROUNDS
from colm_graph.errors import RunLimitError
from colm_graph.spec.schema import GraphSpec
from colm_graph.spec.validate import ROUNDS_PREDICATES, loops

__all__ = ["RunLimits", "derive_limits", "check_limits", "rounds_bound"]

_SINGLE_CALL = ("guide", "aggregate", "plan", "verify", "score")


@dataclass(frozen=True)
class RunLimits:
    """The limits of one compiled graph."""

    graph: str
    steps: int
    paid_calls: int
    rounds: int
    """``R``: the rounds bound the limits assume for each loop (0: the spec has none)."""
    paid_per_pass: Mapping[str, int] = field(default_factory=dict)
    """Node -> the paid calls one pass of it may make."""
    looping: frozenset[str] = frozenset()
    """The nodes on a loop."""


def _round_args(cond: Any, params: Mapping[str, Any]) -> list[int]:
    if not isinstance(cond, dict) or len(cond) != 1:
        return []
    (name, arg), = cond.items()
    if name == "not":
        return _round_args(arg, params)
    if name in ("all", "any"):
        items = arg if isinstance(arg, list) else []
        return [v for c in items for v in _round_args(c, params)]
    if name in ROUNDS_PREDICATES:
        if isinstance(arg, str) and arg.startswith("$"):
            arg = params.get(arg[1:])
        if isinstance(arg, int) and not isinstance(arg, bool):
            return [min(max(arg, 0), MAX_ROUNDS)]
        return [MAX_ROUNDS]
    return []


def rounds_bound(spec: GraphSpec, params: Mapping[str, Any]) -> int:
    """``R``: the largest rounds-predicate argument of ``spec`` under ``params``."""
    found = [v for e in spec.edges for b in e.branches or [] for v in _round_args(b.when, params)]
    return max(found) if found else MAX_ROUNDS


def _paid(run: Any, model: str) -> bool:
    return bool(run.pool.entry(model).tier == "paid")


def _paid_per_pass(name: str, spec: GraphSpec, ctx: Any, fan_out: bool) -> int:
    run, node = ctx.run, spec.nodes[name]
    if fan_out:
        if ctx.over == "selected":
            paid = sum(1 for m in run.pool.names() if _paid(run, m))
        else:
            paid = sum(1 for _, m in run.participants(ctx.role) if _paid(run, m))
        return int(ctx.samples) * paid
    if node.kind == "select":
        asks = ctx.option("asks", "server")
        return int(asks in run.roles and _paid(run, run.model(asks)))
    if node.kind in _SINGLE_CALL and ctx.role is not None and ctx.role in run.roles:
        return int(_paid(run, run.model(ctx.role)))
    return 0


def derive_limits(spec: GraphSpec, ctxs: Mapping[str, Any], fan_out: Mapping[str, bool]
                  ) -> RunLimits:
    """The limits of ``spec`` built with the node contexts ``ctxs`` (parameters bound)."""
    run = next(iter(ctxs.values())).run
    looping: set[str] = set().union(*loops(spec))
    r = rounds_bound(spec, run.params) if looping else 0
    passes = {n: (r + 2 if n in looping else 1) for n in spec.nodes}
    per_pass = {n: _paid_per_pass(n, spec, ctxs[n], fan_out[n]) for n in spec.nodes}
    return RunLimits(graph=spec.name, steps=sum(passes.values()),
                     paid_calls=sum(passes[n] * per_pass[n] for n in spec.nodes),
                     rounds=r, paid_per_pass=per_pass, looping=frozenset(looping))


def _basis(limits: RunLimits) -> str:
    if not limits.looping:
        return "derived from the spec: no loops, each node at most once"
    return (f"derived from the spec: each loop at most {limits.rounds + 2} passes, for rounds"
            f" up to {limits.rounds}")


def _spent(state: Mapping[str, Any]) -> tuple[float, int, int]:
    totals = ledger_totals(state.get("ledger") or [])
    return float(totals["paid_usd"]), int(totals["paid_calls"]), int(totals["calls"])


def check_limits(limits: RunLimits, state: Mapping[str, Any], node: str,
                 paid_calls: int | None = None) -> None:
    """Raise :class:`RunLimitError` when running ``node`` now (which may make ``paid_calls``
    paid calls; default: its bound for one pass) would pass a limit of the run."""
    steps = len(state.get("path") or [])
    usd, paid, calls = _spent(state)
    spend = f"spent so far: ${usd:.6f} in {paid} paid call(s) ({calls} call(s) in all)"
    if steps >= limits.steps:
        raise RunLimitError(
            f"graph {limits.graph!r}: stopped before node {node!r} at its step limit of"
            f" {limits.steps} steps ({_basis(limits)}); {spend}",
            limit="steps", value=limits.steps, graph=limits.graph, usd=usd, paid_calls=paid)
    planned = limits.paid_per_pass.get(node, 0) if paid_calls is None else paid_calls
    if planned and paid + planned > limits.paid_calls:
        raise RunLimitError(
            f"graph {limits.graph!r}: stopped before node {node!r} at its paid-call limit of"
            f" {limits.paid_calls} ({_basis(limits)}; the node would make {planned} more);"
            f" {spend}",
            limit="paid_calls", value=limits.paid_calls, graph=limits.graph, usd=usd,
            paid_calls=paid)


def paid_tasks(run: Any, tasks: Sequence[Mapping[str, Any]]) -> int:
    """How many of a fan-out's tasks call a paid model."""
    return sum(1 for t in tasks if _paid(run, t["model"]))
