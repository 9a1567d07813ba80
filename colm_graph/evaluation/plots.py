"""Accuracy against paid spend, one point per graph, drawn with Pillow only.

The chart marks the large-only and small-only baselines, joins the points of a parameter
sweep in order of the swept value, shows each point's 95% interval as an error bar and
traces the Pareto frontier (the graphs no other graph beats on both accuracy and spend).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from colm_graph.viz.render import _plain

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

__all__ = ["ParetoPoint", "nice_ticks", "pareto_frontier", "pareto_png"]

W, H, S = 960, 600, 2  # final size in pixels, and the supersampling factor
PLOT = (84, 76, 740, 532)  # left, top, right, bottom of the axes box
INSET = 20  # data never touches the axes box
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#393b79")
BASELINE = {"large_only": ("#d62728", "square", "large-only baseline"),
            "small_only": ("#555555", "triangle", "small-only baseline")}
FRONTIER, GRID, AXIS, TEXT = "#f2b36b", "#e6e6e6", "#444444", "#222222"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ParetoPoint:
    """One graph on the chart.

    Attributes:
        label: Graph label, written next to the point.
        paid_usd: Paid spend over the whole data set (x).
        accuracy: Share of items answered correctly, 0 to 1 (y).
        ci_lo: Lower end of the 95% interval of ``accuracy``.
        ci_hi: Upper end of the 95% interval of ``accuracy``.
        baseline: ``"large_only"``, ``"small_only"`` or ``None``.
        series: Name of the spec a sweep point belongs to, else ``None``.
        sweep_value: The swept parameter's value, which orders a series' line.
    """

    label: str
    paid_usd: float
    accuracy: float
    ci_lo: float
    ci_hi: float
    baseline: str | None = None
    series: str | None = None
    sweep_value: float | None = None


def pareto_frontier(points: Sequence[ParetoPoint]) -> list[int]:
    """Indices of the points no other point dominates, by increasing paid spend.

    A point is dominated when another one has at least its accuracy for at most its paid
    spend and is strictly better on one of the two. Identical points are all kept.
    """
    def dominated(p: ParetoPoint) -> bool:
        return any(q.paid_usd <= p.paid_usd and q.accuracy >= p.accuracy
                   and (q.paid_usd < p.paid_usd or q.accuracy > p.accuracy) for q in points)

    keep = [i for i, p in enumerate(points) if not dominated(p)]
    return sorted(keep, key=lambda i: (points[i].paid_usd, points[i].accuracy))


def nice_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Evenly spaced round tick values covering ``lo..hi``, and the decimals they need.

    Steps are 1, 2, 2.5 or 5 times a power of ten; an empty range is widened to one unit
    of its magnitude.
    """
    if not hi > lo:
        width = abs(hi) or 1.0
        lo, hi = lo - width / 2, hi + width / 2
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if step / mag == 2.5 else 0)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, decimals + 2) for k in range(first, last + 1)], decimals


def _x_range(points: Sequence[ParetoPoint]) -> tuple[list[float], int]:
    """Ticks of the paid-spend axis: from 0 unless the points sit far from it; one tick in
    the middle when all points have the same spend."""
    xs = [p.paid_usd for p in points]
    lo, hi = min(xs), max(xs)
    if lo == hi:
        return [lo], 0 if lo == 0 else max(0, 2 - math.floor(math.log10(abs(lo))))
    return nice_ticks(0.0 if lo <= hi / 2 else lo, hi)


def _y_range(points: Sequence[ParetoPoint]) -> tuple[list[float], int]:
    lo = min(min(p.ci_lo, p.accuracy) for p in points)
    hi = max(max(p.ci_hi, p.accuracy) for p in points)
    if hi - lo < 0.1:
        mid = (hi + lo) / 2
        lo, hi = mid - 0.05, mid + 0.05
    lo, hi = max(0.0, lo), min(1.0, hi)
    ticks, decimals = nice_ticks(lo, hi)
    kept = [t for t in ticks if -1e-9 <= t <= 1 + 1e-9]
    return kept, decimals


@functools.lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=px * S)


def _size(text: str, px: int) -> tuple[float, float]:
    box = _font(px).getbbox(text)
    return (box[2] - box[0]) / S, (box[3] - box[1]) / S


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, px: int,
          anchor: str = "la", halo: bool = False) -> None:
    draw.text((xy[0] * S, xy[1] * S), text, font=_font(px), fill=TEXT, anchor=anchor,
              stroke_width=2 * S if halo else 0, stroke_fill="#ffffff")


def _line(draw: ImageDraw.ImageDraw, pts: Sequence[tuple[float, float]], fill: str,
          width: float) -> None:
    draw.line([(x * S, y * S) for x, y in pts], fill=fill, width=round(width * S), joint="curve")


