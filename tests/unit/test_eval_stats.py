"""The eval's paired statistics and routing metrics (``colm_graph.evaluation.stats``), each
against small cases worked out by hand, and how the report uses them
(``colm_graph.evaluation.compare``, ``report.md``, ``summary.json``, ``routing.png``)."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from colm_graph.evaluation.compare import Outcomes
from colm_graph.evaluation.report import write_report
from colm_graph.evaluation.stats import cpt, mcnemar_exact, paired_bootstrap, routing_metrics


def _binom_two_sided(k: int, n: int) -> float:
    """Two-sided exact binomial p at 1/2, by hand: twice the smaller tail, at most 1."""
    tail = sum(comb(n, i) for i in range(min(k, n - k) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(("a_only", "b_only", "both", "neither"),
                         [(3, 1, 2, 4), (5, 0, 0, 0), (10, 2, 7, 1), (0, 0, 3, 3), (4, 4, 0, 0)])
def test_mcnemar_counts_the_discordant_items(a_only: int, b_only: int, both: int,
                                             neither: int) -> None:
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    got = mcnemar_exact(a, b)
    assert (got["a_only"], got["b_only"]) == (a_only, b_only)
    want = 1.0 if a_only + b_only == 0 else _binom_two_sided(a_only, a_only + b_only)
    assert got["p_value"] == pytest.approx(want)


def test_mcnemar_known_values() -> None:
    # 3 vs 1 discordant: 2 * (1 + 4) / 16; 10 vs 2: 2 * (1 + 12 + 66) / 4096
    t, f = True, False
    assert mcnemar_exact([t, t, t, f], [f, f, f, t])["p_value"] == pytest.approx(0.625)
    assert mcnemar_exact([t] * 10 + [f] * 2, [f] * 10 + [t] * 2)["p_value"] == \
        pytest.approx(158 / 4096)
    with pytest.raises(ValueError, match="same items"):
        mcnemar_exact([True], [True, False])


def test_bootstrap_of_two_items_by_hand() -> None:
    # resampling two items: the mean difference is 0, 0.5 or 1 with chances 1/4, 1/2, 1/4,
    # so the 2.5th and 97.5th percentiles are 0 and 1
    got = paired_bootstrap([1.0, 0.0], [0.0, 0.0], resamples=4000, seed=1)
    assert got["diff"] == 0.5 and got["ci"] == [0.0, 1.0]


def test_bootstrap_is_seeded_and_its_interval_holds_the_difference() -> None:
    a = [float(i % 3 == 0) for i in range(60)]
    b = [float(i % 4 == 0) for i in range(60)]
    one, two = paired_bootstrap(a, b, seed=7), paired_bootstrap(a, b, seed=7)
    assert one == two and one["resamples"] >= 1000
    assert one["diff"] == pytest.approx(sum(a) / 60 - sum(b) / 60)
    lo, hi = one["ci"]
    assert lo < one["diff"] < hi
    assert paired_bootstrap(a, b, seed=8)["ci"] != one["ci"]


def test_bootstrap_edge_cases() -> None:
    assert paired_bootstrap([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])["ci"] == [1.0, 1.0]
    assert paired_bootstrap([1.0], [0.0])["ci"] is None
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1.0], [1.0, 2.0])


def test_routing_metrics_by_hand() -> None:
    # trapezoids: 0.5 * (0.5 + 0.8) / 2 + 0.5 * (0.8 + 0.9) / 2 = 0.75; the weak model's
    # area 0.5, the gap's 0.4: APGR = 0.25 / 0.4
    got = routing_metrics([(1.0, 0.9), (0.0, 0.5), (0.5, 0.8)], weak=0.5, strong=0.9)
    assert got["apgr"] == pytest.approx(0.625)
    assert got["cpt50"] == pytest.approx(1 / 3)  # 0.7 on the first segment
    assert got["cpt80"] == pytest.approx(0.6)  # 0.82 on the second
    assert [p["pgr"] for p in got["points"]] == pytest.approx([0.0, 0.75, 1.0])


def test_routing_metrics_edges() -> None:
    flat = [(0.0, 0.5), (0.5, 0.55), (1.0, 0.6)]
    assert cpt(flat, 0.5, 0.9, 0.8) is None  # never recovers 80% of the gap
    assert routing_metrics(flat, 0.5, 0.5)["apgr"] is None  # no gap
    assert routing_metrics([(0.4, 0.7)], 0.5, 0.9)["apgr"] is None  # no width
    assert cpt([(0.0, 0.6), (1.0, 0.9)], 0.6, 0.9, 0.5) == pytest.approx(0.5)


# -- in the report ---------------------------------------------------------------------------
def _row(graph: str, i: int, correct: bool, paid_usd: float = 0.0,
         domain: str | None = None, no_answer: bool = False) -> dict[str, Any]:
    calls = 1 if paid_usd else 0
    return {"id": f"q{i}", "graph": graph, "domain": domain, "answer": None, "gold": "1",
            "correct": correct, "no_answer": no_answer, "usd": paid_usd,
            "paid_usd": paid_usd, "local_usd": 0.0, "paid_calls": calls, "local_calls": 1,
            "calls": calls + 1, "input_tokens": 10, "output_tokens": 5, "latency_s": 0.1,
            "rounds": 1, "stage": None, "degraded": False, "error": None,
            "simulated": False, "clients": {}}


N = 20
# small_only right on items 0-9, large_only on 0-17; the router pays for items 10-19 at
# threshold 0.3 (right on 0-17) and for 14-19 at 0.7 (right on 0-9 and 14-17)
RIGHT = {"small_only": range(10), "large_only": range(18), "route[threshold=0.3]": range(18),
         "route[threshold=0.7]": [*range(10), *range(14, 18)]}
PAID = {"small_only": (), "large_only": range(N), "route[threshold=0.3]": range(10, N),
        "route[threshold=0.7]": range(14, N)}


def _eval_dir(path: Path) -> Path:
    rows = [_row(g, i, i in RIGHT[g], 0.01 if i in PAID[g] else 0.0,
                 domain="algebra" if i % 2 else "geometry", no_answer=g == "small_only"
                 and i >= 17)
            for g in RIGHT for i in range(N)]
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    graphs: list[dict[str, Any]] = [
        {"label": "small_only", "spec": "single", "baseline": "small_only"},
              {"label": "large_only", "spec": "single", "baseline": "large_only"}]
    graphs += [{"label": f"route[threshold={t}]", "spec": "route", "baseline": None,
                "sweep": {"param": "threshold", "value": t}} for t in (0.3, 0.7)]
    (path / "run.json").write_text(json.dumps({"graphs": graphs, "dataset": "toy",
                                               "items": N, "seed": 3}))
    return path


def test_the_report_has_pairs_domains_warnings_and_routing(tmp_path: Path) -> None:
    summary = write_report(_eval_dir(tmp_path))
    pairs = {(c["a"], c["b"]): c for c in summary["comparisons"]}
    low = pairs[("route[threshold=0.7]", "large_only")]
    # only large_only: items 10-13; only the router: none
    assert low["n"] == N and (low["mcnemar"]["a_only"], low["mcnemar"]["b_only"]) == (0, 4)
    assert low["mcnemar"]["p_value"] == pytest.approx(2 / 16)
    assert low["accuracy"]["diff"] == pytest.approx(-4 / N)
    assert low["paid_usd_per_item"]["diff"] == pytest.approx((6 - 20) * 0.01 / N)
    assert low["accuracy"]["seed"] == 3
    assert ("large_only", "small_only") in pairs
    assert ("route[threshold=0.3]", "route[threshold=0.7]") in pairs

    curve = summary["routing"]["route:threshold"]
    assert [(p["strong_share"], p["accuracy"]) for p in curve["points"]] == [
        (0.0, 0.5), (0.3, 0.7), (0.5, 0.9), (1.0, 0.9)]
    # the curve reaches the large model's 0.9 at 50% of items: APGR by trapezoids
    area = 0.3 * (0.5 + 0.7) / 2 + 0.2 * (0.7 + 0.9) / 2 + 0.5 * 0.9
    assert curve["apgr"] == pytest.approx((area - 0.5) / 0.4)
    # 50% of the gap is 0.7, reached at 0.3; 80% is 0.82, 60% of the way from 0.3 to 0.5
    assert curve["cpt50"] == pytest.approx(0.3) and curve["cpt80"] == pytest.approx(0.42)

    dom = summary["by_domain"]["large_only"]
    assert dom["algebra"] == {"n": 10, "correct": 9, "accuracy": 0.9, "paid_usd": 0.1}  # odd ids
    assert summary["warnings"] and summary["warnings"][0].startswith("small_only: 3 of 20")
    md = (tmp_path / "report.md").read_text()
    for heading in ("## Warnings", "## By domain", "## Paired comparisons", "## Routing"):
        assert heading in md
    assert "| `route[threshold=0.7]` | `large_only` | 20 | -20.0 pts [" in md
    assert "0.125 (0 / 4)" in md and "routing.png" in md
    with Image.open(tmp_path / "routing.png") as im:
        assert im.format == "PNG" and im.size[0] > 400
    assert b"<svg" in (tmp_path / "routing.svg").read_bytes()
    with Image.open(tmp_path / "domains.png") as im:
        assert im.format == "PNG"
    assert "domains.png" in md


def test_no_routing_without_both_baselines(tmp_path: Path) -> None:
    rows = [_row("route", i, i < 5) for i in range(10)]
    assert Outcomes(rows).routing([{"label": "route", "spec": "route"}],
                                  {"small_only": "small_only"}) == {}
    assert Outcomes(rows).by_domain() == {}


def test_compare_pairs_graphs_of_several_eval_dirs(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from colm_graph.cli.main import main

    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        d.mkdir()
        _eval_dir(d)
    # the second run's large_only is right on two more items: 0-19
    rows = [json.loads(x) for x in (two / "results.jsonl").read_text().splitlines()]
    for r in rows:
        if r["graph"] == "large_only":
            r["correct"] = True
    (two / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["compare", str(one), str(two), "--out", str(tmp_path / "cmp")])
    assert code == 0
    got = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert "one/large_only" in got["graphs"] and "two/large_only" in got["graphs"]
    pair = next(c for c in got["comparisons"]
                if (c["a"], c["b"]) == ("one/large_only", "two/large_only"))
    assert (pair["mcnemar"]["a_only"], pair["mcnemar"]["b_only"]) == (0, 2)
    assert pair["mcnemar"]["p_value"] == pytest.approx(0.5)
    assert pair["accuracy"]["diff"] == pytest.approx(-0.1)
    printed = capsys.readouterr().out
    assert "one/large_only" in printed and "compare.md" in printed
    assert "## Paired comparisons" in (tmp_path / "cmp" / "compare.md").read_text()
    assert (tmp_path / "cmp" / "pareto.png").stat().st_size > 1000
    assert main(["compare", str(tmp_path / "none")]) == 2
    assert "not an eval directory" in capsys.readouterr().err
