"""A layered layout of a graph picture in pure Python, shared by the SVG and PNG renderers.

Rows alternate: nodes, then edge labels. A node's row is ``2 * longest path from START``
over forward edges (back edges are those a depth-first walk from START finds closing a
loop); an edge passes the rows between its ends as dummy items, the first carrying its
label, so labels take room as nodes do. Rows are ordered by barycentre sweeps (keeping the
order with the fewest crossings); x positions are least-squares fits to the neighbours under
the row's order and spacing (isotonic regression). Back edges leave the top of a node and
enter the bottom of their target, pointing up; their dummies lean to the right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from colm_graph.viz.draw import GraphInfo

__all__ = ["Arrow", "Box", "Layout", "Measure", "Text", "layout", "wrap", "wrap_px"]

Measure = Callable[[str, float, bool], float]
"""``measure(text, font_size, bold) -> width``."""
Point = tuple[float, float]
Curve = tuple[Point, Point, Point]

FONT, TITLE_FONT, LABEL_FONT, HEAD_FONT = 12.0, 13.0, 11.0, 15.0
NODE_TEXT_W, LABEL_TEXT_W = 290.0, 220.0
PAD_X, PAD_Y, GAP, ROW_GAP, ARROW, MARGIN = 12.0, 8.0, 36.0, 26.0, 9.0, 20.0
LINE, LABEL_LINE = 1.35, 1.3
FILLS = {"local": ("#dbeafe", "#1e3a8a"), "paid": ("#fde2cf", "#9a3412"),
         "mixed": ("#ede9fe", "#5b21b6"), None: ("#f3f4f6", "#4b5563")}
LEGEND = {"local": "local tier", "paid": "paid tier", "mixed": "both tiers", None: "no model"}
HL, EDGE, TEXT, MUTED = "#e11d48", "#4b5563", "#111827", "#6b7280"


@dataclass
class Text:
    x: float
    y: float
    """Baseline."""
    text: str
    size: float
    bold: bool = False
    anchor: str = "middle"
    """``middle`` or ``start``."""
    color: str = TEXT


@dataclass
class Box:
    name: str
    x: float
    y: float
    w: float
    h: float
    """Centre and size; circles (START, END) have ``w == h``."""
    fill: str
    stroke: str
    kind: str = "node"
    """``node``, ``terminal`` (a circle) or ``legend``."""
    highlight: bool = False
    texts: list[Text] = field(default_factory=list)


@dataclass
class Arrow:
    source: str
    target: str
    start: Point
    curves: list[Curve]
    """Cubic Bézier segments (control, control, end) from ``start`` to the head's base."""
    head: list[Point]
    dashed: bool
    highlight: bool = False
    label_box: tuple[float, float, float, float] | None = None
    """x, y, width, height of the label's background."""
    texts: list[Text] = field(default_factory=list)


@dataclass
class Layout:
    width: float
    height: float
    boxes: list[Box]
    arrows: list[Arrow]
    texts: list[Text]


