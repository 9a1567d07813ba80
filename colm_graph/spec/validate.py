"""Checks a spec must pass before it is built: known kinds, options, roles, predicates and
parameters; every edge end a node; every node reachable from START and able to reach END.

Also the one place where values are checked against what they may be (:func:`param_constraints`,
:func:`param_error`, :func:`bind_params`): every node option declares its allowed values in the
node registry (:data:`colm_graph.nodes.KINDS`), every predicate argument its type and range
(:data:`PREDICATE_ARGS`), a node's ``stage`` / ``samples`` and a role's ``count`` their ranges
(:data:`FIELDS`), and some parameters are well known by name (:data:`PARAMETERS`). A parameter
gets the constraints of every place that uses it (``options: {method: $verifier}`` makes
``verifier`` one of ``agreement``, ``self_check``) and of its well-known name; uses that
disagree are refused at load. Spec defaults and literal values are checked at load (one line
naming file, line and place), ``--param`` values by the CLI, ``params=`` by ``load_graph``
and the factories, ``--sweep`` values by ``colm-graph eval`` - all with the same reason text.

Loops must have an exit bounded by a parameter (:func:`unbounded_loop`). Every loop of the
edge graph (a strongly connected set of nodes) must pass, on each of its cycles, through a
node whose edge is sure to leave the loop once the run's ``rounds`` reach a predicate's
argument: reading its branches in order, every branch back into the loop has a condition
that turns false then (``{rounds_left: N}``, ``{not: {rounds_at_least: N}}``, an ``all``
with such a member), and before the default is reached, if it leads back in, a branch out
of the loop has a condition that turns true then (``{rounds_at_least: N}``, an ``any`` with
such a member, ``{not: {rounds_left: N}}``); branches out on other conditions may come
first. ``N`` is a literal or a ``$parameter`` and is at most ``MAX_ROUNDS`` (20). A loop
with no such exit (it only stops on ``agreed``, a score, a budget, or not at all) is refused
at load with one line naming its edge and its nodes. Whether the loop's nodes really advance
``rounds`` (a ``guide`` node, or a peers ``revise`` followed by a ``vote``) is not decided
here: a loop that never advances them is stopped at run time by the run's step and paid-call
limits (:mod:`colm_graph.spec.limits`), which assume at most ``N + 2`` passes of each loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from colm_graph.core.prompts import PLACEHOLDERS
from colm_graph.core.settings import (
    ANSWER_TYPES,
    MAX_COUNT,
    MAX_ROUNDS,
    MAX_SAMPLES,
    MAX_STAGE,
    MAX_TOP_K,
    OUTPUT_POLICIES,
    VERIFY_METHODS,
    Option,
    show_value,
)
from colm_graph.core.yamlfile import format_loc
from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.nodes import KINDS
from colm_graph.routing.scorers import SCORERS
from colm_graph.routing.selectors import SELECTORS
from colm_graph.spec.predicates import PREDICATES, check_condition
from colm_graph.spec.schema import PARAM_REF, GraphSpec

__all__ = ["FIELDS", "IMPLICIT_PARAMS", "PARAMETERS", "PREDICATE_ARGS", "ROUNDS_PREDICATES",
           "SpecError", "bind_params", "check_spec", "loops", "param_constraints",
           "param_error", "unbounded_loop"]

IMPLICIT_PARAMS: dict[str, Any] = {"max_paid_usd": None, "max_paid_tokens": None,
                                   "answer_type": "auto", "max_draft_chars": 6000,
                                   "min_participants": 1, "fan_out": "send",
                                   "deadline_s": None, "private": False,
                                   "private_detect": False, "max_upload_bytes": None}
"""Parameters every graph has, whether its spec declares them or not."""

_SHARE = Option("float", low=0, high=1)
_ROUNDS = Option("int", low=0, high=MAX_ROUNDS)

PARAMETERS: dict[str, Option] = {
    "rounds": _ROUNDS,
    "top_k": Option("int", low=1, high=MAX_TOP_K),
    "samples": Option("int", low=1, high=MAX_SAMPLES),
    "threshold": _SHARE,
    "selector": Option("enum", tuple(SELECTORS)),
    "scorer": Option("enum", tuple(SCORERS)),
    "output": Option("enum", OUTPUT_POLICIES),
    "verifier": Option("enum", VERIFY_METHODS),
    "home": Option("str", nullable=True, doc="the default home client (a model name)"),
    "max_paid_usd": Option("float", low=0, nullable=True),
    "max_paid_tokens": Option("int", low=0, nullable=True),
    "answer_type": Option("enum", ANSWER_TYPES),
    "max_draft_chars": Option("int", low=200, high=1_000_000, nullable=True,
                              doc="longest draft or answer text put into a paid prompt"),
    "fan_out": Option("enum", ("send", "gather"),
                      doc="send: one LangGraph task per participant (a failed step resumes"
                          " with its failed calls only); gather: one task making them all"),
    "deadline_s": Option("float", low=0, high=86_400, nullable=True,
                         doc="seconds a run may take (see colm_graph.run.constraints)"),
    "private": Option("bool", doc="no byte of a run reaches a model that may not hold"
                                  " private data"),
    "private_detect": Option("bool", doc="a question that looks private (e-mail, phone,"
                                         " card or ID numbers) makes its run private"),
    "max_upload_bytes": Option("int", low=0, nullable=True,
                               doc="request bytes a run may send to paid models"),
    "min_participants": Option("int", low=1, high=MAX_COUNT,
                               doc="participants of a fan-out step that must answer when"
                                   " others' models fail (at most all the step's"
                                   " participants)"),
}
"""Well-known parameter names and their values, whichever graph has them and however it
uses them."""

PREDICATE_ARGS: dict[str, Option] = {
    "agreement_below": _SHARE, "agreement_at_least": _SHARE,
    "rounds_left": _ROUNDS, "rounds_at_least": _ROUNDS,
    "budget_left_usd_above": Option("float", low=0),
    "paid_tokens_left_above": Option("float", low=0),
    "paid_reachable": Option("role", nullable=True),
    "score_above": _SHARE, "score_at_least": _SHARE, "score_below": _SHARE,
    "flag": Option("bool"),
    "time_left_above": Option("float", low=0),
}
"""The argument each predicate takes (a predicate not listed: from its ``arg`` type).
Agreement and scores are shares from 0 to 1; rounds are capped like ``--rounds``
(``MAX_ROUNDS``)."""

FIELDS: dict[str, Option] = {
    "stage": Option("int", low=0, high=MAX_STAGE),
    "samples": Option("int", low=1, high=MAX_SAMPLES),
    "count": Option("int", low=1, high=MAX_COUNT),
}
"""A node's ``stage`` and ``samples``, a role's ``count``."""

_BY_ARG_TYPE = {"number": Option("float"), "int": Option("int", low=0), "bool": Option("bool"),
                "role_or_none": Option("role", nullable=True)}

Where = Callable[[Sequence[str | int]], str]


class SpecError(ColmGraphError):
    """A graph spec is invalid."""


def _params(spec: GraphSpec) -> dict[str, Any]:
    return {**IMPLICIT_PARAMS, **spec.parameters}


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        m = PARAM_REF.match(value)
        return [m.group(1)] if m else []
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def check_spec(spec: GraphSpec, where: Where) -> None:
    """Raise :class:`SpecError` naming the place of the first problem."""
    params = _params(spec)
    names = set(spec.nodes)
    for role, binding in spec.roles.items():
        if isinstance(binding.count, str) and not PARAM_REF.match(binding.count):
            raise SpecError(f"{where(['roles', role, 'count'])}: expected an integer or a"
                            f" $parameter, got {binding.count!r}")
        for ref in _refs(binding.count):
            if ref not in params:
                raise SpecError(f"{where(['roles', role, 'count'])}: unknown parameter ${ref}")
    for name, node in spec.nodes.items():
        kind = KINDS.get(node.kind)
        if kind is None:
            raise SpecError(f"{where(['nodes', name, 'kind'])}: unknown node kind"
                            f" {node.kind!r} (expected one of: {', '.join(KINDS)})")
        if kind.role == "required" and node.role is None:
            raise SpecError(f"{where(['nodes', name])}: node kind {node.kind!r} needs a"
                            " 'role'")
        if kind.role == "none" and node.role is not None:
            raise SpecError(f"{where(['nodes', name, 'role'])}: node kind {node.kind!r}"
                            " calls no model and takes no 'role'")
        if node.role is not None and node.role not in spec.roles:
            raise SpecError(f"{where(['nodes', name, 'role'])}: unknown role {node.role!r}"
                            f" (roles: {', '.join(spec.roles) or 'none'})")
        if node.prompt is not None and node.prompt not in PLACEHOLDERS:
            raise SpecError(f"{where(['nodes', name, 'prompt'])}: unknown prompt"
                            f" {node.prompt!r} (expected one of: {', '.join(PLACEHOLDERS)})")
        if node.prompt is not None:
            options = {k: params.get(r[0], v) if (r := _refs(v)) and isinstance(v, str) else v
                       for k, v in node.options.items()}  # a `$param` option: its value
            given = kind.values_for(options)
            missing = sorted(PLACEHOLDERS[node.prompt] - given)
            if missing:
                raise SpecError(f"{where(['nodes', name, 'prompt'])}: prompt {node.prompt!r}"
                                f" may use {{{missing[0]}}}, which a {node.kind!r} node does"
                                f" not provide (it provides: {', '.join(sorted(given))})")
        if node.over is not None and kind.fan_out is None:
            raise SpecError(f"{where(['nodes', name, 'over'])}: node kind {node.kind!r}"
                            " does not fan out")
        for key in node.options:
            if key not in kind.options:
                allowed = ", ".join(sorted(kind.options)) or "none"
                raise SpecError(f"{where(['nodes', name, 'options', key])}: unknown option"
                                f" {key!r} for kind {node.kind!r} (allowed: {allowed})")
        for field in ("stage", "samples", "options"):
            for ref in _refs(getattr(node, field)):
                if ref not in params:
                    raise SpecError(f"{where(['nodes', name, field])}: unknown parameter"
                                    f" ${ref}")
    _constraints(spec, where, literals=False)  # a wrong default: named at its parameter
    outgoing: dict[str, int] = {}
    for i, edge in enumerate(spec.edges):
        if edge.source != "START" and edge.source not in names:
            raise SpecError(f"{where(['edges', i, 'from'])}: unknown node {edge.source!r}"
                            f" (nodes: {', '.join(spec.nodes)})")
        if edge.source in outgoing:
            raise SpecError(f"{where(['edges', i, 'from'])}: node {edge.source!r} already has"
                            f" an outgoing edge (edges[{outgoing[edge.source]}]); use branches")
        outgoing[edge.source] = i
        for j, branch in enumerate(edge.branches or []):
            err = check_condition(branch.when, params, spec.roles)
            if err:
                raise SpecError(f"{where(['edges', i, 'branches', j, 'when'])}: {err}")
        for loc, target in _targets(edge):
            if target == "START":
                raise SpecError(f"{where(['edges', i, *loc])}: no edge may lead to START")
            if target != "END" and target not in names:
                raise SpecError(f"{where(['edges', i, *loc])}: unknown node {target!r}"
                                f" (nodes: {', '.join(spec.nodes)})")
    if "START" not in outgoing:
        raise SpecError(f"{where(['edges'])}: no edge leaves START")
    _check_paths(spec, where)
    _check_loops(spec, where)
    param_constraints(spec, where)


def _targets(edge: Any) -> list[tuple[list[str | int], str]]:
    if edge.to is not None:
        return [(["to"], edge.to)]
    out: list[tuple[list[str | int], str]] = [(["branches", j, "to"], b.to)
                                              for j, b in enumerate(edge.branches)]
    return out + [(["default"], edge.default)]


def _check_paths(spec: GraphSpec, where: Where) -> None:
    succ = {e.source: set(e.targets()) for e in spec.edges}
    reach, todo = {"START"}, ["START"]
    while todo:
        for nxt in succ.get(todo.pop(), ()):
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    for name in spec.nodes:
        if name not in reach:
            raise SpecError(f"{where(['nodes', name])}: node {name!r} is unreachable from"
                            " START")
    ends = {"END"}
    changed = True
    while changed:
        changed = False
        for src, targets in succ.items():
            if src not in ends and targets & ends:
                ends.add(src)
                changed = True
    for name in spec.nodes:
        if name not in ends:
            why = "has no outgoing edge" if name not in succ else "loops without an exit"
            raise SpecError(f"{where(['nodes', name])}: the graph can never reach END from"
                            f" node {name!r} (it {why})")


# -- loops --------------------------------------------------------------------------------------
ROUNDS_PREDICATES = ("rounds_at_least", "rounds_left")
"""The predicates that bound a loop (their argument is at most ``MAX_ROUNDS``)."""


def _bound(cond: Any, truth: bool) -> bool:
    """Whether ``cond`` is ``truth`` whenever the run's rounds reach its rounds argument
    (``rounds_at_least`` is then true, ``rounds_left`` false)."""
    if not isinstance(cond, dict) or len(cond) != 1:
        return False
    (name, arg), = cond.items()
    if name == ("rounds_at_least" if truth else "rounds_left"):
        return True
    if name == "not":
        return _bound(arg, not truth)
    if name in ("any", "all") and isinstance(arg, list):
        if (name == "any") == truth:  # one sub-condition settles it
            return any(_bound(c, truth) for c in arg)
        return bool(arg) and all(_bound(c, truth) for c in arg)
    return False


def _successors(spec: GraphSpec) -> dict[str, list[str]]:
    return {name: [] for name in spec.nodes} | {
        e.source: [t for t in dict.fromkeys(e.targets()) if t in spec.nodes]
        for e in spec.edges if e.source in spec.nodes}


def loops(spec: GraphSpec) -> list[set[str]]:
    """The loops of the edge graph: each strongly connected set of nodes with a cycle."""
    succ = _successors(spec)
    reach: dict[str, set[str]] = {}
    for start in succ:
        seen: set[str] = set()
        todo = list(succ[start])
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(succ[n])
        reach[start] = seen
    out: list[set[str]] = []
    done: set[str] = set()
    for n in succ:
        if n in done or n not in reach[n]:
            continue
        group = {m for m in reach[n] if n in reach[m]}
        done |= group
        out.append(group)
    return out


def _leaves(edge: Any, inside: set[str]) -> bool:
    """Whether ``edge`` surely leads out of ``inside`` once the rounds bound is reached."""
    if edge.to is not None:
        return edge.to not in inside
    for branch in edge.branches or []:
        if branch.to in inside:
            if not _bound(branch.when, False):
                return False
        elif _bound(branch.when, True):
            return True
    return edge.default not in inside


def _cycle(nodes: set[str], succ: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle among ``nodes`` (in edge order), or ``None``."""
    left = set(nodes)
    changed = True
    while changed:  # drop nodes that cannot lie on a cycle within what is left
        changed = False
        for n in list(left):
            if not any(m in left for m in succ[n]):
                left.discard(n)
                changed = True
    if not left:
        return None
    order = list(succ)
    walk: list[str] = [min(left, key=order.index)]
    while True:
        nxt = next(m for m in succ[walk[-1]] if m in left)
        if nxt in walk:
            return walk[walk.index(nxt):]
        walk.append(nxt)


