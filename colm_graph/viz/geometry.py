"""Geometry of a placed layout: row heights, boxes, ports, edge curves, labels, title and
legend (see :mod:`colm_graph.viz.layout` for how items are placed)."""

from __future__ import annotations

from collections.abc import Sequence

from colm_graph.viz.graph import GraphInfo
from colm_graph.viz.shapes import (
    ARROW,
    FILLS,
    FONT,
    HEAD_FONT,
    HL,
    LABEL_FONT,
    LABEL_LINE,
    LEGEND,
    LINE,
    MARGIN,
    MUTED,
    PAD_Y,
    ROW_GAP,
    Arrow,
    Box,
    Curve,
    Item,
    Layout,
    Measure,
    Point,
    Text,
    wrap_px,
)

__all__ = ["build"]

TERMINAL = 18.0
TEXT_EDGE = "#374151"
LEGEND_NOTE = "dashed: conditional edge · × n: runs n times in parallel"


def _line(a: Point, b: Point) -> Curve:
    return (a, b, b)


def _s_curve(a: Point, b: Point) -> Curve:
    dy = (b[1] - a[1]) / 2
    return ((a[0], a[1] + dy), (b[0], b[1] - dy), b)


def _side_ends(rows: list[list[Item]], chains: list[list[Item]]) -> set[tuple[int, str]]:
    """Ends of back edges that can attach to the right side of their node: the edge's
    dummies lie right of the node, nothing in the node's row is in between and the node
    has no self-loop."""
    ends = set()
    looped = {id(c[0]) for c in chains if c[0] is c[-1]}  # their right side is taken
    for i, chain in enumerate(chains):
        if chain[-1].row >= chain[0].row:
            continue
        for node, dummy, which in ((chain[0], chain[1], "out"), (chain[-1], chain[-2], "in")):
            if id(node) in looped:
                continue
            row = rows[node.row]
            after = row[node.index + 1] if node.index + 1 < len(row) else None
            if dummy.x > node.x + node.right + 6 and (
                    after is None or after.x + after.left > dummy.x + 6):
                ends.add((i, which))
    return ends


def _ports(chains: Sequence[Sequence[Item]], sizes: dict[str, tuple[float, float]],
           side: set[tuple[int, str]]) -> dict[tuple[int, str], float]:
    """x of each edge's end at its node: ends on one side are spread in order of the x
    of the next point, so edges leave without crossing each other."""
    sides: dict[tuple[str, str], list[tuple[float, int, str]]] = {}
    for i, chain in enumerate(chains):
        src, dst = chain[0], chain[-1]
        if src is dst:
            continue
        down = dst.row > src.row
        if (i, "out") not in side:
            sides.setdefault((str(src.node), "bottom" if down else "top"), []).append(
                (chain[1].x, i, "out"))
        if (i, "in") not in side:
            sides.setdefault((str(dst.node), "top" if down else "bottom"), []).append(
                (chain[-2].x, i, "in"))
    ports: dict[tuple[int, str], float] = {}
    centres = {str(c[0].node): c[0].x for c in chains} | {str(c[-1].node): c[-1].x
                                                          for c in chains}
    for (name, _), ends in sides.items():
        ends.sort()
        n = len(ends)
        w = sizes[name][0] if name not in ("START", "END") else 0.0
        span = min(max(w - 40, 0.0), 28.0 * (n - 1))
        for k, (_, i, which) in enumerate(ends):
            offset = span * (k / (n - 1) - 0.5) if n > 1 else 0.0
            ports[(i, which)] = centres[name] + offset
    return ports


def _label(x: float, top: float, lines: list[str], measure: Measure, arrow: Arrow) -> None:
    if not lines:
        return
    lh = LABEL_FONT * LABEL_LINE
    w = max(measure(ln, LABEL_FONT, False) for ln in lines)
    arrow.label_box = (x - 3, top, w + 6, lh * len(lines) + 4)
    arrow.texts = [Text(x, top + 2 + lh * k + LABEL_FONT * 0.95, ln, LABEL_FONT,
                        anchor="start", color=HL if arrow.highlight else TEXT_EDGE)
                   for k, ln in enumerate(lines)]


