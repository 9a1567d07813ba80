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

from collections.abc import Sequence

from colm_graph.viz.geometry import build
from colm_graph.viz.graph import GraphInfo
from colm_graph.viz.shapes import (
    FONT,
    GAP,
    LABEL_FONT,
    LABEL_TEXT_W,
    LINE,
    NODE_TEXT_W,
    PAD_X,
    PAD_Y,
    TITLE_FONT,
    Item,
    Layout,
    Measure,
    wrap_px,
)

__all__ = ["layout"]


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


def _crossings(rows: list[list[Item]]) -> int:
    total = 0
    for row in rows:
        pairs = [(it.index, nb.index) for it in row for nb in it.links if nb.row == it.row + 1]
        total += sum(1 for a in pairs for b in pairs if a[0] < b[0] and a[1] > b[1])
    return total


def _reindex(rows: list[list[Item]]) -> None:
    for row in rows:
        for k, it in enumerate(row):
            it.index = k


def _order(rows: list[list[Item]]) -> None:
    _reindex(rows)
    best, best_cross = [list(r) for r in rows], _crossings(rows)
    for sweep in range(16):
        down = sweep % 2 == 0
        for r in range(1, len(rows)) if down else range(len(rows) - 2, -1, -1):
            near = r - 1 if down else r + 1

            def key(it: Item, near: int = near) -> float:
                ks = [nb.index for nb in it.links if nb.row == near]
                return (sum(ks) / len(ks) if ks else it.index) + (0.5 if it.back else 0.0)

            rows[r].sort(key=key)
            _reindex(rows)
        cross = _crossings(rows)
        if cross < best_cross:
            best, best_cross = [list(r) for r in rows], cross
    rows[:] = best
    _reindex(rows)


def _fit(row: list[Item], desired: Sequence[float], weights: Sequence[float]) -> None:
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


def _position(rows: list[list[Item]]) -> None:
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


def _spacing(a: Item, b: Item) -> float:
    """Least distance from ``a``'s anchor to ``b``'s when ``b`` follows ``a`` in a row."""
    return a.right + (GAP if a.node is not None and b.node is not None else GAP / 2.5) - b.left


def _runs(rows: list[list[Item]]) -> list[list[Item]]:
    """Maximal vertical paths whose items link one-to-one from row to row."""
    def down(it: Item) -> list[Item]:
        return [nb for nb in it.links if nb.row == it.row + 1]

    def up(it: Item) -> list[Item]:
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


def _straighten(rows: list[list[Item]]) -> None:
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


def _side_loops(rows: list[list[Item]], chains: list[list[Item]]) -> None:
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
    names = ["START", *[n.name for n in info.nodes], "END"]
    rank, back = _ranks(names, [(e.source, e.target) for e in info.edges])
    rows: list[list[Item]] = [[] for _ in range(2 * max(rank.values()) + 1)]
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
    items = {n: Item(row=2 * rank[n], left=-sizes[n][0] / 2, right=sizes[n][0] / 2, node=n)
             for n in sorted(names, key=lambda n: rank[n])}
    chains: list[list[Item]] = []
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
            chain.append(Item(row=r, left=-4.0, right=14 + label_w if first else 4.0,
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
