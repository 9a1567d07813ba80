"""Accuracy against paid spend, one point per graph, as a matplotlib figure.

The chart marks the large-only and small-only baselines, joins the points of a parameter
sweep in order of the swept value, shows each point's 95% interval (the report's Wilson
interval) as an error bar and traces the Pareto frontier (the graphs no other graph beats on
both accuracy and spend). Points of equal spend share one x; their labels are placed apart.

:func:`pareto_figure` returns the :class:`~matplotlib.figure.Figure` for restyling or saving
in any format matplotlib writes (PDF included); :func:`save_pareto` writes the eval's
``pareto.png`` and ``pareto.svg``. Only the object-oriented API is used (no ``pyplot``
state), so figures can be drawn from threads, and the SVG is byte-for-byte reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

__all__ = ["ParetoPoint", "new_axes", "pareto_figure", "pareto_frontier", "save_figure",
           "save_pareto"]

SIZE, DPI = (9.6, 6.0), 100  # 960 x 600 pixels
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#393b79")
BASELINE = {"large_only": ("#d62728", "s", "large-only baseline"),
            "small_only": ("#555555", "^", "small-only baseline")}
FRONTIER = "#f2b36b"
# label offsets from the point, in typographic points: nearest first, round the point
OFFSETS = tuple((round(r * dx), round(r * dy) - (6 if dy < 0 else 0))
                for r in (8, 16, 26, 38, 52, 68)
                for dx, dy in ((1, 0.6), (1, -0.6), (-1, 0.6), (-1, -0.6), (0, 1), (0, -1),
                               (1.4, 0), (-1.4, 0)))


@dataclass(frozen=True)
class ParetoPoint:
    """One graph on the chart."""

    label: str
    """Graph label, written next to the point."""
    paid_usd: float
    """Paid spend over the whole data set (x)."""
    accuracy: float
    """Share of items answered correctly, 0 to 1 (y)."""
    ci_lo: float
    """Lower end of the 95% interval of ``accuracy``."""
    ci_hi: float
    """Upper end of the 95% interval of ``accuracy``."""
    baseline: str | None = None
    """``"large_only"``, ``"small_only"`` or ``None``."""
    series: str | None = None
    """Name of the spec a sweep point belongs to, else ``None``."""
    sweep_value: float | None = None
    """The swept parameter's value, which orders a series' line."""


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


def _plain(text: str) -> str:
    """``text`` shown as written: a ``$`` would otherwise start mathtext."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _colors(points: Sequence[ParetoPoint]) -> list[str]:
    """A colour per point: baselines their own, a sweep's points one colour."""
    by_series: dict[str, str] = {}
    out, n = [], 0
    for p in points:
        if p.baseline in BASELINE:
            out.append(BASELINE[p.baseline][0])
            continue
        if p.series is not None and p.series in by_series:
            out.append(by_series[p.series])
            continue
        color = PALETTE[n % len(PALETTE)]
        n += 1
        if p.series is not None:
            by_series[p.series] = color
        out.append(color)
    return out


def _sweeps(points: Sequence[ParetoPoint]) -> list[list[int]]:
    """Indices of each series with two or more points, in order of the swept value."""
    series: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        if p.series is not None:
            series.setdefault(p.series, []).append(i)
    return [sorted(ix, key=lambda i: (points[i].sweep_value or 0.0, i))
            for ix in series.values() if len(ix) > 1]


def _limits(ax: Axes, points: Sequence[ParetoPoint]) -> None:
    xs = [p.paid_usd for p in points]
    span = max(xs) - min(xs) or max(abs(max(xs)), 1e-3)
    ax.set_xlim(min(xs) - 0.08 * span, max(xs) + 0.22 * span)  # room for labels on the right
    lo = min(min(p.ci_lo, p.accuracy) for p in points)
    hi = max(max(p.ci_hi, p.accuracy) for p in points)
    pad = max(0.06 * (hi - lo), 0.03)
    ax.set_ylim(max(lo - pad, -0.02), min(hi + pad, 1.04))


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _label(ax: Axes, p: ParetoPoint, offset: tuple[int, int]) -> Annotation:
    dx, dy = offset
    far = dx * dx + dy * dy > 20 * 20
    return ax.annotate(_plain(p.label), (p.paid_usd, p.accuracy), xytext=offset,
                       textcoords="offset points", fontsize=9, zorder=6, va="bottom",
                       ha="left" if dx > 0 else "right" if dx < 0 else "center",
                       bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                             "alpha": 0.8},
                       arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6,
                                   "shrinkA": 0, "shrinkB": 5} if far else None)


