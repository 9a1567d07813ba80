"""Named conditions for conditional edges: one registry, each entry a function of the state
and the run's context plus one argument. Specs name them; nothing is evaluated as code."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from colm_graph.run.budget import remaining
from colm_graph.run.constraints import deadline_of, may_hold_private, private_of
from colm_graph.run.links import still_down

if TYPE_CHECKING:
    from colm_graph.nodes.context import RunContext

__all__ = ["PREDICATES", "Predicate", "evaluate", "check_condition"]

State = Mapping[str, Any]


@dataclass(frozen=True)
class Predicate:
    """``test(state, run, arg) -> bool``; ``arg`` is ``None``, a number or a role name."""

    test: Callable[[State, RunContext, Any], bool]
    arg: str  # "none" | "number" | "int" | "role_or_none" | "roles" | "bool"
    doc: str


def _budget_left_above(state: State, run: RunContext, x: float) -> bool:
    left = remaining(state, run.params)
    return left.usd is None or left.usd > float(x)


def _tokens_left_above(state: State, run: RunContext, x: float) -> bool:
    left = remaining(state, run.params)
    return left.tokens is None or left.tokens > float(x)


def _paid_reachable(state: State, run: RunContext, role: str | None) -> bool:
    roles = [role] if role else list(run.roles)
    names = {m for r in roles for m in run.roles.get(r, [])}
    down = set(still_down(state.get("ledger", [])))
    return all(m not in down and run.reachable(m)
               for m in names if run.pool.entry(m).tier == "paid")


def _role_models(run: RunContext, roles: str | list[str] | None) -> list[list[str]]:
    picked = list(run.roles) if roles is None else [roles] if isinstance(roles, str) else roles
    return [run.roles.get(r, []) for r in picked]


def _time_left(state: State, run: RunContext) -> float | None:
    """Seconds to the run's deadline (``None``: no deadline)."""
    at = deadline_of(state, run.params)
    return None if at is None else at - time.time()


def _time_left_above(state: State, run: RunContext, x: float) -> bool:
    left = _time_left(state, run)
    return left is None or left > float(x)


def step_seconds(run: RunContext, roles: str | list[str]) -> float:
    """Expected seconds of steps by ``roles`` one after another (each step as slow as its
    slowest model; a model with no estimate yet counts 0)."""
    return sum(max([run.pool.latency.expected(m) or 0.0 for m in models] or [0.0])
               for models in _role_models(run, roles))


def _fits_deadline(state: State, run: RunContext, roles: str | list[str]) -> bool:
    left = _time_left(state, run)
    return left is None or step_seconds(run, roles) < left


def _residency_ok(state: State, run: RunContext, role: str | None) -> bool:
    if not private_of(state, run.params):
        return True
    return all(may_hold_private(run.pool.entry(m))
               for models in _role_models(run, role) for m in models)


def _score(state: State) -> float:
    return float(state.get("score", 0.0))


PREDICATES: dict[str, Predicate] = {
    "agreed": Predicate(lambda s, r, a: bool(s.get("unanimous")), "none",
                        "the latest answers are all present and equal"),
    "agreement_below": Predicate(lambda s, r, a: s.get("agreement", 0.0) < float(a), "number",
                                 "share of the latest answers that agree is below ARG"),
    "agreement_at_least": Predicate(lambda s, r, a: s.get("agreement", 0.0) >= float(a),
                                    "number", "share of the latest answers that agree >= ARG"),
    "rounds_left": Predicate(lambda s, r, a: s.get("rounds", 0) < int(a), "int",
                             "fewer than ARG rounds have run"),
    "rounds_at_least": Predicate(lambda s, r, a: s.get("rounds", 0) >= int(a), "int",
                                 "at least ARG rounds have run"),
    "budget_left_usd_above": Predicate(_budget_left_above, "number",
                                       "paid USD left under max_paid_usd is above ARG"),
    "paid_tokens_left_above": Predicate(_tokens_left_above, "number",
                                        "paid tokens left under max_paid_tokens above ARG"),
    "paid_reachable": Predicate(_paid_reachable, "role_or_none",
                                "every paid model (of role ARG, else of the graph) answers"),
    "score_above": Predicate(lambda s, r, a: _score(s) > float(a), "number",
                             "the last router/verifier score is above ARG"),
    "score_at_least": Predicate(lambda s, r, a: _score(s) >= float(a), "number",
                                "the last router/verifier score is at least ARG"),
    "score_below": Predicate(lambda s, r, a: _score(s) < float(a), "number",
                             "the last router/verifier score is below ARG"),
    "flag": Predicate(lambda s, r, a: bool(a), "bool", "ARG (a parameter) is true"),
    "time_left_above": Predicate(_time_left_above, "number",
                                 "more than ARG seconds are left before the run's deadline"
                                 " (no deadline: true)"),
    "fits_deadline": Predicate(_fits_deadline, "roles",
                               "steps by role(s) ARG, one after another, are expected to"
                               " finish before the deadline (no deadline: true)"),
    "residency_ok": Predicate(_residency_ok, "role_or_none",
                              "every model (of role ARG, else of the graph) may receive this"
                              " run's data (a private run: only residency local)"),
}