def unbounded_loop(spec: GraphSpec) -> list[str] | None:
    """A cycle of ``spec`` with no exit bounded by a rounds predicate (see the module's
    doc), as its nodes in order; ``None`` when every loop has one."""
    succ = _successors(spec)
    edges = {e.source: e for e in spec.edges}
    for group in loops(spec):
        exits = {n for n in group if n in edges and _leaves(edges[n], group)}
        found = _cycle(group - exits, succ)
        if found:
            return found
    return None


def _check_loops(spec: GraphSpec, where: Where) -> None:
    cycle = unbounded_loop(spec)
    if cycle is None:
        return
    index = {e.source: i for i, e in enumerate(spec.edges)}
    at = next((n for n in cycle if spec.edges[index[n]].to is None), cycle[0])
    shown = " -> ".join([*cycle, cycle[0]])
    raise SpecError(f"{where(['edges', index[at]])}: the loop {shown} has no exit bounded by"
                    " a parameter (expected a branch out of it on {rounds_at_least: N}, or"
                    " branches back into it only on {rounds_left: N}; N a number or"
                    f" $parameter of at most {MAX_ROUNDS})")


# -- allowed values ---------------------------------------------------------------------------
def _dotted(loc: Sequence[str | int]) -> str:
    return format_loc(loc)


