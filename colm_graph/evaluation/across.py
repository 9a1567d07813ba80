"""Graphs of several eval directories side by side (``colm-graph compare DIR1 DIR2 ...``):
every graph of every directory, paired on the items they share, with the paired statistics
of :mod:`colm_graph.evaluation.compare`, written as ``compare.json`` and ``compare.md`` with
the accuracy-against-paid-spend chart of all of them (``pareto.png`` / ``.svg``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colm_graph.errors import ColmGraphError
from colm_graph.evaluation.compare import Outcomes
from colm_graph.evaluation.plots import ParetoPoint, save_pareto
from colm_graph.evaluation.report import load_results, summarize_results

__all__ = ["compare_evals", "write_comparison"]


def _label(directory: Path, graph: str, clash: bool) -> str:
    return f"{directory.name}/{graph}" if clash else graph


def compare_evals(directories: Sequence[str | Path], *, seed: int = 0) -> dict[str, Any]:
    """The graphs of ``directories`` (labelled ``DIR/graph`` when two directories have a
    graph of the same name), their summaries and every pair's paired comparison."""
    if len(directories) < 1:
        raise ColmGraphError("compare: expected at least one eval directory")
    rows_by_dir: list[tuple[Path, list[dict[str, Any]]]] = []
    for d in map(Path, directories):
        if not (d / "results.jsonl").is_file():
            raise ColmGraphError(f"{d}: not an eval directory (no results.jsonl)")
        try:
            rows_by_dir.append((d, list(load_results(d))))
        except ValueError as exc:
            raise ColmGraphError(str(exc)) from None
    names = [g for _, rows in rows_by_dir for g in {str(r["graph"]) for r in rows}]
    clash = len(names) != len(set(names))  # a graph name in two directories
    outcomes, relabelled = Outcomes(), []
    for d, rows in rows_by_dir:
        for r in rows:
            row = {**r, "graph": _label(d, str(r["graph"]), clash)}
            outcomes.add(row)
            relabelled.append(row)
    graphs = summarize_results(relabelled)
    labels = list(graphs)
    pairs = [outcomes.compare(a, b, seed=seed) for i, a in enumerate(labels)
             for b in labels[i + 1:]]
    return {"directories": [str(d) for d, _ in rows_by_dir], "graphs": graphs,
            "comparisons": pairs}


def write_comparison(directories: Sequence[str | Path], out: str | Path, *,
                     seed: int = 0) -> dict[str, Any]:
    """:func:`compare_evals`, written to ``OUT/compare.json``, ``OUT/compare.md`` and the
    chart; returns what it wrote."""
    from colm_graph.evaluation.report import significance_lines, table

    result = compare_evals(directories, seed=seed)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    (root / "compare.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    rows = [[f"`{k}`", str(g["n"]), f"{g['accuracy']:.1%}", f"${g['paid_usd']:.4f}"]
            for k, g in result["graphs"].items()]
    md = ["# Comparison of evals", "",
          *[f"- `{d}`" for d in result["directories"]], "",
          *table(["Graph", "n", "Accuracy", "Paid USD"], rows),
          *significance_lines(result["comparisons"]),
          "![Accuracy against paid spend](pareto.png)", ""]
    (root / "compare.md").write_text("\n".join(md), "utf-8")
    points = [ParetoPoint(k, g["paid_usd"], g["accuracy"], g["ci95"][0], g["ci95"][1])
              for k, g in result["graphs"].items()]
    if points:
        simulated = all(g["simulated"] for g in result["graphs"].values())
        save_pareto(points, root, title="Accuracy vs paid spend across evals",
                    simulated=simulated)
    return result
