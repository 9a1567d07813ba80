"""The eval's accuracy-against-paid-spend chart (``colm_graph.evaluation.plots``): the Pareto
frontier, and the matplotlib figure read back from the files it writes and from its
artists (where points sit, where labels went)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from PIL import Image

from colm_graph.evaluation.plots import ParetoPoint, pareto_figure, pareto_frontier, save_pareto

LARGE_RED = (0xD6, 0x27, 0x28)


def test_frontier_on_a_hand_example() -> None:
    pts = [ParetoPoint("a", 0.0, 0.50, 0, 1), ParetoPoint("b", 1.0, 0.80, 0, 1),
           ParetoPoint("c", 1.0, 0.70, 0, 1),  # same spend as b, less accurate
           ParetoPoint("d", 2.0, 0.80, 0, 1),  # b's accuracy for more spend
           ParetoPoint("e", 0.5, 0.40, 0, 1),  # a is better and cheaper
           ParetoPoint("f", 3.0, 0.90, 0, 1), ParetoPoint("g", 0.5, 0.60, 0, 1),
           ParetoPoint("h", 0.5, 0.60, 0, 1)]  # ties with g: neither dominates
    assert [pts[i].label for i in pareto_frontier(pts)] == ["a", "g", "h", "b", "f"]
    assert pareto_frontier(pts[:1]) == [0]
    assert pareto_frontier([]) == []


def _pixels_near(im: Image.Image, rgb: tuple[int, int, int], tol: int = 12) -> int:
    return sum(n for n, px in (im.convert("RGB").getcolors(im.size[0] * im.size[1]) or [])
               if all(abs(a - b) <= tol for a, b in zip(px, rgb, strict=True)))


def _labels(fig: Figure) -> list[Annotation]:
    return [t for t in fig.axes[0].texts if isinstance(t, Annotation)]


@pytest.mark.parametrize("points", [
    [ParetoPoint("colm", 0.3, 0.8, 0.7, 0.9)],
    [ParetoPoint("colm", 0.0, 0.0, 0.0, 0.3)],
    [ParetoPoint("small_only", 0.0, 0.5, 0.2, 0.8, baseline="small_only"),
     ParetoPoint("colm", 0.0, 0.6, 0.3, 0.85), ParetoPoint("moa", 0.0, 0.6, 0.3, 0.85)],
    [ParetoPoint("a", 2.0, 1.0, 0.7, 1.0), ParetoPoint("b", 2.0, 0.99, 0.7, 1.0)],
    [ParetoPoint(f"route[t={t}]", 0.001 * t, 0.5 + t / 40, 0.4, 0.9, series="route",
                 sweep_value=t) for t in (3, 1, 2)],
], ids=["one", "zero-accuracy", "all-free", "equal-spend", "sweep"])
def test_degenerate_inputs_draw(tmp_path: Path, points: list[ParetoPoint]) -> None:
    png, svg = save_pareto(points, tmp_path / "sub", title="t", simulated=True)
    assert (png.name, svg.name) == ("pareto.png", "pareto.svg")
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (960, 600)
        assert _pixels_near(im, LARGE_RED) == 0  # no large-only baseline, no red square
    assert svg.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in svg.read_bytes()


def test_the_large_only_baseline_is_marked(tmp_path: Path) -> None:
    points = [ParetoPoint("large_only", 1.0, 0.9, 0.8, 0.95, baseline="large_only"),
              ParetoPoint("small_only", 0.0, 0.5, 0.4, 0.6, baseline="small_only"),
              ParetoPoint("colm", 0.4, 0.85, 0.75, 0.92)]
    save_pareto(points, tmp_path, title="t", simulated=False, formats=("png",))
    with Image.open(tmp_path / "pareto.png") as im:
        assert _pixels_near(im, LARGE_RED) > 100  # its square, error bar and legend entry
    assert not (tmp_path / "pareto.svg").exists()


def test_needs_points(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no points"):
        pareto_figure([], title="t", simulated=False)
    with pytest.raises(ValueError, match="no points"):
        save_pareto([], tmp_path, title="t", simulated=False)


CLUSTER = [ParetoPoint("large_only", 1.0, 0.9, 0.8, 0.95, baseline="large_only"),
           ParetoPoint("small_only", 0.0, 0.5, 0.4, 0.6, baseline="small_only"),
           *(ParetoPoint(name, 0.4, 0.85 - d, 0.75, 0.92)
             for name, d in (("colm", 0.0), ("moa", 0.0), ("debate", 0.005),
                             ("self_consistency", 0.01), ("cope", 0.01))),
           *(ParetoPoint(f"route[threshold={t}]", 0.1 * t, 0.6 + t / 20, 0.5, 0.9,
                         series="route:threshold", sweep_value=t) for t in (1, 2, 3))]


def test_equal_spend_shares_one_x() -> None:
    fig = pareto_figure(CLUSTER, title="t", simulated=False)
    ax = fig.axes[0]
    xs = {}
    for line in ax.lines:
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):  # type: ignore[arg-type]
            xs.setdefault(round(float(y), 6), set()).add(float(x))
    at_04 = {p.accuracy for p in CLUSTER if p.paid_usd == 0.4}
    for y in at_04:
        assert 0.4 in xs[round(y, 6)]
    # the labels point at the exact data coordinates
    assert {(t.get_text(), t.xy[0]) for t in _labels(fig) if t.xy[0] == 0.4} == {
        (p.label, 0.4) for p in CLUSTER if p.paid_usd == 0.4}


def test_labels_do_not_overlap_each_other() -> None:
    fig = pareto_figure(CLUSTER, title="t", simulated=False)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    labels = _labels(fig)
    assert sorted(t.get_text() for t in labels) == sorted(p.label for p in CLUSTER)
    boxes = [t.get_window_extent(renderer) for t in labels]
    frame = fig.axes[0].get_window_extent(renderer)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1


def test_dollar_signs_are_text_not_math(tmp_path: Path) -> None:
    fig = pareto_figure([ParetoPoint("cost$1$ run", 0.2, 0.5, 0.4, 0.6)],
                        title="spend in $ and $", simulated=False)
    (label,) = _labels(fig)
    assert label.get_text() == r"cost\$1\$ run"  # escaped: drawn as written
    assert not label._preprocess_math(label.get_text())[1]  # no mathtext  # noqa: SLF001
    fig.savefig(tmp_path / "p.png")  # an unescaped pair would still render, as math


def test_svg_is_reproducible_and_the_figure_restylable(tmp_path: Path) -> None:
    save_pareto(CLUSTER, tmp_path / "a", title="t", simulated=True)
    save_pareto(CLUSTER, tmp_path / "b", title="t", simulated=True)
    assert (tmp_path / "a" / "pareto.svg").read_bytes() == \
        (tmp_path / "b" / "pareto.svg").read_bytes()
    assert b"Date" not in (tmp_path / "a" / "pareto.svg").read_bytes()
    fig = pareto_figure(CLUSTER, title="t", simulated=True)
    assert fig.axes[0].get_title(loc="left") == "t (simulated)"
    fig.axes[0].set_xscale("symlog", linthresh=0.01)
    fig.savefig(tmp_path / "p.pdf")
    assert (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")
    paths = save_pareto(CLUSTER, tmp_path / "c", title="t", simulated=True, stem="chart",
                        formats=("pdf",))
    assert [p.name for p in paths] == ["chart.pdf"]