COMBINATORS = ("not", "all", "any")


def check_condition(cond: Any, params: Mapping[str, Any],
                    roles: Collection[str] | None = None) -> str | None:
    """Why ``cond`` is malformed (``None`` when it is fine). ``$name`` args must be params;
    a role argument must be one of ``roles`` (when given)."""
    if isinstance(cond, str):
        pred = PREDICATES.get(cond)
        if pred is None:
            return f"unknown predicate {cond!r} (expected one of: {', '.join(PREDICATES)})"
        if pred.arg not in ("none", "role_or_none"):
            return f"predicate {cond!r} needs an argument: write {{{cond}: VALUE}}"
        return None
    if not isinstance(cond, dict) or len(cond) != 1:
        return "a condition is a predicate name or a mapping with exactly one key"
    (name, arg), = cond.items()
    if name == "not":
        return check_condition(arg, params, roles)
    if name in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            return f"'{name}' needs a non-empty list of conditions"
        for sub in arg:
            err = check_condition(sub, params, roles)
            if err:
                return err
        return None
    pred = PREDICATES.get(name)
    if pred is None:
        return f"unknown predicate {name!r} (expected one of: {', '.join(PREDICATES)})"
    if isinstance(arg, str) and arg.startswith("$"):
        if arg[1:] not in params:
            return f"unknown parameter {arg!r} in predicate {name!r}"
        arg = params[arg[1:]]
    if pred.arg in ("role_or_none", "roles") and roles is not None:
        named = [arg] if isinstance(arg, str) else arg if pred.arg == "roles" and \
            isinstance(arg, list) else []
        for role in named:
            if isinstance(role, str) and role not in roles:
                return (f"predicate {name!r}: unknown role {role!r} (roles:"
                        f" {', '.join(roles) or 'none'})")
    return _check_arg(name, pred, arg)


def _check_arg(name: str, pred: Predicate, arg: Any) -> str | None:
    kind = pred.arg
    if kind == "none":
        return f"predicate {name!r} takes no argument"
    if kind == "number" and (isinstance(arg, bool) or not isinstance(arg, int | float)):
        return f"predicate {name!r} needs a number, got {arg!r}"
    if kind == "int" and (isinstance(arg, bool) or not isinstance(arg, int)):
        return f"predicate {name!r} needs an integer, got {arg!r}"
    if kind == "bool" and not isinstance(arg, bool):
        return f"predicate {name!r} needs true or false, got {arg!r}"
    if kind == "role_or_none" and arg is not None and not isinstance(arg, str):
        return f"predicate {name!r} needs a role name, got {arg!r}"
    if kind == "roles" and not (isinstance(arg, str) or (
            isinstance(arg, list) and arg and all(isinstance(r, str) for r in arg))):
        return f"predicate {name!r} needs a role name or a list of role names, got {arg!r}"
    return None


def evaluate(cond: Any, state: State, run: RunContext) -> bool:
    """Evaluate a (checked) condition."""
    if isinstance(cond, str):
        return PREDICATES[cond].test(state, run, None)
    (name, arg), = cond.items()
    if name == "not":
        return not evaluate(arg, state, run)
    if name == "all":
        return all(evaluate(c, state, run) for c in arg)
    if name == "any":
        return any(evaluate(c, state, run) for c in arg)
    return PREDICATES[name].test(state, run, run.resolve(arg))


def describe(cond: Any) -> str:
    """Short text of a condition, for pictures of graphs."""
    if isinstance(cond, str):
        return cond
    (name, arg), = cond.items()
    if name == "not":
        inner = describe(arg)
        return f"not ({inner})" if " " in inner else f"not {inner}"
    if name in ("all", "any"):
        parts = [describe(c) for c in arg]
        parts = [f"({p})" if isinstance(c, dict) and next(iter(c)) in ("all", "any")
                 else p for c, p in zip(arg, parts, strict=True)]
        return f" {'and' if name == 'all' else 'or'} ".join(parts)
    shown = str(arg).lower() if isinstance(arg, bool) else \
        "+".join(arg) if isinstance(arg, list) else arg
    return f"{name} {shown}"