def build(info: GraphInfo, highlight: tuple[set[str], set[int]], measure: Measure,
          rows: list[list[Item]], chains: list[list[Item]], labels: list[list[str]],
          lines: dict[str, list[tuple[str, float, bool]]],
          sizes: dict[str, tuple[float, float]]) -> Layout:
    """Turn placed rows into boxes, arrows and texts."""
    hl_nodes, hl_edges = highlight
    items = [it for row in rows for it in row]
    left = min(it.x + it.left for it in items)
    graph_w = max(it.x + it.right for it in items) - left
    head = [Text(MARGIN, MARGIN + HEAD_FONT, info.name, HEAD_FONT, True, "start")]
    desc_w = max(graph_w, 420.0)
    for k, ln in enumerate(wrap_px(info.description, desc_w, measure, FONT) if
                           info.description else []):
        head.append(Text(MARGIN, head[0].y + 6 + FONT * LINE * (k + 1), ln, FONT,
                         anchor="start", color=MUTED))
    tiers = [t for t in ("local", "paid", "mixed", None) if any(n.tier == t for n in info.nodes)]
    legend_w = sum(22 + measure(LEGEND[t], LABEL_FONT, False) + 16 for t in tiers) + \
        measure(LEGEND_NOTE, LABEL_FONT, False)
    width = max(graph_w, legend_w, max(measure(t.text, t.size, t.bold) for t in head)) \
        + 2 * MARGIN
    shift = MARGIN - left + (width - 2 * MARGIN - graph_w) / 2
    for it in items:
        it.x += shift
    heights = []
    for r, row in enumerate(rows):
        if r % 2 == 0:
            heights.append(max((sizes[str(it.node)][1] for it in row if it.node), default=0))
        else:
            heights.append(max((len(it.label) * LABEL_FONT * LABEL_LINE + 4 for it in row),
                               default=0.0))
    side = _side_ends(rows, chains)
    ports = _ports(chains, sizes, side)
    tops = [head[-1].y + 18.0]
    for h, gap in zip(heights, _gaps(rows, chains, ports), strict=True):
        tops.append(tops[-1] + h + gap)
    boxes = _boxes(info, rows, tops, heights, lines, sizes, measure, hl_nodes)
    extent = {b.name: (b.y - b.h / 2, b.y + b.h / 2) for b in boxes}
    arrows = []
    for i, chain in enumerate(chains):
        edge = info.edges[i]
        arrow = _arrow(i, chain, ports, tops, heights, extent, sizes)
        if chain[-1].row < chain[0].row:
            _hook(arrow, i, chain, side, tops, heights, extent, sizes)
        arrow.dashed, arrow.highlight = edge.conditional, i in hl_edges
        first = chain[1] if len(chain) > 2 else chain[0]
        if chain[0] is chain[-1]:
            x, y = chain[0].x + sizes[str(chain[0].node)][0] / 2 + 50, extent[edge.source][0]
        else:
            x, y = first.x + 9, tops[first.row]
        _label(x, y, labels[i], measure, arrow)
        arrows.append(arrow)
    bottom = tops[-1] + 22
    texts = head + _legend(tiers, bottom, boxes, measure)
    return Layout(width=width, height=bottom + TERMINAL + MARGIN, boxes=boxes, arrows=arrows,
                  texts=texts)


def _gaps(rows: list[list[Item]], chains: list[list[Item]],
          ports: dict[tuple[int, str], float]) -> list[float]:
    """Room below each row: more where edges swing far sideways, so curves stay smooth."""
    swing = [0.0] * len(rows)
    for i, chain in enumerate(chains):
        if chain[0] is chain[-1]:
            continue
        xs = [ports.get((i, "out"), chain[1].x), *(d.x for d in chain[1:-1]),
              ports.get((i, "in"), chain[-2].x)]
        for a, b, xa, xb in zip(chain, chain[1:], xs, xs[1:], strict=False):
            r = min(a.row, b.row)
            swing[r] = max(swing[r], abs(xa - xb))
    gaps = [min(max(ROW_GAP, 0.2 * sw), 3 * ROW_GAP) for sw in swing]
    return gaps[:-1] + [0.0]