def _marker(draw: ImageDraw.ImageDraw, x: float, y: float, shape: str, fill: str,
            r: float = 5.5) -> None:
    x, y, r = x * S, y * S, r * S
    if shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=fill, outline="#ffffff", width=S)
    elif shape == "triangle":
        r *= 1.2
        draw.polygon([(x, y - r), (x + r, y + r * 0.75), (x - r, y + r * 0.75)], fill=fill,
                     outline="#ffffff", width=S)
    elif shape == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), outline=FRONTIER, width=round(2.5 * S))
    else:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline="#ffffff", width=S)


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _trace(pts: Sequence[tuple[float, float]]) -> list[Box]:
    """Small boxes along a polyline, so that labels keep off it."""
    boxes = []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        n = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / 5))
        for k in range(n + 1):
            x, y = x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n
            boxes.append((x - 2, y - 2, x + 2, y + 2))
    return boxes


def _place_label(text: str, x: float, y: float, taken: list[Box]) -> Box:
    """Box for a point's label: the candidate spot overlapping least with what is drawn."""
    w, h = _size(text, 12)
    h = max(h, 11)
    d = 9
    spots = [(x + d, y - h / 2), (x - d - w, y - h / 2), (x - w / 2, y - d - h),
             (x - w / 2, y + d), (x + d, y - d - h), (x + d, y + d), (x - d - w, y - d - h),
             (x - d - w, y + d)]
    left, top, right, bottom = PLOT

    def cost(spot: tuple[float, float]) -> float:
        box = (spot[0], spot[1], spot[0] + w, spot[1] + h)
        outside = (max(0, left + 2 - box[0]) + max(0, box[2] - right + 2)
                   + max(0, top + 2 - box[1]) + max(0, box[3] - bottom + 2))
        return sum(_overlap(box, t) for t in taken) + outside * 1000

    best = min(spots, key=cost)  # min keeps the first of equal costs: right of the point
    return best[0], best[1], best[0] + w, best[1] + h


def _legend(draw: ImageDraw.ImageDraw, entries: list[tuple[str, str, str]]) -> None:
    x, y = PLOT[2] + 24, PLOT[1] + 4
    for kind, color, text in entries:
        cy = y + 8
        if kind == "line":
            _line(draw, [(x, cy), (x + 22, cy)], color, 2)
        elif kind == "frontier":
            _line(draw, [(x, cy + 5), (x + 11, cy + 5), (x + 11, cy - 5), (x + 22, cy - 5)],
                  FRONTIER, 3)
        elif kind == "ci":
            _line(draw, [(x + 11, cy - 7), (x + 11, cy + 7)], color, 1.5)
            _line(draw, [(x + 7, cy - 7), (x + 15, cy - 7)], color, 1.5)
            _line(draw, [(x + 7, cy + 7), (x + 15, cy + 7)], color, 1.5)
        else:
            _marker(draw, x + 11, cy, kind, color)
        _text(draw, (x + 32, cy), text, 12, anchor="lm")
        y += 24


@dataclass(frozen=True)
class _Frame:
    """Axis ticks and the mapping from data to pixels."""

    xt: list[float]
    yt: list[float]
    dodge: dict[int, float]

    def px(self, v: float) -> float:
        left, _, right, _ = PLOT
        if len(self.xt) == 1:
            return (left + right) / 2
        return left + INSET + (v - self.xt[0]) / (self.xt[-1] - self.xt[0]) * (
            right - left - 2 * INSET)

    def py(self, v: float) -> float:
        _, top, _, bottom = PLOT
        return bottom - INSET - (v - self.yt[0]) / (self.yt[-1] - self.yt[0]) * (
            bottom - top - 2 * INSET)

    def at(self, i: int, p: ParetoPoint) -> tuple[float, float]:
        return self.px(p.paid_usd) + self.dodge.get(i, 0.0), self.py(p.accuracy)


def _axes(draw: ImageDraw.ImageDraw, points: Sequence[ParetoPoint], title: str) -> _Frame:
    left, top, right, bottom = PLOT
    (xt, xd), (yt, yd) = _x_range(points), _y_range(points)
    f = _Frame(xt, yt, {})
    groups: dict[int, list[int]] = {}  # points at the same spend stand side by side
    for i, p in enumerate(points):
        groups.setdefault(round(f.px(p.paid_usd) / 4), []).append(i)
    for same in groups.values():
        for k, i in enumerate(same):
            f.dodge[i] = (k - (len(same) - 1) / 2) * 12
    for v in xt:
        _line(draw, [(f.px(v), top), (f.px(v), bottom)], GRID, 1)
        _line(draw, [(f.px(v), bottom), (f.px(v), bottom + 5)], AXIS, 1)
        _text(draw, (f.px(v), bottom + 8), f"${v:,.{xd}f}", 12, anchor="ma")
    for v in yt:
        _line(draw, [(left, f.py(v)), (right, f.py(v))], GRID, 1)
        _line(draw, [(left - 5, f.py(v)), (left, f.py(v))], AXIS, 1)
        _text(draw, (left - 8, f.py(v)), f"{v * 100:.{max(0, yd - 2)}f}%", 12, anchor="rm")
    draw.rectangle((left * S, top * S, right * S, bottom * S), outline=AXIS, width=S)
    _text(draw, ((left + right) / 2, bottom + 30), "Paid USD (total over the data set)", 13,
          anchor="ma")
    _text(draw, (left - 8, top - 10), "Accuracy (95% CI)", 13, anchor="ld")
    _text(draw, (left - 8, 18), _plain(title), 17)
    return f


