"""Checks a spec must pass before it is built: known kinds, options, roles, predicates and
parameters; every edge end a node; every node reachable from START and able to reach END."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ColmGraphError, ConfigError
from ..nodes import KINDS
from ..prompts import PLACEHOLDERS
from .predicates import check_condition
from .schema import PARAM_REF, GraphSpec

__all__ = ["IMPLICIT_PARAMS", "SpecError", "bind_params", "check_spec"]

IMPLICIT_PARAMS: dict[str, Any] = {"max_paid_usd": None, "max_paid_tokens": None}
"""Parameters every graph has, whether its spec declares them or not."""

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
            given = _prompt_values(node.kind, node.options.get("context", "guidance"))
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


_CLIENT = {"client_name", "client_domains", "question"}
_PROMPT_VALUES: dict[str, set[str]] = {
    "answer": _CLIENT, "plan": {"question"}, "execute": {"question", "plan"},
    "guide": {"question", "drafts", "round", "rounds"}, "aggregate": {"question", "answers"},
    "verify": {"question", "candidate"}, "score": {"question"},
    "select": {"question", "clients", "k"},
}


def _prompt_values(kind: str, context: Any) -> set[str]:
    """The values a node kind fills into its prompt."""
    if kind == "revise":
        return _CLIENT | {"previous", "guidance" if context == "guidance" else "answers"}
    return _PROMPT_VALUES.get(kind, set())


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


def bind_params(spec: GraphSpec, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Spec defaults updated with ``overrides``, each checked against its default's type."""
    values = _params(spec)
    for key, value in (overrides or {}).items():
        if key not in values:
            raise ConfigError(f"parameter {key!r}: graph {spec.name!r} has no such parameter"
                              f" (parameters: {', '.join(sorted(values))})")
        default = values[key]
        if not _same_type(default, value, key):
            expected = {"max_paid_usd": "a non-negative number or null",
                        "max_paid_tokens": "a non-negative integer or null"}.get(
                            key, _type_name(default))
            raise ConfigError(f"parameter {key!r}: expected {expected}, got {value!r}")
        values[key] = value
    return values


def _same_type(default: Any, value: Any, key: str = "") -> bool:
    if key == "max_paid_usd":
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                                 and value >= 0)
    if key == "max_paid_tokens":
        return value is None or (isinstance(value, int) and not isinstance(value, bool)
                                 and value >= 0)
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