def _boxes(info: GraphInfo, rows: list[list[Item]], tops: list[float], heights: list[float],
           lines: dict[str, list[tuple[str, float, bool]]],
           sizes: dict[str, tuple[float, float]], measure: Measure,
           hl_nodes: set[str]) -> list[Box]:
    tier = {n.name: n.tier for n in info.nodes}
    boxes = []
    for r, row in enumerate(rows):
        for it in row:
            if it.node is None:
                continue
            name, cy = it.node, tops[r] + heights[r] / 2
            if name in ("START", "END"):
                fill = "#111827" if name == "START" else "#ffffff"
                label = Text(it.x + TERMINAL / 2 + 5, cy + LABEL_FONT * 0.35, name, LABEL_FONT,
                            anchor="start", color=MUTED)
                boxes.append(Box(name, it.x, cy, TERMINAL, TERMINAL, fill, "#111827",
                                 "terminal", texts=[label]))
                continue
            w, h = sizes[name]
            fill, stroke = FILLS[tier[name]]
            box = Box(name, it.x, cy, w, h, fill, stroke, highlight=name in hl_nodes)
            y = cy - h / 2 + PAD_Y
            for text, size, bold in lines[name]:
                box.texts.append(Text(it.x, y + size * 1.02, text, size, bold))
                y += size * LINE
            boxes.append(box)
    return boxes


def _arrow(i: int, chain: list[Item], ports: dict[tuple[int, str], float], tops: list[float],
           heights: list[float], extent: dict[str, tuple[float, float]],
           sizes: dict[str, tuple[float, float]]) -> Arrow:
    src, dst = chain[0], chain[-1]
    s, t = str(src.node), str(dst.node)
    if src is dst:
        right = src.x + sizes[s][0] / 2
        y0, y1 = extent[s]
        q = (y1 - y0) / 4
        a, b = (right, y0 + q), (right + ARROW, y1 - q)
        curve = ((right + 44, a[1] - 18), (right + 44, b[1] + 18), b)
        head = [(right, b[1]), (right + ARROW, b[1] - 4.5), (right + ARROW, b[1] + 4.5)]
        return Arrow(s, t, a, [curve], head, dashed=False)
    down = dst.row > src.row
    sign = 1.0 if down else -1.0
    x0 = ports.get((i, "out"), src.x)
    cur: Point = (x0, extent[s][1] if down else extent[s][0])
    start, curves = cur, []
    for d in chain[1:-1]:
        top, bottom = tops[d.row], tops[d.row] + heights[d.row]
        enter, leave = (top, bottom) if down else (bottom, top)
        curves.append(_s_curve(cur, (d.x, enter)))
        cur = (d.x, leave)
        if leave != enter:
            curves.append(_line((d.x, enter), cur))
    x1 = ports.get((i, "in"), dst.x)
    tip = (x1, extent[t][0] if down else extent[t][1])
    base = (x1, tip[1] - sign * ARROW)
    curves.append(_s_curve(cur, base))
    head = [tip, (x1 - 4.5, base[1]), (x1 + 4.5, base[1])]
    return Arrow(s, t, start, curves, head, dashed=False)


def _hook(arrow: Arrow, i: int, chain: list[Item], side: set[tuple[int, str]],
          tops: list[float], heights: list[float], extent: dict[str, tuple[float, float]],
          sizes: dict[str, tuple[float, float]]) -> None:
    """Re-attach the ends of a back edge to the right side of its nodes where allowed."""
    src, dst, first, last = chain[0], chain[-1], chain[1], chain[-2]
    if (i, "out") in side:
        x0 = src.x + sizes[str(src.node)][0] / 2
        y0 = sum(extent[str(src.node)]) / 2
        bottom = tops[first.row] + heights[first.row]
        arrow.start = (x0, y0)
        arrow.curves[0] = ((x0 + (first.x - x0) * 0.7, y0), (first.x, bottom + (y0 - bottom) * 0.7),
                           (first.x, bottom))
    if (i, "in") in side:
        x1 = dst.x + sizes[str(dst.node)][0] / 2
        y1 = sum(extent[str(dst.node)]) / 2
        top = tops[last.row]
        base = (x1 + ARROW, y1)
        arrow.curves[-1] = ((last.x, top - (top - y1) * 0.7),
                            (base[0] + (last.x - base[0]) * 0.7, y1), base)
        arrow.head = [(x1, y1), (base[0], y1 - 4.5), (base[0], y1 + 4.5)]


def _legend(tiers: list[str | None], y: float, boxes: list[Box], measure: Measure
            ) -> list[Text]:
    x = MARGIN
    texts = []
    for t in tiers:
        fill, stroke = FILLS[t]
        boxes.append(Box(LEGEND[t], x + 7, y + 7, 14, 14, fill, stroke, "legend"))
        texts.append(Text(x + 20, y + 11, LEGEND[t], LABEL_FONT, anchor="start", color=MUTED))
        x += 22 + measure(LEGEND[t], LABEL_FONT, False) + 16
    texts.append(Text(x, y + 11, LEGEND_NOTE, LABEL_FONT, anchor="start", color=MUTED))
    return texts