def _colors(points: Sequence[ParetoPoint]) -> list[str]:
    """One color per point: baselines their own, the points of a sweep share one."""
    by_key: dict[str, str] = {}
    out = []
    for p in points:
        if p.baseline in BASELINE:
            out.append(BASELINE[p.baseline][0])
            continue
        key = p.series or p.label
        out.append(by_key.setdefault(key, PALETTE[len(by_key) % len(PALETTE)]))
    return out


def _sweeps(points: Sequence[ParetoPoint]) -> list[list[int]]:
    """Indices of each sweep's points (two or more), in order of the swept value."""
    series: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        if p.series is not None and p.sweep_value is not None:
            series.setdefault(p.series, []).append(i)
    return [sorted(v, key=lambda i: points[i].sweep_value or 0.0)
            for v in series.values() if len(v) > 1]


def pareto_png(points: Sequence[ParetoPoint], path: str | Path, *, title: str,
               simulated: bool) -> None:
    """Draw accuracy against paid spend for ``points`` and save it as a PNG at ``path``.

    Args:
        points: One point per graph; at least one.
        path: Where to write the PNG.
        title: Chart title; ``" (simulated)"`` is added when ``simulated``.
        simulated: The numbers come from the built-in simulator.

    Raises:
        ValueError: If ``points`` is empty.
    """
    from PIL import Image, ImageDraw

    if not points:
        raise ValueError("pareto_png: no points to draw")
    image = Image.new("RGB", (W * S, H * S), "#ffffff")
    draw = ImageDraw.Draw(image)
    f = _axes(draw, points, title + (" (simulated)" if simulated else ""))
    colors, front, sweeps = _colors(points), pareto_frontier(points), _sweeps(points)
    taken: list[Box] = []

    stairs: list[tuple[float, float]] = []
    for i in front:
        x, y = f.at(i, points[i])
        stairs += [(x, stairs[-1][1]), (x, y)] if stairs else [(x, y)]
    if len(stairs) > 1:
        _line(draw, stairs, FRONTIER, 4)
        taken += _trace(stairs)
    for sweep in sweeps:
        line = [f.at(i, points[i]) for i in sweep]
        _line(draw, line, colors[sweep[0]], 2)
        taken += _trace(line)
    for i, (p, c) in enumerate(zip(points, colors, strict=True)):
        x, y = f.at(i, p)
        lo, hi = f.py(max(p.ci_lo, f.yt[0])), f.py(min(p.ci_hi, f.yt[-1]))
        for seg in ([(x, lo), (x, hi)], [(x - 4, lo), (x + 4, lo)], [(x - 4, hi), (x + 4, hi)]):
            _line(draw, seg, c, 1.5)
        taken += _trace([(x, lo), (x, hi)]) + [(x - 8, y - 8, x + 8, y + 8)] * 4
    for i, (p, c) in enumerate(zip(points, colors, strict=True)):
        x, y = f.at(i, p)
        if i in front:
            _marker(draw, x, y, "ring", FRONTIER, r=9)
        _marker(draw, x, y, BASELINE[p.baseline][1] if p.baseline in BASELINE else "circle", c)
    for i, p in enumerate(points):
        box = _place_label(_plain(p.label), *f.at(i, p), taken)
        taken += [box] * 4
        _text(draw, (box[0], box[1]), _plain(p.label), 12, anchor="lt", halo=True)

    entries = [("circle", PALETTE[0], "graph")] if any(
        p.baseline not in BASELINE for p in points) else []
    entries += [(shape, c, name) for b, (c, shape, name) in BASELINE.items()
                if any(p.baseline == b for p in points)]
    if sweeps:
        entries.append(("line", "#777777", "sweep, by value"))
    entries += [("ci", "#777777", "95% interval"), ("frontier", FRONTIER, "Pareto frontier")]
    _legend(draw, entries)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.resize((W, H), Image.Resampling.LANCZOS).save(path, format="PNG")
