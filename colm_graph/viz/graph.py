"""What a picture of a graph variant shows, as data: its nodes (kind, role, models, tier,
fan-out) and its edges (conditional or not, with label lines). Built by
:func:`colm_graph.viz.draw.graph_info`, read by the layout and the Mermaid writer."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EdgeInfo", "GraphInfo", "NodeInfo"]


@dataclass(frozen=True)
class NodeInfo:
    """One node as drawn: ``lines[0]`` is its name, the rest describe it."""

    name: str
    kind: str
    role: str | None
    models: tuple[str, ...]
    tier: str | None
    """``local``, ``paid``, ``mixed`` or ``None`` (the node calls no model)."""
    fan_out: str | None
    """E.g. ``× 2 selected`` or ``× 3 samples``; ``None`` for nodes that run once."""
    lines: tuple[str, ...]


@dataclass(frozen=True)
class EdgeInfo:
    """One drawn edge; branches of one conditional edge to the same target are merged."""

    source: str
    target: str
    conditional: bool
    label: tuple[str, ...] = ()
    """Label lines: conditions (numbered when the edge has several branches), ``otherwise``."""


@dataclass(frozen=True)
class GraphInfo:
    """What a picture of a graph shows; ``START`` and ``END`` are not in ``nodes``."""

    name: str
    description: str
    nodes: tuple[NodeInfo, ...]
    edges: tuple[EdgeInfo, ...]