def _ref(value: Any) -> str | None:
    m = PARAM_REF.match(value) if isinstance(value, str) else None
    return m.group(1) if m else None


def _condition_uses(cond: Any, loc: list[str | int]
                    ) -> Iterator[tuple[list[str | int], Option, Any]]:
    if not isinstance(cond, dict) or len(cond) != 1:
        return
    (name, arg), = cond.items()
    if name == "not":
        yield from _condition_uses(arg, [*loc, "not"])
    elif name in ("all", "any"):
        for k, sub in enumerate(arg if isinstance(arg, list) else []):
            yield from _condition_uses(sub, [*loc, name, k])
    elif name in PREDICATES and PREDICATES[name].arg != "none":
        option = PREDICATE_ARGS.get(name) or _BY_ARG_TYPE.get(PREDICATES[name].arg)
        if option is not None:
            yield [*loc, name], option, arg


def _uses(spec: GraphSpec) -> Iterator[tuple[list[str | int], Option, Any]]:
    """``(place, allowed values, value)`` of every value the spec sets that has allowed
    values: role counts, node stages, samples and options, predicate arguments."""
    for role, binding in spec.roles.items():
        if binding.count is not None:
            yield ["roles", role, "count"], FIELDS["count"], binding.count
    for name, node in spec.nodes.items():
        yield ["nodes", name, "stage"], FIELDS["stage"], node.stage
        yield ["nodes", name, "samples"], FIELDS["samples"], node.samples
        kind = KINDS.get(node.kind)
        for key, value in node.options.items():
            option = kind.options.get(key) if kind is not None else None
            if option is not None:
                yield ["nodes", name, "options", key], option, value
    for i, edge in enumerate(spec.edges):
        for j, branch in enumerate(edge.branches or []):
            yield from _condition_uses(branch.when, ["edges", i, "branches", j, "when"])


