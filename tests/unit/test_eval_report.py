"""Evaluation summaries, the markdown report and the Pareto chart
(``colm_graph.evaluation.report`` and ``colm_graph.evaluation.plots``)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from colm_graph.evaluation.report import (
    Z95,
    load_results,
    percentile,
    summarize_results,
    wilson,
    write_report,
)

# --- rows ------------------------------------------------------------------------------


def row(graph: str, i: int, *, correct: bool = False, no_answer: bool = False,
        paid_usd: float = 0.0, local_usd: float = 0.0, paid_calls: int = 0,
        local_calls: int = 0, latency_s: float = 1.0, degraded: bool = False,
        error: str | None = None, simulated: bool = False,
        clients: dict[str, tuple[bool, bool]] | None = None) -> dict[str, Any]:
    """One results.jsonl line with every key; ``clients`` maps a name to
    (first_correct, final_correct)."""
    return {
        "id": f"q{i}", "graph": graph, "domain": None,
        "answer": None if no_answer or error else ("42" if correct else "41"), "gold": "42",
        "correct": correct, "no_answer": no_answer,
        "usd": paid_usd + local_usd, "paid_usd": paid_usd, "local_usd": local_usd,
        "paid_calls": paid_calls, "local_calls": local_calls,
        "calls": paid_calls + local_calls, "input_tokens": 100 * (paid_calls + local_calls),
        "output_tokens": 10 * (paid_calls + local_calls), "latency_s": latency_s,
        "rounds": 1, "stage": None, "degraded": degraded, "error": error,
        "simulated": simulated,
        "clients": {name: {"first": "42" if a else "41", "final": "42" if b else "41",
                           "first_correct": a, "final_correct": b}
                    for name, (a, b) in (clients or {}).items()},
    }


def mixed_rows(graph: str = "colm", n: int = 10, hits: int = 8) -> list[dict[str, Any]]:
    """``n`` rows, the first ``hits`` correct, with spends and latencies varying by item."""
    return [row(graph, i, correct=i < hits, no_answer=i == n - 1, paid_usd=0.01 * (i % 3),
                local_usd=0.001 * i, paid_calls=i % 3, local_calls=2,
                latency_s=float((i * 7) % n + 1), degraded=i == 0,
                error="boom" if i == n - 2 else None)
            for i in range(n)]


def ref_percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks, written out independently."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    below = int(pos)
    if below + 1 >= len(xs):
        return xs[-1]
    return xs[below] * (1 - (pos - below)) + xs[below + 1] * (pos - below)


# --- statistics ------------------------------------------------------------------------


def test_wilson_known_value() -> None:
    lo, hi = wilson(8, 10)
    assert (lo, hi) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))


def test_wilson_extremes_follow_the_formula() -> None:
    # with p = 0 the centre and the half-width are both z^2/2n / (1 + z^2/n)
    z2 = Z95 * Z95
    assert wilson(0, 10) == (0.0, pytest.approx(z2 / (10 + z2)))
    assert wilson(10, 10) == (pytest.approx(10 / (10 + z2)), 1.0)
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(50, 100)
    assert (lo + hi) / 2 == pytest.approx(0.5)  # symmetric around one half
    assert hi - lo < 0.2


def test_percentile_interpolates_linearly() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # 20..1, unsorted on purpose
    assert percentile(values, 0.5) == pytest.approx(10.5)
    assert percentile(values, 0.95) == pytest.approx(19.05)
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 20.0
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([], 0.5) is None


# --- summarize_results -----------------------------------------------------------------


def test_summary_numbers_follow_the_rows() -> None:
    rows = mixed_rows("colm", n=10, hits=8)
    s = summarize_results(rows)["colm"]
    correct = sum(r["correct"] for r in rows)
    assert (s["n"], s["correct"]) == (10, correct) == (10, 8)
    assert s["accuracy"] == pytest.approx(correct / 10)
    assert s["ci95"] == [pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4)]
    assert s["no_answer"] == sum(r["no_answer"] for r in rows) == 1
    assert s["errors"] == sum(r["error"] is not None for r in rows) == 1
    assert s["degraded"] == 1
    for key in ("usd", "paid_usd", "local_usd"):
        assert s[key] == pytest.approx(sum(r[key] for r in rows))
    for key in ("calls", "paid_calls", "local_calls", "input_tokens", "output_tokens"):
        assert s[key] == sum(r[key] for r in rows)
    paid_calls, calls = sum(r["paid_calls"] for r in rows), sum(r["calls"] for r in rows)
    assert s["paid_share"] == pytest.approx(paid_calls / calls)
    assert s["usd_per_correct"] == pytest.approx(sum(r["usd"] for r in rows) / correct)
    assert s["paid_usd_per_correct"] == pytest.approx(sum(r["paid_usd"] for r in rows) / correct)
    latencies = [r["latency_s"] for r in rows]
    assert s["latency_p50"] == pytest.approx(ref_percentile(latencies, 0.5))
    assert s["latency_p95"] == pytest.approx(ref_percentile(latencies, 0.95))
    assert s["collaboration"] is None
    assert s["simulated"] is False


def test_summary_keeps_graphs_apart_and_ignores_row_order() -> None:
    rows = mixed_rows("colm", 10, 8) + mixed_rows("cope", 12, 3)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    a, b = summarize_results(rows), summarize_results(iter(shuffled))
    assert set(a) == {"colm", "cope"}
    assert a["cope"]["n"] == 12 and a["cope"]["correct"] == 3
    for label in a:
        for key, value in a[label].items():
            assert b[label][key] == (pytest.approx(value) if isinstance(value, float) else value)


def test_no_correct_and_no_calls() -> None:
    rows = [row("small_only", i, latency_s=0.5) for i in range(4)]
    s = summarize_results(rows)["small_only"]
    assert s["accuracy"] == 0.0 and s["ci95"][0] == 0.0
    assert s["usd_per_correct"] is None and s["paid_usd_per_correct"] is None
    assert s["paid_share"] == 0.0
    assert s["latency_p50"] == s["latency_p95"] == 0.5


def test_simulated_needs_every_row_with_calls_simulated() -> None:
    sim = [row("a", i, local_calls=1, simulated=True) for i in range(3)]
    failed = row("a", 9, error="boom")  # no calls: says nothing either way
    assert summarize_results([*sim, failed])["a"]["simulated"] is True
    real = row("a", 10, local_calls=1, simulated=False)
    assert summarize_results([*sim, real])["a"]["simulated"] is False
    assert summarize_results([failed])["a"]["simulated"] is False


def test_collaboration_counts_fixed_and_broken() -> None:
    outcomes = [  # per item: client -> (first_correct, final_correct)
        {"c1": (False, True), "c2": (True, True)},
        {"c1": (False, False), "c2": (True, False)},
        {"c1": (True, True), "c2": (False, True)},
        {"c1": (False, True), "c2": (False, True)},
    ]
    rows = [row("colm", i, clients=c) for i, c in enumerate(outcomes)]
    rows.append(row("colm", 99, error="boom"))  # no clients: adds no pairs
    c = summarize_results(rows)["colm"]["collaboration"]

    def expect(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
        wrong = [p for p in pairs if not p[0]]
        right = [p for p in pairs if p[0]]
        fixed, broken = sum(p[1] for p in wrong), sum(not p[1] for p in right)
        return {"pairs": len(pairs), "client_wrong": len(wrong), "fixed": fixed,
                "fixed_share": fixed / len(wrong) if wrong else None,
                "client_right": len(right), "broken": broken,
                "broken_share": broken / len(right) if right else None}

    everything = [p for o in outcomes for p in o.values()]
    assert {k: v for k, v in c.items() if k != "by_client"} == expect(everything)
    assert c["client_wrong"] == 5 and c["fixed"] == 4 and c["broken"] == 1
    for name in ("c1", "c2"):
        assert c["by_client"][name] == expect([o[name] for o in outcomes])
    assert c["by_client"]["c1"]["broken_share"] == 0.0


def test_collaboration_shares_are_null_without_a_denominator() -> None:
    rows = [row("debate", i, clients={"x": (True, True)}) for i in range(3)]
    c = summarize_results(rows)["debate"]["collaboration"]
    assert c["client_wrong"] == 0 and c["fixed_share"] is None
    assert c["broken_share"] == 0.0


def test_streaming_summary_of_100k_rows() -> None:
    def rows() -> Iterator[dict[str, Any]]:
        for i in range(100_000):
            yield row("colm" if i % 2 else "cope", i, correct=i % 5 == 0, paid_usd=1e-4,
                      paid_calls=1, local_calls=2, latency_s=(i % 1000) / 100,
                      clients={"a": (i % 3 == 0, i % 4 == 0)})

    s = summarize_results(rows())
    assert s["colm"]["n"] == s["cope"]["n"] == 50_000
    assert s["cope"]["correct"] == len(range(0, 100_000, 10))  # even multiples of 5
    assert s["colm"]["paid_usd"] == pytest.approx(5.0)
    assert s["cope"]["collaboration"]["pairs"] == 50_000


# --- load_results ----------------------------------------------------------------------


def write_lines(path: Path, rows: list[dict[str, Any]], tail: str = "") -> None:
    path.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows) + tail
    (path / "results.jsonl").write_text(text, encoding="utf-8")


def test_load_results_skips_a_truncated_last_line(tmp_path: Path) -> None:
    rows = mixed_rows("colm", 5, 2)
    write_lines(tmp_path, rows, tail=json.dumps(rows[0])[:40])
    assert list(load_results(tmp_path)) == rows


def test_load_results_reads_a_complete_last_line_without_newline(tmp_path: Path) -> None:
    rows = mixed_rows("colm", 3, 2)
    write_lines(tmp_path, rows[:2], tail="\n" + json.dumps(rows[2]))
    assert list(load_results(tmp_path)) == rows


def test_load_results_rejects_a_broken_line_in_the_middle(tmp_path: Path) -> None:
    rows = mixed_rows("colm", 3, 2)
    text = json.dumps(rows[0]) + "\n{oops\n" + json.dumps(rows[1]) + "\n"
    (tmp_path / "results.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"results.jsonl:2"):
        list(load_results(tmp_path))


# --- write_report ----------------------------------------------------------------------


GRAPHS = [  # label, spec, baseline, sweep, items correct of 10, paid USD per item
    ("large_only", "single", "large_only", None, 9, 0.05),
    ("small_only", "single", "small_only", None, 5, 0.0),
    ("colm", "colm", None, None, 8, 0.01),
    ("route[threshold=0.3]", "route", None, {"param": "threshold", "value": 0.3}, 7, 0.03),
    ("route[threshold=0.7]", "route", None, {"param": "threshold", "value": 0.7}, 6, 0.01),
]


def make_run(path: Path, *, simulated: bool, graphs: list[Any] | None = None) -> None:
    graphs = GRAPHS if graphs is None else graphs
    rows = []
    for label, _, _, _, hits, paid in graphs:
        clients = {"s1": (False, True), "s2": (True, True)} if label == "colm" else None
        rows += [row(label, i, correct=i < hits, paid_usd=paid, paid_calls=paid > 0,
                     local_calls=1, latency_s=1.0 + i, simulated=simulated, clients=clients)
                 for i in range(10)]
    random.Random(3).shuffle(rows)  # the runner appends rows as items finish
    write_lines(path, rows)
    run = {"graphs": [{"label": label, "spec": spec, "params": {}, "roles": {},
                       "baseline": base, "sweep": sweep}
                      for label, spec, base, sweep, _, _ in graphs],
           "dataset": "toy", "items": 10, "seed": 5, "models": None, "simulated": simulated,
           "started_at": 1_700_000_000.0, "colm_graph_version": "0.1.0"}
    (path / "run.json").write_text(json.dumps(run), encoding="utf-8")


def test_write_report_writes_the_three_files(tmp_path: Path) -> None:
    make_run(tmp_path, simulated=False)
    summary = write_report(tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert on_disk == json.loads(json.dumps(summary))
    assert list(on_disk["graphs"]) == [g[0] for g in GRAPHS]  # run.json's order
    assert on_disk["run"]["dataset"] == "toy" and on_disk["simulated"] is False
    md = (tmp_path / "report.md").read_text("utf-8")
    for label, *_ in GRAPHS:
        assert f"`{label}`" in md
    assert "simulat" not in md.lower()
    assert "pareto.png" in md and "toy" in md and "seed: 5" in md
    # every colm item: s1 wrong then fixed, s2 right throughout
    assert "| `colm` | s1 | 10 | 10 (100.0%) | 0 | 0 (-) |" in md
    assert "| `colm` | s2 | 0 | 0 (-) | 10 | 0 (0.0%) |" in md
    with Image.open(tmp_path / "pareto.png") as im:
        assert im.format == "PNG" and im.size[0] > 400
    assert b"<svg" in (tmp_path / "pareto.svg").read_bytes()


def test_write_report_savings_and_frontier(tmp_path: Path) -> None:
    make_run(tmp_path, simulated=False)
    summary = write_report(tmp_path)
    acc = {label: hits / 10 for label, _, _, _, hits, _ in GRAPHS}
    paid = {label: 10 * p for label, _, _, _, _, p in GRAPHS}
    assert summary["baselines"] == {"large_only": "large_only", "small_only": "small_only"}
    savings = summary["savings"]
    assert set(savings) == set(acc) - {"large_only"}
    for label, v in savings.items():
        assert v["accuracy_kept"] == pytest.approx(acc[label] / acc["large_only"])
        assert v["paid_spend_saved"] == pytest.approx(1 - paid[label] / paid["large_only"])
    # route[0.7] costs what colm costs for less accuracy; route[0.3] costs more than colm
    # for less: both dominated. The rest each buy accuracy with spend.
    assert summary["frontier"] == ["small_only", "colm", "large_only"]
    md = (tmp_path / "report.md").read_text("utf-8")
    kept = f"{acc['colm'] / acc['large_only'] * 100:.1f}%"
    saved = f"{(1 - paid['colm'] / paid['large_only']) * 100:.1f}%"
    assert f"| `colm` | {kept} | {saved} |" in md


def test_write_report_says_simulated(tmp_path: Path) -> None:
    make_run(tmp_path, simulated=True)
    summary = write_report(tmp_path)
    assert summary["simulated"] is True
    md = (tmp_path / "report.md").read_text("utf-8")
    assert ("Simulated models: these numbers come from the built-in simulator, not from "
            "language models") in md


def test_write_report_without_a_baseline_or_rows(tmp_path: Path) -> None:
    graphs = [("colm", "colm", None, None, 4, 0.0)]
    make_run(tmp_path / "one", simulated=False, graphs=graphs)
    summary = write_report(tmp_path / "one")
    assert summary["savings"] is None and summary["frontier"] == ["colm"]
    assert "large-only baseline" not in (tmp_path / "one" / "report.md").read_text("utf-8")
    make_run(tmp_path / "none", simulated=False, graphs=graphs)
    (tmp_path / "none" / "results.jsonl").write_text("", encoding="utf-8")
    summary = write_report(tmp_path / "none")
    assert summary["graphs"] == {} and not (tmp_path / "none" / "pareto.png").exists()
    assert not (tmp_path / "none" / "pareto.svg").exists()
    assert "No results yet for: `colm`" in (tmp_path / "none" / "report.md").read_text("utf-8")
