"""The eval report's "Constraints and bytes": private runs, deadline hits, runs a down paid
endpoint rerouted and bytes per tier, per graph, in ``summary.json`` and ``report.md``
(``colm_graph.evaluation.report``); rows written before these were recorded still report."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool
from colm_graph.evaluation import load_dataset, run_eval, summarize_results, write_report
from colm_graph.evaluation.runner import GraphEntry

NEW_KEYS = ("paid_request_bytes", "paid_response_bytes", "local_request_bytes",
            "local_response_bytes", "private", "deadline_hit", "link_changed_path")


def row(graph: str, i: int, *, up: int = 0, down: int = 0, local_up: int = 0,
        local_down: int = 0, private: bool = False, deadline_hit: bool = False,
        rerouted: bool = False, old: bool = False) -> dict[str, Any]:
    """A results.jsonl line; ``old``: as written before bytes and constraints were."""
    out: dict[str, Any] = {
        "id": f"q{i}", "graph": graph, "domain": None, "answer": "42", "gold": "42",
        "correct": True, "no_answer": False, "usd": 0.0, "paid_usd": 0.0, "local_usd": 0.0,
        "paid_calls": 1, "local_calls": 1, "calls": 2, "input_tokens": 10,
        "output_tokens": 2, "latency_s": 0.1, "rounds": 0, "stage": None,
        "degraded": private or deadline_hit or rerouted, "error": None, "simulated": False,
        "clients": {},
        "paid_request_bytes": up, "paid_response_bytes": down,
        "local_request_bytes": local_up, "local_response_bytes": local_down,
        "private": private, "deadline_hit": deadline_hit, "link_changed_path": rerouted,
    }
    if old:
        for key in NEW_KEYS:
            del out[key]
    return out


def constraint_table(md: str) -> dict[str, list[str]]:
    """The "Constraints and bytes" table of a report: graph label -> its cells."""
    section = md[md.index("## Constraints and bytes"):]
    body = section.split("\n\n")[1].splitlines()[2:]  # the table, less head and rule
    out = {}
    for line in body:
        cells = [c.strip() for c in line.strip("| ").split(" | ")]
        out[cells[0].strip("`")] = cells[1:]
    return out


def write_rows(root: Path, rows: list[dict[str, Any]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")


def test_counts_and_bytes_follow_the_rows() -> None:
    rows = [row("g", 0, up=1000, down=200, local_up=50, local_down=7, private=True),
            row("g", 1, up=3000, down=400, local_up=60, local_down=8, deadline_hit=True),
            row("g", 2, up=0, down=0, local_up=70, local_down=9, deadline_hit=True,
                rerouted=True),
            row("h", 0, up=5, down=6, local_up=7, local_down=8)]
    s = summarize_results(rows)
    g = s["g"]
    assert (g["private_runs"], g["deadline_hits"], g["rerouted_runs"]) == (1, 2, 1)
    assert (g["paid_request_bytes"], g["paid_response_bytes"]) == (4000, 600)
    assert (g["local_request_bytes"], g["local_response_bytes"]) == (180, 24)
    assert g["paid_request_bytes_per_item"] == pytest.approx(4000 / 3)
    assert g["bytes_rows"] == 3
    h = s["h"]  # kept apart
    assert (h["private_runs"], h["deadline_hits"], h["rerouted_runs"]) == (0, 0, 0)
    assert (h["paid_request_bytes"], h["local_response_bytes"]) == (5, 8)


def test_old_rows_count_as_nothing_recorded() -> None:
    """A resumed eval mixes rows from before the fields with new ones: the old ones count
    as 0 / false, and the upload per item is over the rows that recorded bytes."""
    rows = [row("g", 0, old=True), row("g", 1, old=True),
            row("g", 2, up=900, down=90, local_up=30, local_down=3, private=True)]
    g = summarize_results(rows)["g"]
    assert (g["private_runs"], g["deadline_hits"], g["rerouted_runs"]) == (1, 0, 0)
    assert (g["paid_request_bytes"], g["paid_response_bytes"]) == (900, 90)
    assert g["bytes_rows"] == 1 and g["paid_request_bytes_per_item"] == 900


def test_only_old_rows_say_not_recorded() -> None:
    g = summarize_results([row("g", 0, old=True), row("g", 1, old=True)])["g"]
    for key in ("private_runs", "deadline_hits", "rerouted_runs", "paid_request_bytes",
                "paid_response_bytes", "local_request_bytes", "local_response_bytes",
                "paid_request_bytes_per_item"):
        assert g[key] is None, key
    assert g["bytes_rows"] == 0


def test_the_report_has_its_own_table(tmp_path: Path) -> None:
    rows = [row("new", 0, up=1500, down=250, local_up=12_345, local_down=999, private=True),
            row("new", 1, up=500, down=250, local_up=0, local_down=1, rerouted=True),
            row("old", 0, old=True), row("old", 1, old=True),
            row("mixed", 0, old=True),
            row("mixed", 1, up=2_500_000, down=40, local_up=0, local_down=0,
                deadline_hit=True)]
    write_rows(tmp_path, rows)
    summary = write_report(tmp_path)
    md = (tmp_path / "report.md").read_text("utf-8")
    assert md.index("## Results") < md.index("## Constraints and bytes")
    header = md[md.index("## Constraints and bytes"):].splitlines()[2]
    assert header == ("| Graph | Private runs | Deadline hits | Rerouted (paid endpoint down)"
                      " | Paid upload | Paid upload / item | Paid download | Local up / down |")
    cells = constraint_table(md)
    assert cells["new"] == ["1", "0", "1", "2.0 kB", "1.0 kB", "500 B", "12.3 kB / 1.0 kB"]
    assert cells["old"] == ["n/a"] * 6 + ["n/a / n/a"]
    assert cells["mixed"] == ["0", "1", "0", "2.5 MB", "2.5 MB", "40 B", "0 B / 0 B"]
    assert "`mixed` (1 of 2)" in md  # the partial rows are said
    assert "`new` (" not in md
    # the existing results table keeps its columns
    assert "| Graph | n | Accuracy [95% CI] | No answer | Errors | Paid USD |" in md
    saved = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert saved["graphs"] == summary["graphs"]
    assert saved["graphs"]["new"]["paid_request_bytes"] == 2000
    assert saved["graphs"]["old"]["paid_request_bytes"] is None


def test_zeros_are_shown(tmp_path: Path) -> None:
    """A run without any constraint still shows the table, with zeros."""
    write_rows(tmp_path, [row("g", 0), row("g", 1)])
    write_report(tmp_path)
    cells = constraint_table((tmp_path / "report.md").read_text("utf-8"))
    assert cells == {"g": ["0", "0", "0", "0 B", "0 B", "0 B", "0 B / 0 B"]}


def test_a_real_eval_with_a_private_graph(tmp_path: Path) -> None:
    """The simulated pool's paid models may not hold private data: the private graph's
    runs are all counted private and upload nothing; the same graph without it does."""
    items = load_dataset("colm_tasks", limit=5)
    entries = [GraphEntry("colm", "colm"),
               GraphEntry("colm_private", "colm", params={"private": True})]
    out = tmp_path / "ev"
    run_eval(entries, items, ModelPool.default(), out, progress=None, notes=io.StringIO(),
             dataset="colm_tasks", limit=5, cache=None)
    summary = write_report(out)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    by = {g: [r for r in rows if r["graph"] == g] for g in ("colm", "colm_private")}
    s = summary["graphs"]
    assert s["colm_private"]["private_runs"] == 5 and s["colm"]["private_runs"] == 0
    assert s["colm_private"]["paid_calls"] == 0
    assert s["colm_private"]["paid_request_bytes"] == 0
    assert s["colm_private"]["paid_response_bytes"] == 0
    assert s["colm_private"]["local_request_bytes"] > 0  # its local calls still count
    assert s["colm"]["paid_calls"] > 0 and s["colm"]["paid_request_bytes"] > 0
    for graph, mine in by.items():
        for key in ("paid_request_bytes", "paid_response_bytes", "local_request_bytes",
                    "local_response_bytes"):
            assert s[graph][key] == sum(r[key] for r in mine), (graph, key)
        assert s[graph]["paid_request_bytes_per_item"] == pytest.approx(
            sum(r["paid_request_bytes"] for r in mine) / 5)
        assert s[graph]["deadline_hits"] == 0 and s[graph]["rerouted_runs"] == 0
    cells = constraint_table((out / "report.md").read_text("utf-8"))
    assert cells["colm_private"][:6] == ["5", "0", "0", "0 B", "0 B", "0 B"]
    assert cells["colm"][:3] == ["0", "0", "0"] and cells["colm"][3] != "0 B"