def _for_spec(option: Option, roles: Sequence[str]) -> Option:
    """A ``role`` option as the ``enum`` of this spec's roles."""
    if option.kind != "role":
        return option
    return Option("enum", tuple(roles), nullable=option.nullable, doc=option.doc or "role")


def param_constraints(spec: GraphSpec, where: Where | None = None) -> dict[str, Option]:
    """The allowed values of each parameter of ``spec`` that has any: from its well-known
    name (:data:`PARAMETERS`) and from every place that uses it. Also checks the spec's
    literal values and parameter defaults; raises :class:`SpecError` (at ``where``, else
    the dotted place) for a wrong one or for a parameter whose uses disagree."""
    return _constraints(spec, where or _dotted, literals=True)


def _constraints(spec: GraphSpec, where: Where, *, literals: bool) -> dict[str, Option]:
    params = _params(spec)
    found: dict[str, tuple[Option, list[str | int] | None]] = {
        name: (PARAMETERS[name], None) for name in params if name in PARAMETERS}
    for loc, option, value in _uses(spec):
        option = _for_spec(option, list(spec.roles))
        ref = _ref(value)
        if ref is None:
            err = option.check(value) if literals else None
            if err:
                raise SpecError(f"{where(loc)}: {err}")
            continue
        if ref not in params:
            continue  # an unknown parameter: check_spec says so
        if ref not in found:
            found[ref] = (option, loc)
            continue
        known, first = found[ref]
        merged = known.merge(option)
        if merged is None:
            other = (f"the well-known parameter {ref!r} is {known.describe()}" if first is None
                     else f"at {format_loc(first)} it must be {known.describe()}")
            raise SpecError(f"{where(loc)}: parameter ${ref} must be {option.describe()} here,"
                            f" but {other}")
        found[ref] = (merged, first if first is not None else loc)
    for name, (option, _) in found.items():
        if name in spec.parameters:
            err = option.check(spec.parameters[name])
            if err:
                raise SpecError(f"{where(['parameters', name])}: {err}")
    return {name: option for name, (option, _) in found.items()}


