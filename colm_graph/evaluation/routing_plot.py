"""The routing curves of an eval as a matplotlib figure: accuracy against the share of items
that made a paid call, one line per series of :meth:`Outcomes.routing
<colm_graph.evaluation.compare.Outcomes.routing>` (a threshold sweep, or a route / cascade
graph between the two baselines), with the small-only and large-only accuracies as dashed
lines and each series' APGR in the legend. Saved as ``routing.png`` and ``routing.svg``.
Also the per-domain bars (``domains.png`` / ``.svg``): each graph's accuracy in each domain
with its Wilson interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colm_graph.evaluation.plots import BASELINE, PALETTE, new_axes, save_figure
from colm_graph.evaluation.stats import wilson

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["domain_figure", "routing_figure", "save_domains", "save_routing"]


def routing_figure(routing: Mapping[str, Mapping[str, Any]], *, title: str,
                   simulated: bool) -> Figure:
    """The curves of ``routing`` (series -> metrics with ``points``, ``weak_accuracy``,
    ``strong_accuracy``, ``apgr``).

    Raises:
        ValueError: If ``routing`` is empty.
    """
    from matplotlib.ticker import PercentFormatter

    if not routing:
        raise ValueError("routing_figure: no routing series to draw")
    fig, ax = new_axes((0.085, 0.1, 0.6, 0.8), title, simulated)
    ax.set_xlabel("items that made a paid call")
    ax.set_ylabel("accuracy")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
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


def domain_figure(by_domain: Mapping[str, Mapping[str, Mapping[str, Any]]], *, title: str,
                  simulated: bool) -> Figure:
    """Accuracy per domain, one bar per graph in each domain's group, with the Wilson 95%
    interval of each bar (``by_domain``: graph -> domain -> ``n``, ``correct``).

    Raises:
        ValueError: If ``by_domain`` is empty.
    """
    from matplotlib.ticker import PercentFormatter

    if not by_domain:
        raise ValueError("domain_figure: no domains to draw")
    domains = sorted({d for cells in by_domain.values() for d in cells})
    graphs = list(by_domain)
    fig, ax = new_axes((0.085, 0.17, 0.67, 0.73), title, simulated, grid="y")
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    width = 0.8 / len(graphs)
    for j, g in enumerate(graphs):
        xs, ys, lo, hi = [], [], [], []
        for i, d in enumerate(domains):
            cell = by_domain[g].get(d)
            if cell is None:
                continue
            a, b = wilson(int(cell["correct"]), int(cell["n"]))
            acc = cell["correct"] / cell["n"]
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(acc)
            lo.append(max(acc - a, 0.0))
            hi.append(max(b - acc, 0.0))
        ax.bar(xs, ys, width * 0.92, yerr=[lo, hi], capsize=2, label=g,
               color=PALETTE[j % len(PALETTE)], error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(domains)), domains, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    fig.legend(loc="upper left", bbox_to_anchor=(0.77, 0.9), frameon=False, fontsize=9)
    return fig


def save_domains(by_domain: Mapping[str, Mapping[str, Mapping[str, Any]]],
                 directory: str | Path, *, title: str, simulated: bool,
                 stem: str = "domains", formats: Iterable[str] = ("png", "svg")
                 ) -> list[Path]:
    """Draw :func:`domain_figure` and save it as ``DIRECTORY/STEM.FORMAT``."""
    return save_figure(domain_figure(by_domain, title=title, simulated=simulated),
                       directory, stem, formats)