def _place_labels(fig: Figure, ax: Axes, points: Sequence[ParetoPoint],
                  marks: list[Bbox]) -> list[Annotation]:
    """One label per point, at the offset that covers least: another label counts far more
    than leaving the axes, which counts more than covering a marker or error bar, and each
    point of distance from the point counts a little (far labels get a leader line)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    labels = []
    order = sorted(range(len(points)), key=lambda i: (points[i].paid_usd, -points[i].accuracy))
    for i in order:
        best: tuple[float, tuple[int, int], Bbox] | None = None
        for offset in OFFSETS:
            text = _label(ax, points[i], offset)
            box = text.get_window_extent(renderer).padded(1.0)
            text.remove()
            outside = box.width * box.height - _overlap(box, frame)
            cost = (1000 * sum(_overlap(box, t) for t in placed) + 20 * outside
                    + sum(_overlap(box, m) for m in marks)
                    + 8 * (offset[0] ** 2 + offset[1] ** 2) ** 0.5)
            if best is None or cost < best[0]:
                best = (cost, offset, box)
        assert best is not None
        placed.append(best[2])
        labels.append(_label(ax, points[i], best[1]))
    return labels


def _marks(fig: Figure, ax: Axes, points: Sequence[ParetoPoint]) -> list[Bbox]:
    """Window extents of the markers and error bars, which labels must not cover."""
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    out = []
    for p in points:
        x, y = ax.transData.transform((p.paid_usd, p.accuracy))
        out.append(Bbox([[x - 6, y - 6], [x + 6, y + 6]]))
        _, lo = ax.transData.transform((p.paid_usd, p.ci_lo))
        _, hi = ax.transData.transform((p.paid_usd, p.ci_hi))
        out.append(Bbox([[x - 4, lo], [x + 4, hi]]))
    return out


def _legend_handles(points: Sequence[ParetoPoint], sweeps: bool) -> list[object]:
    from matplotlib.lines import Line2D

    handles: list[object] = []
    if any(p.baseline not in BASELINE for p in points):
        handles.append(Line2D([], [], color=PALETTE[0], marker="o", ls="none", label="graph"))
    for kind, (color, marker, name) in BASELINE.items():
        if any(p.baseline == kind for p in points):
            handles.append(Line2D([], [], color=color, marker=marker, ls="none", label=name))
    if sweeps:
        handles.append(Line2D([], [], color="#777777", lw=1.5, label="sweep, by value"))
    handles.append(Line2D([], [], color="#777777", marker="|", ms=12, ls="none",
                          label="95% interval"))
    handles.append(Line2D([], [], color=FRONTIER, lw=4, label="Pareto frontier"))
    return handles


def new_axes(rect: tuple[float, float, float, float], title: str, simulated: bool,
             grid: Literal["both", "x", "y"] = "both") -> tuple[Figure, Axes]:
    """A figure of the report's size with one axes at ``rect`` (figure fractions), its
    title (``" (simulated)"`` added when ``simulated``) and a light ``grid``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(rect)
    ax.set_title(title + (" (simulated)" if simulated else ""), loc="left", fontsize=12)
    ax.grid(True, axis=grid, color="#e6e6e6", lw=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def pareto_figure(points: Sequence[ParetoPoint], *, title: str, simulated: bool) -> Figure:
    """Accuracy against paid spend for ``points``, as a figure of 960 x 600 pixels at its
    own DPI.

    Args:
        points: One point per graph; at least one.
        title: Chart title; ``" (simulated)"`` is added when ``simulated``.
        simulated: The numbers come from the built-in simulator.

    Raises:
        ValueError: If ``points`` is empty.
    """
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    if not points:
        raise ValueError("pareto_figure: no points to draw")
    fig, ax = new_axes((0.085, 0.1, 0.67, 0.8), _plain(title), simulated)
    ax.set_xlabel("paid spend over the data set (USD)")
    ax.set_ylabel("accuracy")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: rf"\${v:.4g}"))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    colors, front, sweeps = _colors(points), pareto_frontier(points), _sweeps(points)

    stairs: list[tuple[float, float]] = []
    for i in front:
        x, y = points[i].paid_usd, points[i].accuracy
        stairs += [(x, stairs[-1][1]), (x, y)] if stairs else [(x, y)]
    if len(stairs) > 1:
        ax.plot(*zip(*stairs, strict=True), color=FRONTIER, lw=4, alpha=0.8, zorder=1,
                solid_joinstyle="miter")
    for sweep in sweeps:
        ax.plot([points[i].paid_usd for i in sweep], [points[i].accuracy for i in sweep],
                color=colors[sweep[0]], lw=1.5, zorder=2)
    for i, (p, color) in enumerate(zip(points, colors, strict=True)):
        marker = BASELINE[p.baseline][1] if p.baseline in BASELINE else "o"
        ax.errorbar([p.paid_usd], [p.accuracy],
                    yerr=[[max(p.accuracy - p.ci_lo, 0.0)], [max(p.ci_hi - p.accuracy, 0.0)]],
                    fmt=marker, color=color, ms=8, capsize=4, elinewidth=1.3, zorder=4,
                    mec="white", mew=0.8)
        if i in front:
            ax.plot([p.paid_usd], [p.accuracy], "o", ms=15, mfc="none", mec=FRONTIER, mew=2,
                    zorder=3)
    _limits(ax, points)
    fig.legend(handles=_legend_handles(points, bool(sweeps)), loc="upper left",
               bbox_to_anchor=(0.77, 0.9), frameon=False, fontsize=9)
    _place_labels(fig, ax, points, _marks(fig, ax, points))
    return fig


def save_pareto(points: Sequence[ParetoPoint], directory: str | Path, *, title: str,
                simulated: bool, stem: str = "pareto",
                formats: Iterable[str] = ("png", "svg")) -> list[Path]:
    """Draw :func:`pareto_figure` and save it as ``DIRECTORY/STEM.FORMAT`` for each format
    (anything matplotlib writes: ``png``, ``svg``, ``pdf``...); returns the paths.

    The SVG carries no date and fixed element ids, so the same points give the same bytes.
    """
    return save_figure(pareto_figure(points, title=title, simulated=simulated), directory,
                       stem, formats)


def save_figure(fig: Figure, directory: str | Path, stem: str,
                formats: Iterable[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``DIRECTORY/STEM.FORMAT`` for each format, reproducibly (no date in
    the SVG or PDF, fixed SVG ids); returns the paths."""
    from matplotlib import rc_context

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    with rc_context({"svg.hashsalt": "colm-graph", "svg.fonttype": "path"}):
        for fmt in formats:
            path = root / f"{stem}.{fmt}"
            meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
            fig.savefig(path, format=fmt, dpi=DPI, metadata=meta)
            paths.append(path)
    return paths