@dataclass(eq=False)
class _Item:
    row: int
    left: float
    right: float
    """Extent around the anchor x (a node's centre, a dummy's line)."""
    node: str | None = None
    back: bool = False
    label: list[str] = field(default_factory=list)
    x: float = 0.0
    index: int = 0
    links: list[_Item] = field(default_factory=list)


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters at spaces (or hard)."""
    return wrap_px(text, float(width), lambda s, size, bold: float(len(s)), 1.0)


def wrap_px(text: str, width: float, measure: Measure, size: float,
            bold: bool = False) -> list[str]:
    """Split ``text`` at spaces into lines no wider than ``width`` (long words are cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        while len(word) > 1 and measure(word, size, bold) > width:
            cut = max([1] + [i for i in range(2, len(word))
                             if measure(word[:i], size, bold) <= width])
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        joined = f"{line} {word}" if line else word
        if line and measure(joined, size, bold) > width:
            lines.append(line)
            line = word
        else:
            line = joined
    return [*lines, line] if line or not lines else lines


def _ranks(names: list[str], edges: list[tuple[str, str]]) -> tuple[dict[str, int], set[int]]:
    out: dict[str, list[int]] = {n: [] for n in names}
    for i, (s, _) in enumerate(edges):
        out[s].append(i)
    back: set[int] = set()
    seen: set[str] = set()
    stack: set[str] = set()
    post: list[str] = []

    def visit(n: str) -> None:
        seen.add(n)
        stack.add(n)
        for i in out[n]:
            t = edges[i][1]
            if t in stack:
                back.add(i)
            elif t not in seen:
                visit(t)
        stack.discard(n)
        post.append(n)

    for n in names:
        if n not in seen:
            visit(n)
    rank = dict.fromkeys(names, 0)
    for n in reversed(post):
        for i in out[n]:
            if i not in back:
                rank[edges[i][1]] = max(rank[edges[i][1]], rank[n] + 1)
    return rank, back


def _crossings(rows: list[list[_Item]]) -> int:
    total = 0
    for row in rows:
        pairs = [(it.index, nb.index) for it in row for nb in it.links if nb.row == it.row + 1]
        total += sum(1 for a in pairs for b in pairs if a[0] < b[0] and a[1] > b[1])
    return total


def _reindex(rows: list[list[_Item]]) -> None:
    for row in rows:
        for k, it in enumerate(row):
            it.index = k


def _order(rows: list[list[_Item]]) -> None:
    _reindex(rows)
    best, best_cross = [list(r) for r in rows], _crossings(rows)
    for sweep in range(16):
        down = sweep % 2 == 0
        for r in range(1, len(rows)) if down else range(len(rows) - 2, -1, -1):
            near = r - 1 if down else r + 1

            def key(it: _Item, near: int = near) -> float:
                ks = [nb.index for nb in it.links if nb.row == near]
                return (sum(ks) / len(ks) if ks else it.index) + (0.5 if it.back else 0.0)

            rows[r].sort(key=key)
            _reindex(rows)
        cross = _crossings(rows)
        if cross < best_cross:
            best, best_cross = [list(r) for r in rows], cross
    rows[:] = best
    _reindex(rows)


def _fit(row: list[_Item], desired: Sequence[float], weights: Sequence[float]) -> None:
    """Least-squares x positions near ``desired`` that keep the row's order and spacing."""
    offsets = [0.0]
    for a, b in zip(row, row[1:], strict=False):
        offsets.append(offsets[-1] + _spacing(a, b))
    blocks: list[tuple[float, float, int]] = []
    for d, o, w in zip(desired, offsets, weights, strict=True):
        blocks.append((d - o, w, 1))
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append(((v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2))
    values = [v for v, _, c in blocks for _ in range(c)]
    for it, v, o in zip(row, values, offsets, strict=True):
        it.x = v + o


def _position(rows: list[list[_Item]]) -> None:
    for row in rows:
        _fit(row, [0.0] * len(row), [1.0] * len(row))
    for sweep in range(24):
        down = sweep % 2 == 0
        for r in range(len(rows)) if down else range(len(rows) - 1, -1, -1):
            near = {r - 1 if down else r + 1} if sweep < 20 else {r - 1, r + 1}
            desired = []
            for it in rows[r]:
                xs = [nb.x for nb in it.links if nb.row in near]
                desired.append(sum(xs) / len(xs) if xs else it.x)
            _fit(rows[r], desired, [1.0 if it.node else 2.0 for it in rows[r]])


def _spacing(a: _Item, b: _Item) -> float:
    """Least distance from ``a``'s anchor to ``b``'s when ``b`` follows ``a`` in a row."""
    return a.right + (GAP if a.node is not None and b.node is not None else GAP / 2.5) - b.left


def _runs(rows: list[list[_Item]]) -> list[list[_Item]]:
    """Maximal vertical paths whose items link one-to-one from row to row."""
    def down(it: _Item) -> list[_Item]:
        return [nb for nb in it.links if nb.row == it.row + 1]

    def up(it: _Item) -> list[_Item]:
        return [nb for nb in it.links if nb.row == it.row - 1]

    runs = []
    for row in rows:
        for it in row:
            prev = up(it)
            if len(prev) == 1 and len(down(prev[0])) == 1:
                continue  # not the top of a run
            run = [it]
            while len(nxt := down(run[-1])) == 1 and len(up(nxt[0])) == 1:
                run.append(nxt[0])
            if len(run) > 1:
                runs.append(run)
    return sorted(runs, key=len, reverse=True)


def _straighten(rows: list[list[_Item]]) -> None:
    """Put the items of each vertical run on one line, in stretches the rows leave room for."""
    for run in _runs(rows):
        start = 0
        while start < len(run) - 1:
            lo, hi, end = -float("inf"), float("inf"), start
            while end < len(run):
                d = run[end]
                row = rows[d.row]
                new_lo = row[d.index - 1].x + _spacing(row[d.index - 1], d) if d.index else lo
                new_hi = row[d.index + 1].x - _spacing(d, row[d.index + 1]) \
                    if d.index + 1 < len(row) else hi
                if max(lo, new_lo) > min(hi, new_hi):
                    break
                lo, hi, end = max(lo, new_lo), min(hi, new_hi), end + 1
            if end - start > 1:
                xs = sorted(d.x for d in run[start:end])
                target = min(max(xs[len(xs) // 2], lo), hi)
                for d in run[start:end]:
                    d.x = target
            start = max(end, start + 1)


def _side_loops(rows: list[list[_Item]], chains: list[list[_Item]]) -> None:
    """Move the dummies of back edges to the right of both ends, as far as rows allow."""
    for chain in chains:
        src, dst, run = chain[0], chain[-1], chain[1:-1]
        if dst.row >= src.row or not run:
            continue
        want = max(src.x + src.right, dst.x + dst.right) + GAP / 2
        for d in run:
            row = rows[d.row]
            hi = row[d.index + 1].x - _spacing(d, row[d.index + 1]) \
                if d.index + 1 < len(row) else float("inf")
            lo = row[d.index - 1].x + _spacing(row[d.index - 1], d) if d.index else -hi
            d.x = min(max(want, lo, d.x), hi)


def _node_lines(info: GraphInfo, measure: Measure) -> dict[str, list[tuple[str, float, bool]]]:
    out = {}
    for node in info.nodes:
        out[node.name] = [(node.lines[0], TITLE_FONT, True)] + [
            (ln, FONT, False) for text in node.lines[1:]
            for ln in wrap_px(text, NODE_TEXT_W, measure, FONT)]
    return out


def _ends(info: GraphInfo, back: set[int]) -> dict[tuple[str, str], int]:
    """How many edges end on the top and on the bottom of each node."""
    count: dict[tuple[str, str], int] = {}
    for i, e in enumerate(info.edges):
        if e.source != e.target:
            for key in ((e.source, "top" if i in back else "bottom"),
                        (e.target, "bottom" if i in back else "top")):
                count[key] = count.get(key, 0) + 1
    return count


def layout(info: GraphInfo, highlight: tuple[set[str], set[int]], measure: Measure) -> Layout:
    """Place the nodes, edges and labels of ``info``; ``measure`` gives text widths."""
    from colm_graph.viz.geometry import build

    names = ["START", *[n.name for n in info.nodes], "END"]
    rank, back = _ranks(names, [(e.source, e.target) for e in info.edges])
    rows: list[list[_Item]] = [[] for _ in range(2 * max(rank.values()) + 1)]
    lines = _node_lines(info, measure)
    sizes: dict[str, tuple[float, float]] = {}
    for name, ls in lines.items():
        w = max(measure(t, s, b) for t, s, b in ls) + 2 * PAD_X
        sizes[name] = (max(w, 90.0), sum(s * LINE for _, s, _ in ls) + 2 * PAD_Y)
    for (name, _), n in _ends(info, back).items():
        if name in sizes:
            sizes[name] = (max(sizes[name][0], 28.0 * (n - 1) + 48), sizes[name][1])
    for end in ("START", "END"):
        sizes[end] = (18.0 + 2 * (measure(end, LABEL_FONT, False) + 6), 18.0)
    items = {n: _Item(row=2 * rank[n], left=-sizes[n][0] / 2, right=sizes[n][0] / 2, node=n)
             for n in sorted(names, key=lambda n: rank[n])}
    chains: list[list[_Item]] = []
    labels: list[list[str]] = []
    for i, edge in enumerate(info.edges):
        src, dst = items[edge.source], items[edge.target]
        label = [ln for text in edge.label
                 for ln in wrap_px(text, LABEL_TEXT_W, measure, LABEL_FONT)]
        label_w = max((measure(ln, LABEL_FONT, False) for ln in label), default=0.0)
        step = 1 if dst.row > src.row else -1
        chain = [src]
        for r in range(src.row + step, dst.row, step):
            first = r == src.row + step and bool(label)
            chain.append(_Item(row=r, left=-4.0, right=14 + label_w if first else 4.0,
                               back=i in back, label=label if first else []))
        if src is dst:
            src.right += 50 + label_w
        chain.append(dst)
        for a, b in zip(chain, chain[1:], strict=False):
            if a is not b:
                a.links.append(b)
                b.links.append(a)
        chains.append(chain)
        labels.append(label)
    for it in [*items.values(), *(d for c in chains for d in c[1:-1])]:
        rows[it.row].append(it)
    _order(rows)
    _position(rows)
    _straighten(rows)
    _side_loops(rows, chains)
    return build(info, highlight, measure, rows, chains, labels, lines, sizes)
