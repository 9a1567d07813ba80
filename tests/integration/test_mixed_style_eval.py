"""The bundled benchmark on the default pool goes through real answer extraction: its
simulated models write in mixed styles, and every graph still reads (almost) every answer."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from colm_graph.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_default_pool_eval_reads_nearly_every_answer(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    assert main(["eval", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_graph: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_graph[row["graph"]].append(row)
    assert set(by_graph) >= {"colm", "cope", "route", "cascade", "large_only", "small_only"}
    for graph, graph_rows in by_graph.items():
        assert len(graph_rows) == 300, graph
        missing = sum(r["no_answer"] for r in graph_rows)
        assert missing / len(graph_rows) <= 0.01, (graph, missing)
        assert not any(r["error"] for r in graph_rows), graph
    # the pool really writes in mixed styles: the large model thinks, the small ones differ
    summary = json.loads((out / "summary.json").read_text())
    assert summary["graphs"]["large_only"]["accuracy"] > summary["graphs"]["small_only"][
        "accuracy"]


def test_default_pool_replies_come_in_several_styles() -> None:
    from colm_graph import ModelPool, load_graph

    out = load_graph("colm", pool=ModelPool.default(), params={"top_k": 4, "rounds": 1,
                                                               "skip_guidance_when_agreed": False}
                     ).invoke({"question": "What is 17 * 23 + 48?"})
    texts = [r["text"] for r in out["responses"]] + [g["text"] for g in out["guidance"]]
    marks = {"\\boxed": "latex", "####": "gsm8k", "<think>": "think", "**": "markdown"}
    seen = {style for mark, style in marks.items() if any(mark in t for t in texts)}
    assert len(seen) >= 3, texts
