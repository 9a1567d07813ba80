"""Pictures of graph variants, offline: Mermaid text, a self-contained SVG and a PNG.

Every picture is drawn from the spec and the pool, not from the compiled graph: nodes show
their kind, role and bound models (with tier) and whether they fan out; conditional edges
show their condition, with ``$param`` replaced by the parameter's value, and the default
branch reads ``otherwise``. SVG and PNG share one pure-Python layered layout
(:mod:`colm_graph.viz.layout`); nothing calls a web service or needs graphviz.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from colm_graph.errors import ConfigError
from colm_graph.nodes import KINDS
from colm_graph.pool import ModelPool
from colm_graph.spec.compile import bind_roles
from colm_graph.spec.predicates import describe
from colm_graph.spec.schema import PARAM_REF, GraphSpec, RoleBinding
from colm_graph.spec.validate import bind_params
from colm_graph.viz.graph import EdgeInfo, GraphInfo, NodeInfo
from colm_graph.viz.layout import layout
from colm_graph.viz.shapes import wrap

__all__ = [
    "EdgeInfo",
    "GraphInfo",
    "NodeInfo",
    "condition_text",
    "graph_info",
    "highlighted_edges",
    "to_mermaid",
    "to_png",
    "to_svg",
]

Highlight = Sequence[str | Mapping[str, Any]] | None


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)


def _resolve(value: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        m = PARAM_REF.match(value)
        if m and m.group(1) in params:
            return params[m.group(1)]
    return value


def _grouped(cond: Any, text: str) -> str:
    return f"({text})" if isinstance(cond, dict) and next(iter(cond)) in ("all", "any") else text


def condition_text(cond: Any, params: Mapping[str, Any]) -> str:
    """Short text of a branch condition with ``$param`` arguments replaced by their values.

    Nested ``all``/``any`` groups are parenthesised; ``{flag: $name}`` reads as ``name``.

    Args:
        cond: a checked condition from a spec (a predicate name or a one-key mapping).
        params: the graph's parameter values (see ``bind_params``).
    """
    if isinstance(cond, str):
        return describe(cond)
    (name, arg), = cond.items()
    if name == "not":
        return f"not {_grouped(arg, condition_text(arg, params))}"
    if name in ("all", "any"):
        word = " and " if name == "all" else " or "
        return word.join(_grouped(c, condition_text(c, params)) for c in arg)
    if name == "flag" and isinstance(arg, str) and PARAM_REF.match(arg):
        return arg[1:]
    return describe({name: _fmt(_resolve(arg, params))})


def _models_text(models: Sequence[str], pool: ModelPool) -> str:
    groups: list[tuple[str, list[str]]] = []
    for m in models:
        tier = pool.entry(m).tier
        if groups and groups[-1][0] == tier:
            groups[-1][1].append(m)
        else:
            groups.append((tier, [m]))
    return ", ".join(f"{', '.join(names)} ({tier})" for tier, names in groups)


def _fan_out(spec: GraphSpec, name: str, counts: Mapping[str, int],
             params: Mapping[str, Any]) -> str | None:
    node = spec.nodes[name]
    if KINDS[node.kind].fan_out is None:
        return None
    parts = []
    if node.over == "selected":
        top_k = [_resolve(n.options.get("top_k"), params) for n in spec.nodes.values()
                 if n.kind == "select" and n.role == node.role]
        parts.append(f"{top_k[0]} selected" if len(top_k) == 1 and top_k[0] else "selected")
    elif node.role is not None and counts.get(node.role, 1) > 1:
        parts.append(f"{counts[node.role]} participants")
    samples = _resolve(node.samples, params)
    if isinstance(samples, int) and samples > 1:
        parts.append(f"{samples} samples")
    return "× " + " × ".join(parts) if parts else None


def _node_info(spec: GraphSpec, name: str, pool: ModelPool, roles: Mapping[str, list[str]],
               counts: Mapping[str, int], params: Mapping[str, Any]) -> NodeInfo:
    node = spec.nodes[name]
    models: tuple[str, ...] = ()
    tier = None
    head = node.kind
    if node.role is not None:
        bound = roles[node.role]
        n = counts.get(node.role, len(bound))
        models = tuple(dict.fromkeys(bound[i % len(bound)] for i in range(n)))
        tiers = {pool.entry(m).tier for m in models}
        tier = tiers.pop() if len(tiers) == 1 else "mixed"
        head = f"{node.kind} · {node.role}: {_models_text(models, pool)}"
    fan = _fan_out(spec, name, counts, params)
    details = [f"{k}={_fmt(_resolve(v, params))}" for k, v in node.options.items()]
    stage = _resolve(node.stage, params)
    if stage:
        details.insert(0, f"stage {stage}")
    lines = [name, head] + ([fan] if fan else []) + ([", ".join(details)] if details else [])
    return NodeInfo(name=name, kind=node.kind, role=node.role, models=models, tier=tier,
                    fan_out=fan, lines=tuple(lines))


def _edges(spec: GraphSpec, params: Mapping[str, Any]) -> list[EdgeInfo]:
    out: list[EdgeInfo] = []
    for edge in spec.edges:
        if edge.to is not None:
            out.append(EdgeInfo(edge.source, edge.to, conditional=False))
            continue
        branches = edge.branches or []
        labels: dict[str, list[str]] = {}
        for i, b in enumerate(branches):
            text = condition_text(b.when, params)
            labels.setdefault(b.to, []).append(f"{i + 1}: {text}" if len(branches) > 1
                                               else text)
        assert edge.default is not None
        labels.setdefault(edge.default, []).append("otherwise")
        for target, texts in labels.items():
            lines = [texts[0]] + [f"or {t}" for t in texts[1:]]
            out.append(EdgeInfo(edge.source, target, conditional=True, label=tuple(lines)))
    return out


def graph_info(spec: GraphSpec, pool: ModelPool | None = None, *,
               params: Mapping[str, Any] | None = None,
               roles: Mapping[str, RoleBinding | str | list[str]] | None = None) -> GraphInfo:
    """The nodes and edges of a picture of ``spec`` bound to ``pool``.

    Args:
        spec: a validated graph spec (see ``load_spec``).
        pool: the model pool roles are bound to; default: the built-in simulated pool.
        params: parameter overrides, as for ``load_graph``.
        roles: role overrides, as for ``load_graph``.

    Raises:
        ConfigError: a parameter or role override is invalid, or a role binds no model.
    """
    pool = pool if pool is not None else ModelPool.default()
    values = bind_params(spec, params)
    bound, counts = bind_roles(spec, pool, roles, values)
    nodes = tuple(_node_info(spec, n, pool, bound, counts, values) for n in spec.nodes)
    return GraphInfo(name=spec.name, description=spec.description, nodes=nodes,
                     edges=tuple(_edges(spec, values)))


def highlighted_edges(info: GraphInfo, path: Highlight) -> tuple[set[str], set[int]]:
    """Highlighted node names and indexes (into ``info.edges``) of edges a path traversed.

    ``path`` lists the nodes in the order they ran: names, or a run's ``path`` entries
    (``{"node": name, "step": n}``; entries of one step ran in parallel). Repeats in a row
    count once. Edges from START to the first nodes and from the last ones to END count as
    traversed.

    Raises:
        ConfigError: the path names a node the graph does not have.
    """
    if not path:
        return set(), set()
    known = {n.name for n in info.nodes}
    groups: list[tuple[Any, set[str]]] = []
    for k, item in enumerate(path):
        name = str(item["node"]) if isinstance(item, Mapping) else str(item)
        if name not in known:
            raise ConfigError(f"highlight: graph {info.name!r} has no node {name!r} (nodes:"
                              f" {', '.join(sorted(known))})")
        step = item.get("step", k) if isinstance(item, Mapping) else k
        if groups and (groups[-1][0] == step if isinstance(item, Mapping)
                       else groups[-1][1] == {name}):
            groups[-1][1].add(name)
        else:
            groups.append((step, {name}))
    sets = [{"START"}, *(g for _, g in groups), {"END"}]
    pairs = {(u, v) for a, b in zip(sets, sets[1:], strict=False) for u in a for v in b}
    return ({n for _, g in groups for n in g},
            {i for i, e in enumerate(info.edges) if (e.source, e.target) in pairs})


def _mm_text(lines: Sequence[str], width: int = 48) -> str:
    parts = [w for line in lines for w in wrap(line, width)]
    text = "\n".join(parts).replace("#", "#35;")
    for ch, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;"),
                     ("[", "#91;"), ("]", "#93;"), ("{", "#123;"), ("}", "#125;")):
        text = text.replace(ch, code)
    return text.replace("\n", "<br>")


def _mm_id(name: str) -> str:
    return {"START": "s_start", "END": "s_end"}.get(name, f"n_{name}")


def to_mermaid(spec: GraphSpec, pool: ModelPool | None = None, *, highlight: Highlight = None,
               params: Mapping[str, Any] | None = None) -> str:
    """Mermaid ``flowchart TD`` text of ``spec`` bound to ``pool``.

    Args:
        spec: a validated graph spec.
        pool: the model pool; default: the built-in simulated pool.
        highlight: node names of a run's path, in order; those nodes get class ``hl`` and
            the edges between consecutive ones a ``linkStyle``.
        params: parameter overrides.

    Raises:
        ConfigError: a bad parameter override, or ``highlight`` names an unknown node.
    """
    info = graph_info(spec, pool, params=params)
    hl_nodes, hl_edges = highlighted_edges(info, highlight)
    out = ["flowchart TD",
           f"  %% {info.name}: {info.description}".replace("\n", " "),
           '  s_start(("START"))', '  s_end(("END"))']
    for node in info.nodes:
        out.append(f'  {_mm_id(node.name)}("{_mm_text(node.lines)}")')
    for edge in info.edges:
        arrow = "-.->" if edge.conditional else "-->"
        label = f'|"{_mm_text(edge.label, 40)}"|' if edge.label else ""
        out.append(f"  {_mm_id(edge.source)} {arrow}{label} {_mm_id(edge.target)}")
    out.append("  classDef local fill:#dbeafe,stroke:#1e3a8a;")
    out.append("  classDef paid fill:#fde2cf,stroke:#9a3412;")
    out.append("  classDef mixed fill:#ede9fe,stroke:#5b21b6;")
    out.append("  classDef plain fill:#f3f4f6,stroke:#374151;")
    out.append("  classDef hl stroke:#e11d48,stroke-width:3px;")
    for tier in ("local", "paid", "mixed", None):
        ids = [_mm_id(n.name) for n in info.nodes if n.tier == tier]
        if ids:
            out.append(f"  class {','.join(ids)} {tier or 'plain'};")
    if hl_nodes:
        ids = [_mm_id(n.name) for n in info.nodes if n.name in hl_nodes]
        out.append(f"  class {','.join(ids)} hl;")
    if hl_edges:
        out.append(f"  linkStyle {','.join(map(str, sorted(hl_edges)))}"
                   " stroke:#e11d48,stroke-width:3px;")
    return "\n".join(out) + "\n"


def to_svg(spec: GraphSpec, pool: ModelPool | None = None, *, highlight: Highlight = None,
           params: Mapping[str, Any] | None = None) -> str:
    """A self-contained SVG picture of ``spec`` bound to ``pool`` (no scripts, no links).

    Args:
        spec: a validated graph spec.
        pool: the model pool; default: the built-in simulated pool.
        highlight: node names of a run's path; their boxes and traversed edges are marked.
        params: parameter overrides.

    Raises:
        ConfigError: a bad parameter override, or ``highlight`` names an unknown node.
    """
    from colm_graph.viz.render import render_svg, svg_measure

    info = graph_info(spec, pool, params=params)
    return render_svg(layout(info, highlighted_edges(info, highlight), svg_measure))


def to_png(spec: GraphSpec, pool: ModelPool | None = None, *, highlight: Highlight = None,
           params: Mapping[str, Any] | None = None, scale: float = 1.5) -> bytes:
    """A PNG picture of ``spec`` bound to ``pool``, drawn with Pillow and its built-in font.

    Args:
        spec: a validated graph spec.
        pool: the model pool; default: the built-in simulated pool.
        highlight: node names of a run's path; their boxes and traversed edges are marked.
        params: parameter overrides.
        scale: pixels per layout unit, 0.25 to 8 (1.5: sharp text on most screens).

    Raises:
        ConfigError: a bad parameter override, or ``highlight`` names an unknown node.
        ImportError: Pillow is not installed.
    """
    from colm_graph.viz.render import png_measure, render_png

    info = graph_info(spec, pool, params=params)
    return render_png(layout(info, highlighted_edges(info, highlight), png_measure), scale)