def param_error(spec: GraphSpec, key: Any, value: Any,
                constraints: Mapping[str, Option] | None = None) -> str | None:
    """Why ``value`` cannot be parameter ``key`` of ``spec`` (``expected one of agreement,
    self_check, got 'selfcheck'``), or ``None``. ``constraints``: from
    :func:`param_constraints`, when already computed."""
    values = _params(spec)
    if not isinstance(key, str) or key not in values:
        return (f"graph {spec.name!r} has no such parameter (parameters:"
                f" {', '.join(sorted(values))})")
    table = param_constraints(spec) if constraints is None else constraints
    option = table.get(key)
    if option is not None:
        return option.check(value)
    default = values[key]
    if not _same_type(default, value):
        return f"expected {_type_name(default)}, got {show_value(value)}"
    return None


def bind_params(spec: GraphSpec, overrides: Mapping[str, Any] | None, *,
                names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Spec defaults updated with ``overrides``, each checked against the parameter's allowed
    values (else against its default's type); :class:`ConfigError` for a wrong one.

    The one check of parameter values: the compiler, the CLI and the Python factories all
    call it. ``names`` says how an error names a parameter where the caller took it from
    elsewhere (a CLI flag, a factory argument); else ``parameter 'key'``."""
    values = _params(spec)
    table = param_constraints(spec)
    for key, value in (overrides or {}).items():
        err = param_error(spec, key, value, table)
        if err:
            raise ConfigError(f"{(names or {}).get(key) or f'parameter {key!r}'}: {err}")
        values[key] = value
    return values


def _same_type(default: Any, value: Any) -> bool:
    if default is None:
        return isinstance(value, bool | int | float | str | type(None))
    if value is None:
        return False
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _type_name(default: Any) -> str:
    if default is None:
        return "a number, string or boolean"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list"}[type(default)]
