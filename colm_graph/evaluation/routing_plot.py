"""The routing curves of an eval as a matplotlib figure: accuracy against the share of items
that made a paid call, one line per series of :meth:`Outcomes.routing
<colm_graph.evaluation.compare.Outcomes.routing>` (a threshold sweep, or a route / cascade
graph between the two baselines), with the small-only and large-only accuracies as dashed
lines and each series' APGR in the legend. Saved as ``routing.png`` and ``routing.svg``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colm_graph.evaluation.plots import BASELINE, DPI, PALETTE, SIZE, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["routing_figure", "save_routing"]


def routing_figure(routing: Mapping[str, Mapping[str, Any]], *, title: str,
                   simulated: bool) -> Figure:
    """The curves of ``routing`` (series -> metrics with ``points``, ``weak_accuracy``,
    ``strong_accuracy``, ``apgr``).

    Raises:
        ValueError: If ``routing`` is empty.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    if not routing:
        raise ValueError("routing_figure: no routing series to draw")
    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.085, 0.1, 0.6, 0.8))
    ax.set_title(title + (" (simulated)" if simulated else ""), loc="left", fontsize=12)
    ax.set_xlabel("items that made a paid call")
    ax.set_ylabel("accuracy")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(True, color="#e6e6e6", lw=0.8)
    ax.set_axisbelow(True)
    first = next(iter(routing.values()))
    for kind, value in (("small_only", first["weak_accuracy"]),
                        ("large_only", first["strong_accuracy"])):
        color, _, name = BASELINE[kind]
        ax.axhline(value, color=color, lw=1.2, ls="--", label=f"{name} ({value:.1%})")
    for i, (name, m) in enumerate(routing.items()):
        xs = [p["strong_share"] for p in m["points"]]
        ys = [p["accuracy"] for p in m["points"]]
        apgr = "n/a" if m["apgr"] is None else f"{m['apgr']:.2f}"
        ax.plot(xs, ys, marker="o", ms=6, lw=1.8, color=PALETTE[i % len(PALETTE)],
                label=f"{name} (APGR {apgr})")
    ax.set_xlim(-0.03, 1.03)
    fig.legend(loc="upper left", bbox_to_anchor=(0.7, 0.9), frameon=False, fontsize=9)
    return fig


def save_routing(routing: Mapping[str, Mapping[str, Any]], directory: str | Path, *,
                 title: str, simulated: bool, stem: str = "routing",
                 formats: Iterable[str] = ("png", "svg")) -> list[Path]:
    """Draw :func:`routing_figure` and save it as ``DIRECTORY/STEM.FORMAT``."""
    return save_figure(routing_figure(routing, title=title, simulated=simulated), directory,
                       stem, formats)
